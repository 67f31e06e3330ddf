//! Plugboard's host: the pieces behind the `plugboard` command, as a library so the integration
//! tests drive them directly.

pub mod demo;
pub mod run;
pub mod samples;
pub mod sign;
