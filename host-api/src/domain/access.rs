//! Trust and access: publisher keys, API tokens and the audit log.
//!
//! Tokens are cached in memory (every request authenticates); the store is the source of truth
//! and every change goes to it first, with its audit entry in the same [`Change`].

use super::tokens::TokenHasher;
use super::{DomainError, Plugins, Result};
use crate::store::{
    AuditAction, AuditEntry, AuditFilter, Change, Op, Page, PageRequest, Role, Storage, TokenRecord, TokenScope,
};
use plugboard_runtime::signing;
use plugboard_runtime::sync::ReadWriteLocked;
use std::sync::{Arc, RwLock};
use tokio::sync::Mutex;

/// The name of the token created or replaced at start-up.
pub const ADMIN_TOKEN_NAME: &str = "admin";

/// Keys, tokens and the audit log.
pub struct Access {
    store: Arc<dyn Storage>,
    plugins: Arc<Plugins>,
    write: Arc<Mutex<()>>,
    tokens: RwLock<Vec<TokenRecord>>,
    hasher: TokenHasher,
}

/// Most names in one scope.
const MAX_SCOPE_NAMES: usize = 256;

/// A scope limits an invoker or a publisher to something: an admin manages the server itself
/// (keys, tokens, grants), which no list of plugins and flows describes, and an empty scope would
/// be a token that can do nothing.
fn check_scope(role: Role, scope: &TokenScope) -> Result<()> {
    if role == Role::Admin {
        return Err(DomainError::Invalid(
            "an admin token cannot be scoped; scope an invoker or publisher token".into(),
        ));
    }
    if scope.plugins.is_empty() && scope.flows.is_empty() {
        return Err(DomainError::Invalid("a scope names at least one plugin or flow".into()));
    }
    if role == Role::Publisher && scope.plugins.is_empty() {
        return Err(DomainError::Invalid("a publisher's scope names the plugins it may upload".into()));
    }
    let names = scope.plugins.iter().chain(&scope.flows);
    if scope.plugins.len() + scope.flows.len() > MAX_SCOPE_NAMES {
        return Err(DomainError::Invalid(format!("a scope names at most {MAX_SCOPE_NAMES} plugins and flows")));
    }
    for name in names {
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(DomainError::Invalid(format!("{name:?} is not a plugin or flow name")));
        }
    }
    Ok(())
}

/// A fresh random token.
///
/// # Errors
/// `internal` when the system has no randomness.
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| DomainError::internal_in("randomness", e))?;
    Ok(format!("pb_{}", hex::encode(bytes)))
}

impl Access {
    pub(super) fn open(
        store: Arc<dyn Storage>,
        plugins: Arc<Plugins>,
        write: Arc<Mutex<()>>,
        hasher: TokenHasher,
    ) -> Result<Access> {
        let tokens = RwLock::new(store.tokens()?);
        Ok(Access { store, plugins, write, tokens, hasher })
    }

    /// The token record `token` names, if any (its hash compared with every record's in constant
    /// time; see [`super::tokens`]).
    pub fn find(&self, token: &str) -> Option<TokenRecord> {
        let presented = self.hasher.presented(token);
        let mut found = None;
        for record in self.tokens.read_locked().iter() {
            if presented.matches(&record.hash) {
                found = Some(record.clone());
            }
        }
        found
    }

    /// The trust store.
    pub fn trust(&self) -> Result<signing::TrustStore> {
        Ok(self.store.trust()?)
    }

    /// Adds a trusted key.
    ///
    /// # Errors
    /// `conflict` when the key is known (trusted or revoked).
    pub async fn add_key(&self, name: &str, key: signing::PublicKey, actor: &str) -> Result<signing::TrustedKey> {
        let _write = self.write.lock().await;
        let read_at = self.store.position();
        let mut trust = self.store.trust()?;
        let added = trust.add(name, key)?.clone();
        self.store.apply(
            Change::read_at(read_at).with(Op::PutTrust(trust)).audit(
                AuditEntry::new(actor, AuditAction::KeyAdd, &added.key_id)
                    .key(Some(added.key_id.clone()))
                    .detail(format!("name {name}")),
            ),
        )?;
        self.store.durable().await?;
        Ok(added)
    }

    /// Revokes a key and deactivates every active plugin it signed, in one change.
    ///
    /// # Errors
    /// `not-found` for an unknown key.
    pub async fn revoke_key(&self, key_id: &str, actor: &str) -> Result<signing::TrustedKey> {
        let _write = self.write.lock().await;
        let read_at = self.store.position();
        let mut trust = self.store.trust()?;
        let revoked = trust.revoke(key_id)?.clone();
        let unloaded = self.plugins.unload_signed_by(key_id);
        let mut change = Change::read_at(read_at).with(Op::PutTrust(trust));
        for name in &unloaded {
            change.push(Op::SetActive { name: name.clone(), version: None });
        }
        change.push(Op::Audit(
            AuditEntry::new(actor, AuditAction::KeyRevoke, key_id)
                .key(Some(key_id.to_string()))
                .detail(format!("unloaded: {}", unloaded.join(", "))),
        ));
        self.store.apply(change)?;
        self.store.durable().await?;
        Ok(revoked)
    }

    /// Reads the tokens again (another cluster node changed them).
    ///
    /// # Errors
    /// A storage failure.
    pub fn reload_tokens(&self) -> Result<()> {
        // Read under the lock: of a reload following another node's change and one after this
        // node's own write, the later read is the one kept (writing a list computed before the
        // write was applied could drop a change a follow had just loaded).
        let mut tokens = self.tokens.write_locked();
        *tokens = self.store.tokens()?;
        Ok(())
    }

    /// The API tokens (cached).
    pub fn tokens(&self) -> Vec<TokenRecord> {
        self.tokens.read_locked().clone()
    }

    /// Creates a token named `name` with `role`, limited to `scope` when given; answers its value
    /// (never stored). Names are unique, so the audit log's actor names one token; the audit entry
    /// names the role and the scope.
    ///
    /// # Errors
    /// `conflict` for the reserved name `admin` or a name in use; `invalid-request` for a scoped
    /// admin token or a scope naming nothing; a storage failure.
    pub async fn create_token(&self, name: &str, role: Role, scope: Option<TokenScope>, actor: &str) -> Result<String> {
        if name == ADMIN_TOKEN_NAME {
            return Err(DomainError::conflict(format!(
                "the token name `{ADMIN_TOKEN_NAME}` is reserved for the server's admin token"
            )));
        }
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(DomainError::Invalid(
                "a token name is 1-64 characters, none of them control characters".into(),
            ));
        }
        if let Some(scope) = &scope {
            check_scope(role, scope)?;
        }
        let token = new_token()?;
        let hash = if scope.is_some() { self.hasher.hash_scoped(&token) } else { self.hasher.hash(&token) };
        self.put_token(TokenRecord { name: name.into(), role, hash, scope }, AuditAction::TokenCreate, actor).await?;
        Ok(token)
    }

    /// Makes `token` the admin token (start-up, from the config or environment, or a generated
    /// one), replacing an earlier admin token; audited.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn set_admin_token(&self, token: &str) -> Result<()> {
        let record = TokenRecord {
            name: ADMIN_TOKEN_NAME.into(),
            role: Role::Admin,
            hash: self.hasher.hash(token),
            scope: None,
        };
        if self.tokens().contains(&record) {
            return Ok(());
        }
        self.put_token(record, AuditAction::AdminTokenReplace, "server").await
    }

    /// Whether an admin token exists.
    pub fn has_admin_token(&self) -> bool {
        self.tokens().iter().any(|t| t.name == ADMIN_TOKEN_NAME && t.role == Role::Admin)
    }

    async fn put_token(&self, record: TokenRecord, action: AuditAction, actor: &str) -> Result<()> {
        let _write = self.write.lock().await;
        let read_at = self.store.position();
        let mut tokens = self.store.tokens()?;
        let name = record.name.clone();
        let detail = match &record.scope {
            None => format!("role {:?}", record.role),
            Some(scope) => format!("role {:?}; scoped to {scope}", record.role),
        };
        if action == AuditAction::AdminTokenReplace {
            tokens.retain(|t| t.name != ADMIN_TOKEN_NAME);
        } else if tokens.iter().any(|t| t.name == name) {
            return Err(DomainError::conflict(format!("a token named `{name}` exists; revoke it first")));
        }
        tokens.push(record);
        self.store.apply(
            Change::read_at(read_at)
                .with(Op::PutTokens(tokens))
                .audit(AuditEntry::new(actor, action, name).detail(detail)),
        )?;
        self.store.durable().await?;
        self.reload_tokens()
    }

    /// Revokes the token named `name`: it stops working at once. The admin token is replaced
    /// through the config or `PLUGBOARD_ADMIN_TOKEN` instead, so an admin cannot lock everyone out.
    ///
    /// # Errors
    /// `not-found`; `conflict` for the admin token; a storage failure.
    pub async fn revoke_token(&self, name: &str, actor: &str) -> Result<()> {
        if name == ADMIN_TOKEN_NAME {
            return Err(DomainError::conflict(format!(
                "the `{ADMIN_TOKEN_NAME}` token is replaced by restarting with PLUGBOARD_ADMIN_TOKEN, not revoked"
            )));
        }
        let _write = self.write.lock().await;
        let read_at = self.store.position();
        let mut tokens = self.store.tokens()?;
        let before = tokens.len();
        tokens.retain(|t| t.name != name);
        if tokens.len() == before {
            return Err(DomainError::not_found(format!("token {name}")));
        }
        self.store.apply(Change::read_at(read_at).with(Op::PutTokens(tokens)).audit(AuditEntry::new(
            actor,
            AuditAction::TokenRevoke,
            name,
        )))?;
        // The cache changes before the answer: the revoked token is refused from now on.
        self.reload_tokens()?;
        self.store.durable().await?;
        Ok(())
    }

    /// A page of the audit entries `filter` passes.
    pub fn audit(&self, page: PageRequest, filter: &AuditFilter) -> Result<Page<AuditEntry>> {
        Ok(self.store.audit_page(page, filter)?)
    }
}
