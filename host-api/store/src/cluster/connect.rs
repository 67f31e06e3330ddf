//! How a node reaches NATS: the `[cluster]` settings, and the authenticated, encrypted
//! connection they describe.
//!
//! A real NATS deployment has accounts, TLS and permissions, and its stream is not a trusted
//! channel: a node authenticates the way NATS operators hand out identities (user and password,
//! a token, an NKey seed, a `.creds` file from an operator/JWT setup) and talks TLS with a
//! private CA and, where the server verifies clients, a client certificate. One way to
//! authenticate per node: two at once is refused when the config is read, not guessed at. The
//! NATS permissions a node needs are `docs/nats-account.conf` (a ready-to-use account block
//! that `tests/all/cluster_security.rs` runs against).
//!
//! Secrets of the connection (a password, a token, a seed) are read from files or the
//! environment where a deployment keeps them out of the config file: `password_file`,
//! `token_file`, `nkey_seed_file`, `credentials_file`.

use super::backend;
use std::path::{Path, PathBuf};

/// `[cluster]` settings that do not make one coherent connection, or name a file that cannot be
/// used.
#[derive(Debug, thiserror::Error)]
#[error("[cluster]: {0}")]
pub struct InvalidSettings(String);

/// `[cluster]` in the config file, or `--cluster URL`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// The NATS server, `nats://HOST:PORT` (several, comma-separated, for a NATS cluster;
    /// `tls://` requires TLS).
    pub url: String,
    /// Replicas of every stream and bucket this node creates (1, or 3 on a 3-server NATS
    /// cluster; default 1). Streams that exist keep theirs.
    #[serde(default = "one")]
    pub replicas: usize,
    /// User name, with `password` or `password_file`.
    #[serde(default)]
    pub user: Option<String>,
    /// The user's password.
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the user's password (its surrounding whitespace ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A token (a server with `authorization { token }`).
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A file holding an NKey user seed (`SU…`); the server lists the public key.
    #[serde(default)]
    pub nkey_seed_file: Option<PathBuf>,
    /// A `.creds` file (user JWT and seed) from an operator/JWT deployment.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// PEM file of the CA(s) that signed the servers' certificates (else the system's roots are
    /// not consulted: a private CA is what a NATS deployment uses).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate, for a server that verifies clients (`tls { verify: true }`).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Refuse to connect without TLS (also implied by `tls://` URLs and by any TLS file).
    #[serde(default)]
    pub tls_required: bool,
    /// Changes between snapshots of the replica, which new nodes start from (0: none).
    #[serde(default = "snapshot_every")]
    pub snapshot_every: u64,
}

/// By default a snapshot every 20,000 changes: a joining node applies at most that many messages
/// after importing one, and the writer's pause to export is amortised over as many.
fn snapshot_every() -> u64 {
    20_000
}

fn one() -> usize {
    1
}

impl ClusterSettings {
    /// Settings for `url` with nothing else set (`--cluster URL` without a `[cluster]` table).
    pub fn new(url: String) -> ClusterSettings {
        ClusterSettings {
            url,
            replicas: 1,
            user: None,
            password: None,
            password_file: None,
            token: None,
            token_file: None,
            nkey_seed_file: None,
            credentials_file: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_required: false,
            snapshot_every: snapshot_every(),
        }
    }

    /// Checks the settings make one coherent connection: at most one way to authenticate, a
    /// password only with a user, a client certificate with its key.
    ///
    /// # Errors
    /// [`InvalidSettings`] naming what is wrong.
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        let invalid = |why: &str| Err(InvalidSettings(why.into()));
        let password = self.password.is_some() || self.password_file.is_some();
        let token = self.token.is_some() || self.token_file.is_some();
        let ways = [self.user.is_some(), token, self.nkey_seed_file.is_some(), self.credentials_file.is_some()];
        if ways.iter().filter(|set| **set).count() > 1 {
            return invalid("set one of user (with password), token, nkey_seed_file or credentials_file");
        }
        if password != self.user.is_some() {
            return invalid("user and password (or password_file) go together");
        }
        if self.password.is_some() && self.password_file.is_some() || self.token.is_some() && self.token_file.is_some()
        {
            return invalid("a secret is given both inline and as a file; keep one");
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return invalid("tls_cert_file and tls_key_file go together");
        }
        if self.replicas == 0 || self.replicas > 5 {
            return invalid("replicas is 1 to 5");
        }
        Ok(())
    }

    /// Whether the connection must be TLS.
    fn wants_tls(&self) -> bool {
        self.tls_required
            || self.tls_ca_file.is_some()
            || self.tls_cert_file.is_some()
            || self.url.split(',').any(|url| url.trim().starts_with("tls://"))
    }
}

/// Reads a secret file, naming it when it cannot be read.
fn secret(path: &Path) -> Result<String, InvalidSettings> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .map_err(|err| InvalidSettings(format!("cannot read {}: {err}", path.display())))
}

/// Connects as the settings say, named `plugboard-NODE` on the server's connection list.
///
/// # Errors
/// [`StoreError::Backend`] for settings that do not make a connection (see
/// [`ClusterSettings::validate`], an unreadable file) and when NATS refuses or cannot be reached
/// (the server's reason included: an authorization violation, a TLS failure).
pub(crate) async fn connect(settings: &ClusterSettings, node: &str) -> crate::Result<async_nats::Client> {
    options(settings, node)
        .await
        .map_err(backend)?
        .connect(servers(settings).map_err(backend)?)
        .await
        .map_err(|err| backend(format!("cannot connect to {}: {err}", settings.url)))
}

fn servers(settings: &ClusterSettings) -> Result<Vec<async_nats::ServerAddr>, InvalidSettings> {
    settings
        .url
        .split(',')
        .map(|url| url.trim().parse::<async_nats::ServerAddr>())
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|err| InvalidSettings(format!("bad NATS URL {}: {err}", settings.url)))
}

/// The connect options the settings describe.
async fn options(settings: &ClusterSettings, node: &str) -> Result<async_nats::ConnectOptions, InvalidSettings> {
    settings.validate()?;
    let mut options = async_nats::ConnectOptions::new().name(format!("plugboard-{node}"));
    if let Some(user) = &settings.user {
        let password = match (&settings.password, &settings.password_file) {
            (Some(password), _) => password.clone(),
            (None, Some(file)) => secret(file)?,
            (None, None) => String::new(),
        };
        options = options.user_and_password(user.clone(), password);
    }
    match (&settings.token, &settings.token_file) {
        (Some(token), _) => options = options.token(token.clone()),
        (None, Some(file)) => options = options.token(secret(file)?),
        (None, None) => {}
    }
    if let Some(file) = &settings.nkey_seed_file {
        let seed = secret(file)?;
        // A seed that does not parse fails later, inside the handshake, with a vaguer message.
        nkeys::KeyPair::from_seed(&seed)
            .map_err(|err| InvalidSettings(format!("{} is not an NKey seed: {err}", file.display())))?;
        options = options.nkey(seed);
    }
    if let Some(file) = &settings.credentials_file {
        options = options
            .credentials_file(file)
            .await
            .map_err(|err| InvalidSettings(format!("cannot use {}: {err}", file.display())))?;
    }
    if let Some(ca) = &settings.tls_ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&settings.tls_cert_file, &settings.tls_key_file) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(options.require_tls(settings.wants_tls()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ClusterSettings {
        toml::from_str(text).expect("settings")
    }

    #[test]
    fn one_way_to_authenticate_and_pairs_that_go_together() {
        assert!(parse("url = \"nats://a:4222\"").validate().is_ok());
        assert!(parse("url = \"n\"\nuser = \"u\"\npassword = \"p\"").validate().is_ok());
        assert!(parse("url = \"n\"\nnkey_seed_file = \"s\"").validate().is_ok());
        for bad in [
            "url = \"n\"\nuser = \"u\"",
            "url = \"n\"\npassword = \"p\"",
            "url = \"n\"\nuser = \"u\"\npassword = \"p\"\ntoken = \"t\"",
            "url = \"n\"\ntoken = \"t\"\ntoken_file = \"f\"",
            "url = \"n\"\nnkey_seed_file = \"s\"\ncredentials_file = \"c\"",
            "url = \"n\"\ntls_cert_file = \"c\"",
            "url = \"n\"\nreplicas = 0",
        ] {
            assert!(parse(bad).validate().is_err(), "{bad}");
        }
        assert!(toml::from_str::<ClusterSettings>("url = \"n\"\npasword = \"p\"").is_err(), "a typo is refused");
    }

    #[test]
    fn tls_is_required_by_url_flag_or_any_tls_file() {
        assert!(!parse("url = \"nats://a:4222\"").wants_tls());
        assert!(parse("url = \"nats://a:4222, tls://b:4222\"").wants_tls());
        assert!(parse("url = \"n\"\ntls_required = true").wants_tls());
        assert!(parse("url = \"n\"\ntls_ca_file = \"ca.pem\"").wants_tls());
    }
}
