//! Who may do what: roles and scopes, the caller (`/v1/whoami`), publisher keys (`/v1/keys`),
//! API tokens (`/v1/tokens`), the audit log (`/v1/audit`) and the probes (`/healthz`, `/readyz`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a token may do; each role may do what the ones below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Upload plugins (and what an invoker may).
    Publisher,
    /// Invoke plugins, run flows, read.
    Invoker,
}

/// The plugins and flows a scoped token may act on; none given: everything its role allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenScope {
    /// Plugin names.
    #[serde(default)]
    pub plugins: Vec<String>,
    /// Flow names.
    #[serde(default)]
    pub flows: Vec<String>,
}

/// A token as listed (`GET /v1/tokens`, `GET /v1/whoami`): never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenInfo {
    /// Its name, as the audit log shows it.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// What it is limited to; none: everything its role allows.
    pub scope: Option<TokenScope>,
}

/// `GET /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenList {
    /// Every token but the admin token.
    pub tokens: Vec<TokenInfo>,
}

/// Body of `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A name for the audit log.
    pub name: String,
    /// The role.
    pub role: Role,
    /// The plugins and flows it is limited to (an invoker or publisher token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<TokenScope>,
}

/// `POST /v1/tokens`'s answer: the only time the token's value is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreatedToken {
    /// The token's name, role and scope.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The bearer token.
    pub token: String,
}

/// A publisher key in the trust store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Key {
    /// Its id (the hex SHA-256 prefix of the key that signatures name).
    pub key_id: String,
    /// Its name.
    pub name: String,
    /// The public key file's bytes, hex.
    pub public_key: String,
    /// When it was trusted, seconds since the Unix epoch.
    pub added_at: u64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<u64>,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyList {
    /// Trusted and revoked keys.
    pub keys: Vec<Key>,
}

/// Body of `POST /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKey {
    /// A name for the key.
    pub name: String,
    /// The public key file's bytes, hex (`0x01 ‖ 32 bytes`, as `plugboard keygen` writes them).
    pub public_key: String,
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A plugin version was uploaded.
    Upload,
    /// A version became active.
    Activate,
    /// A plugin was deactivated.
    Deactivate,
    /// A version (or a whole plugin) was deleted.
    Delete,
    /// Capabilities or budget were granted.
    Grants,
    /// Config values or secrets were set.
    Config,
    /// A publisher key was trusted.
    KeyAdd,
    /// A publisher key was revoked.
    KeyRevoke,
    /// A version below the highest installed was admitted.
    RollbackOverride,
    /// An API token was created.
    TokenCreate,
    /// The admin token was replaced at start-up.
    AdminTokenReplace,
    /// A flow was defined.
    FlowCreate,
    /// A flow definition was replaced.
    FlowUpdate,
    /// A flow was deleted.
    FlowDelete,
    /// A flow's webhook secret was set.
    WebhookSecret,
    /// Dead letters were replayed.
    DlqReplay,
    /// A dead letter was deleted.
    DlqDelete,
    /// An API token was revoked.
    TokenRevoke,
    /// A connection was created or replaced.
    ConnectionPut,
    /// A connection was deleted.
    ConnectionDelete,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    /// Its sequence number.
    pub id: u64,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Who: the token's name.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// Which plugin, key, token, flow or connection.
    pub target: String,
    /// The signer key id of the plugin concerned, when there is one.
    pub key_id: Option<String>,
    /// Detail (never a secret value).
    pub detail: String,
}

/// `GET /v1/audit`: a page of entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditPage {
    /// The entries, in the order asked for.
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; none on the last page.
    pub next_cursor: Option<u64>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Liveness {
    /// `ok`.
    pub status: String,
}

/// `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// Active plugins loaded.
    pub plugins_loaded: u64,
}
