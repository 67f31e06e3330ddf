//! Plugboard's runtime: load WebAssembly plugin components and run them under budgets.
//!
//! A plugin is a component implementing one of the worlds in `wit/plugin.wit` (`transformer`,
//! `source`, `sink`). [`Runtime::load`] takes the component bytes with a [`Manifest`] and the
//! operator's [`Grant`] and returns a [`Plugin`]; [`Plugin::transform`], [`Plugin::read`] and
//! [`Plugin::write`] invoke it. Every invocation runs in a fresh Store under its effective
//! [`Budget`] — fuel, wall-clock deadline, memory over all memories, input and output bytes — and
//! returns an [`Invocation`] carrying the output or a typed [`Error`], plus [`Usage`] and logs.
//!
//! ```no_run
//! # async fn demo(bytes: &[u8]) -> Result<(), plugboard_runtime::Error> {
//! use plugboard_runtime::{Grant, Manifest, Record, Runtime, RuntimeConfig};
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let manifest = Manifest::from_toml(r#"name = "upper"
//! version = "0.1.0"
//! kind = "transformer""#)?;
//! let plugin = runtime.load(bytes, manifest, &Grant::default())?;
//! let out = plugin.transform(vec![Record::json(&serde_json::json!({"a": 1}))]).await;
//! println!("{:?} used {:?}", out.outcome?, out.usage);
//! # Ok(()) }
//! ```

pub mod bindings;
pub mod budget;
mod cache;
pub mod cause;
mod earlier;
mod engine;
pub mod error;
mod failure;
pub mod flow;
pub mod grant;
pub mod host;
mod invoke;
mod limiter;
pub mod manifest;
mod plugin;
pub mod record;
mod redact;
#[cfg(any(test, feature = "schema-check"))]
pub mod schema_check;
#[cfg(test)]
mod schema_tests;
pub mod signing;
mod state;
pub mod sync;
mod world;

pub use budget::{Budget, BudgetLimits, BudgetSources, LimitSource};
pub use cache::ArtifactCache;
pub use engine::{FUEL_YIELD_INTERVAL, Runtime, RuntimeConfig};
pub use error::{Error, ErrorCode, Result, TrapKind};
pub use grant::{Effective, Grant};
pub use host::keyvalue::{
    ChangeSet, CommitError, KeyValueQuota, KeyValueStore, KeyValueUsage, MemoryKeyValue, QuotaExceeded, StagedKeyValue,
};
pub use host::logs::{LogEntry, LogLevel, Logs};
pub use host::lookup_shares::{LookupLimits, LookupsFull};
pub use host::outbound::{HostPattern, MAX_IN_FLIGHT, OutboundLimits};
pub use host::resolver::{DnsResolver, Lookup, Resolve};
pub use invoke::{Invocation, Usage};
pub use limiter::MemoryLimitExceeded;
pub use manifest::{Capabilities, Contract, Kind, Manifest};
pub use plugin::{CompileSource, Plugin, digest};
pub use record::{Batch, Header, Page, PluginError, Record, RecordIssue, WriteReport, batch_size};
pub use state::{MAX_COMPONENT_HANDLES, MAX_FIELDS_BYTES, MAX_HOST_RESOURCES};
