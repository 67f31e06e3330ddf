//! Plugboard's HTTP API as types, shared by the server (`plugboard-host-api`'s `api` layer), its
//! HTTP client and the tests, so a field renamed in one place is a compile error in the others
//! instead of an `undefined` at run time.
//!
//! Nothing here knows axum, sled or wasmtime: these are the wire shapes only, mapped from the
//! stored records and the runtime's types at the server's edge, so the storage format can change
//! without changing the API. Each type derives a JSON Schema (schemars, draft 2020-12, which is
//! OpenAPI 3.1's dialect), and `/openapi.json` takes its schemas from them. Documents another
//! layer defines (manifests, flow definitions, executions) are carried as JSON and referred to by
//! schema name ([`documents`]).

pub mod access;
pub mod connections;
pub mod documents;
pub mod error;
pub mod flows;
pub mod plugins;

pub use error::{ApiErrorCode, ErrorBody};
