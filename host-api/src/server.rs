//! `plugboard serve`: the control plane over a data directory, with graceful shutdown.
//!
//! Defaults users expect: no flags needed — loopback address, `./plugboard-data`, an admin token
//! created on first start (mode 0600 in the data directory, its path printed once) unless
//! `PLUGBOARD_ADMIN_TOKEN` or the config file sets one. SIGINT/SIGTERM stop accepting, let
//! in-flight requests finish, and flush the database.

use crate::api::auth::{Role, token_hash};
use crate::api::{AppState, ServerLimits, app};
use crate::registry::Registry;
use crate::store::{Store, TokenRecord};
use anyhow::Context;
use plugboard_runtime::signing::VerifyOptions;
use plugboard_runtime::{Runtime, RuntimeConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
}

impl ServeConfig {
    /// Reads a TOML config file.
    ///
    /// # Errors
    /// When it cannot be read or has unknown keys.
    pub fn from_file(path: &Path) -> anyhow::Result<ServeConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(|| PathBuf::from("plugboard-data"))
    }

    /// The listen address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8686)))
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
    worker: tokio::task::JoinHandle<()>,
}

/// Opens the data directory and binds the listener.
///
/// # Errors
/// When the data directory or database cannot be opened, or the address cannot be bound.
pub async fn start(config: &ServeConfig, limits: ServerLimits) -> anyhow::Result<Server> {
    let data = config.data_dir();
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    let store = Store::open(&data.join("db"))
        .context("cannot open the database (is another server using this data directory?)")?;
    let runtime = Runtime::new(RuntimeConfig {
        caps: plugboard_runtime::Budget::default().with_overrides(&config.caps),
        cache_dir: Some(data.join("compiled")),
        key_value: Arc::new(store.clone()),
        ..RuntimeConfig::default()
    })?;
    let created_token_file = ensure_admin_token(&store, &data, config.admin_token.clone()).await?;
    let verify = VerifyOptions { allow_unsigned: config.allow_unsigned };
    if verify.allow_unsigned {
        tracing::warn!("UNSIGNED PLUGINS ARE ACCEPTED (--allow-unsigned): never do this in production");
    }
    let registry = Registry::open(runtime, store, verify).await.map_err(|e| anyhow::anyhow!("{}", e.code()))?;
    let worker = crate::flows::start_worker(registry.clone());
    let state = AppState::new(registry, limits);
    let listener = tokio::net::TcpListener::bind(config.listen_addr())
        .await
        .with_context(|| format!("cannot listen on {}", config.listen_addr()))?;
    Ok(Server { addr: listener.local_addr()?, state, created_token_file, listener, limits, worker })
}

impl Server {
    /// Serves until `shutdown` resolves, then lets in-flight requests finish and flushes.
    ///
    /// # Errors
    /// When serving or the final flush fails.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let registry = self.state.registry.clone();
        let store = registry.store.clone();
        let router = app(self.state, self.limits);
        let served = axum::serve(self.listener, router).with_graceful_shutdown(shutdown).await;
        // Queued work not yet run stays queued (durably) and runs after the next start.
        self.worker.abort();
        let _ = self.worker.await;
        served?;
        registry.persist_usage();
        store.flush().await?;
        Ok(())
    }
}

/// Makes sure an admin token exists: from the config/environment, or created and written to
/// `data/admin-token` (0600).
async fn ensure_admin_token(store: &Store, data: &Path, configured: Option<String>) -> anyhow::Result<Option<PathBuf>> {
    let mut tokens = store.tokens()?;
    let configured = std::env::var("PLUGBOARD_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()).or(configured);
    let mut created = None;
    let token = match configured {
        Some(token) => token,
        None if tokens.iter().any(|t| t.name == "admin") => return Ok(None),
        None => {
            let token = crate::api::auth::new_token().map_err(|e| anyhow::anyhow!("{}", e.code()))?;
            let path = data.join("admin-token");
            write_private(&path, &token)?;
            created = Some(path);
            token
        }
    };
    tokens.retain(|t| t.name != "admin");
    tokens.push(TokenRecord { name: "admin".into(), role: Role::Admin, hash: token_hash(&token) });
    store.put_tokens(&tokens)?;
    store.flush().await?;
    Ok(created)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
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
