//! The crate Plugboard plugin authors depend on.
//!
//! A plugin is a WebAssembly component that targets one of Plugboard's three WIT worlds
//! (`transformer`, `source`, `sink`, defined in the repository's `wit/plugin.wit`). This crate binds
//! the imports every plugin may use once (logging, granted configuration, outbound HTTP, key-value
//! state, and the shared record types) and offers one trait per world plus an `export_*!` macro that binds the
//! world's exports inside the plugin's own crate:
//!
//! ```ignore
//! use plugboard_plugin_sdk::{Batch, PluginError, Record, Transformer};
//!
//! struct Upper;
//!
//! impl Transformer for Upper {
//!     fn transform(input: Batch) -> Result<Batch, PluginError> {
//!         Ok(input.into_iter().map(|r| Record { value: r.value.to_ascii_uppercase(), ..r }).collect())
//!     }
//! }
//!
//! plugboard_plugin_sdk::export_transformer!(Upper);
//! ```
//!
//! Build it with plain `cargo build --target wasm32-wasip2`; the result is a component. Why the
//! exports are bound in the plugin crate: wit-bindgen merges every world it finds in a module into
//! the component, so an SDK that bound all three worlds' exports would force every plugin to
//! implement all three.

pub mod config;
pub mod http;
pub mod json;
pub mod kv;
pub mod log;
/// Why a path or condition from a plugin's config does not parse.
pub use plugboard_expr::ExprError;
/// Conditions on records, as flow routes evaluate them (see `plugboard-expr`).
pub use plugboard_expr::condition;
/// JSON paths: the record-expression language's (see `plugboard-expr`), re-exported.
pub use plugboard_expr::path;

/// A path or condition in the config that does not parse is the config's fault:
/// `PluginError::InvalidConfig` with the expression's message (so `?` works in `configure`-style
/// code).
impl From<ExprError> for PluginError {
    fn from(err: ExprError) -> PluginError {
        PluginError::InvalidConfig(err.to_string())
    }
}
pub mod projection;
mod record;

/// Raw bindings to every interface a plugin may import, generated from `wit/` by wit-bindgen.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugboard:plugin/plugin-imports@0.2.0",
        generate_all,
    });
}

pub use bindings::plugboard::plugin::types::{DelayedRetry, Header, PluginError, Record, RecordIssue};

/// A batch of records: what every plugin takes and most return.
pub type Batch = Vec<Record>;

/// A transformer turns one batch into another: map, filter, flat-map, aggregate or validate.
pub trait Transformer {
    /// Transforms `input`; may return fewer, as many or more records than it got.
    ///
    /// # Errors
    /// The plugin's own typed [`PluginError`], passed to the caller unchanged.
    fn transform(input: Batch) -> Result<Batch, PluginError>;
}

/// One page read by a [`Source`].
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The records of this page.
    pub records: Batch,
    /// Where the next read starts. `Some(c)` becomes the flow's stored cursor once the execution
    /// is stored; `None` leaves the stored cursor as it was, so the next run reads this page again
    /// (return the position after the last record to avoid re-reads).
    pub next_cursor: Option<String>,
}

/// A source pulls records from an outside system, page by page.
pub trait Source {
    /// Reads at most `max_records` records starting at `cursor` (`None`: from the beginning).
    ///
    /// # Errors
    /// The plugin's own typed [`PluginError`]; use [`PluginError::Retryable`] for transient failures
    /// ([`PluginError::RetryAfter`] when the remote said how long to wait; see
    /// [`http::Response::retry_error`]).
    fn read(cursor: Option<String>, max_records: u32) -> Result<Page, PluginError>;
}

/// What a [`Sink`] delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Records the outside system accepted.
    pub accepted: u32,
    /// Records the outside system rejected.
    pub failed: u32,
}

/// A sink delivers records to an outside system.
pub trait Sink {
    /// Delivers `input`.
    ///
    /// # Errors
    /// The plugin's own typed [`PluginError`]; use [`PluginError::Retryable`] for transient failures
    /// ([`PluginError::RetryAfter`] when the remote said how long to wait; see
    /// [`http::Response::retry_error`]).
    fn write(input: Batch) -> Result<WriteReport, PluginError>;
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

include!(concat!(env!("OUT_DIR"), "/export_macros.rs"));
