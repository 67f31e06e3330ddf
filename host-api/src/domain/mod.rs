//! The domain: plugin lifecycle, trust and tokens, flows and their work queue.
//!
//! It knows nothing of HTTP: every operation returns a [`DomainError`], which the HTTP layer
//! (`crate::api`) maps to a status and a stable `code`. Roles are checked by the HTTP layer too;
//! the domain takes the caller's name only, for the audit log. Storage goes through the
//! [`Storage`] trait, so the domain never sees a backend type.
//!
//! [`Services`] holds one service per responsibility: [`Plugins`], [`Access`], [`Flows`] and the
//! [`WorkQueue`] with its workers.

pub mod access;
pub mod connections;
pub mod cron;
pub mod flows;
pub mod follow;
pub mod plugins;
pub mod queue;
pub mod runs;
pub mod telemetry;
pub mod tokens;
pub mod usage;
pub mod webhook;

pub use access::Access;
pub use flows::Flows;
pub use plugins::Plugins;
pub use queue::{QueueSettings, WorkQueue};

use crate::store::{Storage, StoreError};
use plugboard_runtime::signing::VerifyOptions;
use plugboard_runtime::{Error, Runtime};
use std::sync::Arc;

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The runtime's typed error (signature, manifest, limits, not-found, conflict, …).
    #[error(transparent)]
    Runtime(#[from] Error),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request itself is malformed.
    #[error("{0}")]
    Invalid(String),
    /// A flow uses a plugin that has no active version right now.
    #[error("flow {flow} uses plugin {plugin}, which has no active version")]
    PluginInactive {
        /// The flow.
        flow: String,
        /// The plugin.
        plugin: String,
    },
    /// The work queue (of the flow, or in total) is at its bound; nothing was queued.
    #[error("the work queue {scope} is full ({depth} runs queued); retry later")]
    QueueFull {
        /// `of flow NAME` or `of the server`.
        scope: String,
        /// Runs queued.
        depth: usize,
        /// A hint for callers, in seconds.
        retry_after_secs: u64,
    },
    /// A fault inside the host (a task panicked, randomness failed); the detail is logged.
    #[error("internal: {0}")]
    Internal(#[source] plugboard_runtime::cause::Cause),
}

/// Result of a domain operation.
pub type Result<T> = std::result::Result<T, DomainError>;

impl DomainError {
    /// A host fault: an error value (kept as the cause), or a message where there is none.
    pub fn internal(err: impl Into<plugboard_runtime::cause::Boxed>) -> DomainError {
        DomainError::Internal(plugboard_runtime::cause::Cause::new(err))
    }

    /// A host fault: `err`, met while doing `what`.
    pub fn internal_in(what: impl Into<String>, err: impl Into<plugboard_runtime::cause::Boxed>) -> DomainError {
        DomainError::Internal(plugboard_runtime::cause::Cause::context(what, err))
    }

    /// `not-found` for `what`.
    pub fn not_found(what: impl Into<String>) -> DomainError {
        DomainError::Runtime(Error::NotFound(what.into()))
    }

    /// `conflict` because of `why`.
    pub fn conflict(why: impl Into<String>) -> DomainError {
        DomainError::Runtime(Error::Conflict(why.into()))
    }
}

/// Every domain service, shared by the HTTP handlers, the workers and the CLI's demo setup.
#[derive(Clone)]
pub struct Services {
    /// The store.
    pub store: Arc<dyn Storage>,
    /// Installed plugins.
    pub plugins: Arc<Plugins>,
    /// Trust store, tokens and audit log.
    pub access: Arc<Access>,
    /// Flow definitions, runs, executions and dead letters.
    pub flows: Arc<Flows>,
    /// Queued work and its workers.
    pub queue: Arc<WorkQueue>,
    /// Operator-held credentials for plugins' requests.
    pub connections: Arc<connections::Connections>,
    /// What the runtime asks for those credentials (reloaded on every change).
    pub credentials: Arc<connections::credentials::HostCredentials>,
}

impl Services {
    /// Opens every service over `store`, loading every active plugin from its cached artifact and
    /// marking executions a crash interrupted.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn open(
        runtime: Runtime,
        store: Arc<dyn Storage>,
        credentials: Arc<connections::credentials::HostCredentials>,
        verify: VerifyOptions,
        queue: QueueSettings,
        token_hasher: tokens::TokenHasher,
    ) -> Result<Services> {
        let write_lock = Arc::new(tokio::sync::Mutex::new(()));
        let plugins = Plugins::open(runtime, store.clone(), verify, write_lock.clone()).await?;
        let access = Arc::new(Access::open(store.clone(), plugins.clone(), write_lock, token_hasher)?);
        let flows = Arc::new(Flows::new(store.clone(), plugins.clone()));
        flows.mark_interrupted()?;
        let queue = Arc::new(WorkQueue::open(store.clone(), flows.clone(), queue)?);
        let connections = Arc::new(connections::Connections::new(store.clone(), credentials.clone()));
        Ok(Services { store, plugins, access, flows, queue, connections, credentials })
    }
}
