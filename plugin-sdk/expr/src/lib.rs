//! Plugboard's record-expression language, one crate for the host and for plugins.
//!
//! Flow routes (`plugboard-runtime`) and plugins written with the Rust SDK (the `filter` sample
//! among them) evaluate the same expressions with this code, so a condition means the same in a
//! route and in a plugin: [`path`] (`$.order.items[-1].sku`, `$.items[*].price`) and
//! [`condition`] (`{"field": "$.total", "op": "gte", "value": 1000}`, combined with `all`, `any`
//! and `not`). Plain `serde_json`, no host or wasm dependencies: it builds for both.

pub mod condition;
pub mod error;
pub mod path;

pub use condition::{Compiled, Condition, Field, Op};
pub use error::ExprError;
pub use path::Path;
