//! `plugboard serve`: the control plane over a data directory, with graceful shutdown.
//!
//! Defaults users expect: no flags needed — loopback address, `./plugboard-data`, an admin token
//! created on first start (mode 0600 in the data directory, its path printed once) unless
//! `PLUGBOARD_ADMIN_TOKEN` or the config file sets one.
//!
//! Shutdown is bounded: SIGINT/SIGTERM stop accepting at once; in-flight requests and the
//! batches workers are running get until the deadline (`shutdown_deadline_secs`, default 30 s)
//! to finish; past it they are dropped — their work is still queued (it leaves the queue only
//! with its stored execution) and runs after the restart. A sink that is down cannot hold the
//! process hostage. Last, the store makes everything durable and closes.

use crate::api::{AppState, ServerLimits, app};
use crate::domain::{QueueSettings, Services};
use crate::store::Storage;
use crate::store::cluster::ClusterStore;
use crate::store::sealed::SecretsKey;
use crate::store::sled::SledStore;
use anyhow::Context;
use plugboard_runtime::signing::VerifyOptions;
use plugboard_runtime::{Runtime, RuntimeConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// `plugboard serve` settings (flags, then the config file, then defaults).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Data directory.
    pub data: Option<PathBuf>,
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// The admin token (prefer `PLUGBOARD_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Accept unsigned plugins (development only; logs a warning on every load).
    #[serde(default)]
    pub allow_unsigned: bool,
    /// Host caps (`[caps]`: `fuel`, `timeout_ms`, `memory_bytes`, `max_input_bytes`,
    /// `max_output_bytes`): no manifest or grant gets more. Unset fields keep the defaults.
    #[serde(default)]
    pub caps: plugboard_runtime::BudgetLimits,
    /// The work queue (`[queue]`: `workers`, `max_depth_per_flow`, `max_depth`, `batch_records`).
    #[serde(default)]
    pub queue: QueueSettings,
    /// How long in-flight requests and running batches get to finish after SIGTERM (default 30).
    pub shutdown_deadline_secs: Option<u64>,
    /// The key that seals secrets at rest (default `DATA/secrets.key`, created on first start);
    /// keep it apart from the database's backups (see `store::sealed`).
    pub secrets_key_file: Option<PathBuf>,
    /// Whether `/metrics` needs a token (default: public).
    #[serde(default)]
    pub metrics_require_token: bool,
    /// Where compiled plugins are kept (default `DATA/compiled`). Servers may share one: a
    /// component is compiled once under a lock and every entry is verified before it is used.
    pub cache_dir: Option<PathBuf>,
    /// Run as one node of a cluster over NATS JetStream (`[cluster]`: `url`, `replicas`), or, by
    /// default, alone on the embedded database.
    pub cluster: Option<crate::store::cluster::ClusterSettings>,
    /// Proxies (CIDRs) in front of the server whose `X-Forwarded-For` header names a webhook
    /// delivery's source for the triggers' `allow_from`; the peer address is used otherwise.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

impl ServeConfig {
    /// `trusted_proxies`, parsed.
    ///
    /// # Errors
    /// Naming an entry that is not an address or CIDR.
    pub fn trusted_proxies(&self) -> anyhow::Result<Vec<plugboard_runtime::flow::webhook::Cidr>> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                plugboard_runtime::flow::webhook::parse_cidr(entry)
                    .map_err(|reason| anyhow::anyhow!("trusted_proxies: {reason}"))
            })
            .collect()
    }

    /// Reads a TOML config file.
    ///
    /// # Errors
    /// When it cannot be read or has unknown keys.
    pub fn from_file(path: &Path) -> anyhow::Result<ServeConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let config: ServeConfig =
            toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))?;
        if let Some(cluster) = &config.cluster {
            cluster.validate().with_context(|| format!("invalid config {}", path.display()))?;
        }
        Ok(config)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(|| PathBuf::from("plugboard-data"))
    }

    /// The listen address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8686)))
    }

    /// The secrets key file.
    pub fn secrets_key_path(&self) -> PathBuf {
        self.secrets_key_file.clone().unwrap_or_else(|| self.data_dir().join("secrets.key"))
    }

    /// The shutdown deadline.
    pub fn shutdown_deadline(&self) -> Duration {
        Duration::from_secs(self.shutdown_deadline_secs.unwrap_or(30))
    }
}

/// A running server.
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    /// The shared state (for demo setup and tests).
    pub state: AppState,
    /// Path of the generated admin token file, when one was created on this start.
    pub created_token_file: Option<PathBuf>,
    listener: tokio::net::TcpListener,
    limits: ServerLimits,
    shutdown_deadline: Duration,
    stop: tokio::sync::watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
}

/// Opens the data directory, starts the workers and binds the listener.
///
/// # Errors
/// When the data directory or database cannot be opened, or the address cannot be bound.
pub async fn start(config: &ServeConfig, limits: ServerLimits) -> anyhow::Result<Server> {
    let limits =
        ServerLimits { metrics_require_token: limits.metrics_require_token || config.metrics_require_token, ..limits };
    check_admin_token(config)?;
    let data = config.data_dir();
    private_directory(&data)?;
    let secrets_key = SecretsKey::load_or_create(&config.secrets_key_path())?;
    let token_hasher = crate::domain::tokens::TokenHasher::new(secrets_key.token_hash_key());
    let store: Arc<dyn Storage> = match &config.cluster {
        None => Arc::new(
            SledStore::open(&data.join("db"), secrets_key)
                .context("cannot open the database (is another server using this data directory?)")?,
        ),
        Some(cluster) => {
            let node = node_id(&data)?;
            let store = ClusterStore::open(cluster, node, secrets_key, &data.join("replica"))
                .await
                .with_context(|| format!("cannot join the cluster at {}", cluster.url))?;
            tracing::info!(node = store.node(), url = %cluster.url, "running as a cluster node");
            Arc::new(store)
        }
    };
    // Connections' credentials, which the runtime adds to plugins' requests (see
    // `domain::connections`).
    let credentials = Arc::new(crate::domain::connections::credentials::HostCredentials::new(store.clone())?);
    let runtime = Runtime::new(RuntimeConfig {
        caps: plugboard_runtime::Budget::default().with_overrides(&config.caps),
        cache_dir: Some(config.cache_dir.clone().unwrap_or_else(|| data.join("compiled"))),
        key_value: store.key_value(),
        credentials: Some(credentials.clone()),
        ..RuntimeConfig::default()
    })?;
    let verify = VerifyOptions { allow_unsigned: config.allow_unsigned };
    if verify.allow_unsigned {
        tracing::warn!("UNSIGNED PLUGINS ARE ACCEPTED (--allow-unsigned): never do this in production");
    }
    let services = Services::open(runtime, store, credentials, verify, config.queue, token_hasher).await?;
    let created_token_file = ensure_admin_token(&services, &data, config.admin_token.clone()).await?;
    // Bound before the workers start, so a failed start leaves nothing running.
    let listener = tokio::net::TcpListener::bind(config.listen_addr())
        .await
        .with_context(|| format!("cannot listen on {}", config.listen_addr()))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut background: Vec<JoinHandle<()>> =
        (0..config.queue.workers.max(1)).map(|_| tokio::spawn(services.queue.clone().work(stopped.clone()))).collect();
    background.push(tokio::spawn(services.clone().follow_cluster(stopped.clone())));
    background.push(tokio::spawn(services.clone().tick(stopped)));
    let mut state = AppState::new(services, limits);
    state.trusted_proxies = Arc::new(config.trusted_proxies()?);
    Ok(Server {
        addr: listener.local_addr()?,
        state,
        created_token_file,
        listener,
        limits,
        shutdown_deadline: config.shutdown_deadline(),
        stop,
        background,
    })
}

impl Server {
    /// Serves until `shutdown` resolves, then shuts down within the deadline (see the module
    /// docs) and closes the store.
    ///
    /// # Errors
    /// When serving fails, or the store cannot make the last writes durable.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let services = self.state.services.clone();
        let router = app(self.state, self.limits);
        let (signalled, mut signal) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            let _ = signalled.send(true);
        };
        // No Nagle delay on answers: a small response must not wait for the client's ACK.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%err, "cannot set TCP_NODELAY");
            }
        });
        // With the peer's address, which webhook triggers' `allow_from` check.
        let router = router.into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, router).with_graceful_shutdown(shutdown).into_future();
        tokio::pin!(serve);
        let served = tokio::select! {
            served = &mut serve => Some(served),
            _ = signal.wait_for(|signalled| *signalled) => None,
        };
        let deadline = tokio::time::Instant::now() + self.shutdown_deadline;
        // Workers take no new batch from here on; those running finish if they can in time.
        let _ = self.stop.send(true);
        let served = match served {
            Some(served) => served,
            None => tokio::time::timeout_at(deadline, serve).await.unwrap_or_else(|_| {
                tracing::warn!("shutdown deadline passed: in-flight requests were cut off");
                Ok(())
            }),
        };
        let mut background = self.background;
        let finished = tokio::time::timeout_at(deadline, async {
            for task in &mut background {
                let _ = task.await;
            }
        })
        .await;
        if finished.is_err() {
            tracing::warn!("shutdown deadline passed: running batches stay queued and run after the restart");
            for task in &background {
                task.abort();
            }
        }
        services.plugins.persist_usage();
        let closed = tokio::time::timeout(Duration::from_secs(10), services.store.close()).await;
        served?;
        match closed {
            Ok(closed) => closed.context("the last flush failed")?,
            Err(_) => anyhow::bail!("the last flush did not finish within 10 s"),
        }
        Ok(())
    }
}

/// The admin token the operator configured: `PLUGBOARD_ADMIN_TOKEN`, else the config file's.
fn configured_admin_token(in_config: Option<String>) -> Option<String> {
    std::env::var("PLUGBOARD_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()).or(in_config)
}

/// Refuses a configured admin token too weak to resist guessing, before anything is opened.
fn check_admin_token(config: &ServeConfig) -> anyhow::Result<()> {
    let Some(token) = configured_admin_token(config.admin_token.clone()) else { return Ok(()) };
    let bits = crate::domain::tokens::estimated_bits(&token);
    if bits < crate::domain::tokens::MIN_ADMIN_TOKEN_BITS {
        anyhow::bail!(
            "the configured admin token (PLUGBOARD_ADMIN_TOKEN or `admin_token`) is too weak: about {bits:.0} bits of \
             entropy, at least {:.0} needed; use a random one, e.g. `openssl rand -hex 32`, or leave it unset and \
             the server creates one in DATA/admin-token",
            crate::domain::tokens::MIN_ADMIN_TOKEN_BITS
        );
    }
    Ok(())
}

/// Makes sure an admin token exists: from the config/environment (replacing an earlier one,
/// audited), or created and written to `data/admin-token` (0600).
async fn ensure_admin_token(
    services: &Services,
    data: &Path,
    configured: Option<String>,
) -> anyhow::Result<Option<PathBuf>> {
    let configured = configured_admin_token(configured);
    // In a cluster, nodes starting together may race for the token: the loser retries against
    // the winner's (and then has one already).
    for _ in 0..10 {
        let mut created = None;
        let token = match configured.clone() {
            Some(token) => token,
            None if services.access.has_admin_token() => return Ok(None),
            None => {
                let token = crate::domain::access::new_token()?;
                created = Some(data.join("admin-token"));
                token
            }
        };
        match services.access.set_admin_token(&token).await {
            Err(crate::domain::DomainError::Store(crate::store::StoreError::Conflict(_))) => {
                services.access.reload_tokens()?;
                continue;
            }
            result => result?,
        }
        if let Some(path) = &created {
            write_private(path, &token)?;
        }
        return Ok(created);
    }
    anyhow::bail!("another node kept changing the tokens while this one started")
}

/// This node's id in a cluster: random on first start, then kept in `DATA/node-id`, so a
/// restarted node owns its queued work again.
fn node_id(data: &Path) -> anyhow::Result<String> {
    let path = data.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_string());
    }
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    let id = format!("n{}", hex::encode(bytes));
    write_private(&path, &id)?;
    Ok(id)
}

/// Creates the data directory readable by its owner only (0700), tightening an existing one, and
/// makes every file the process creates from now on 0600 (umask 077): the database, the compiled
/// cache, the token and key files.
fn private_directory(data: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let permissions = std::fs::metadata(data)?.permissions();
        if permissions.mode() & 0o077 != 0 {
            tracing::warn!(dir = %data.display(), "the data directory was readable by others; it is now 0700");
            std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict {}", data.display()))?;
        }
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
