//! Host implementations of the interfaces a plugin imports, one file per interface.

pub mod config;
pub mod keyvalue;
pub mod logs;
pub mod outbound;
