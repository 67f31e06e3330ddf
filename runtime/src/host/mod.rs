//! Host implementations of the interfaces a plugin imports, one file per interface.

pub(crate) mod addresses;
pub mod config;
pub mod credentials;
pub mod keyvalue;
pub mod logs;
pub mod lookup_shares;
pub mod outbound;
pub mod patterns;
pub mod resolver;
pub mod retry_after;
pub(crate) mod transport;
