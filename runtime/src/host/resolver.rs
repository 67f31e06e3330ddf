//! Name resolution for outbound HTTP, pluggable so that embedders (and tests) choose the resolver.
//!
//! The outbound policy resolves a destination exactly once per request, checks every address it
//! got, and connects only to those: nothing downstream sees the name again (see
//! [`crate::host::outbound`]).

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;

/// The pending answer of one lookup.
pub type Lookup = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Resolves a DNS name to IP addresses.
pub trait Resolve: Send + Sync + Debug {
    /// The addresses `host` (a DNS name, never an IP literal) resolves to. The outbound policy
    /// calls this once per request and treats an error or an empty answer as a denial.
    fn lookup(&self, host: &str) -> Lookup;
}

/// The operating system's resolver, through [`tokio::net::lookup_host`].
///
/// The lookup runs on tokio's blocking pool: dropping the future stops waiting for it, and the
/// blocking call itself ends on the system resolver's own timeout.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn lookup(&self, host: &str) -> Lookup {
        let host = host.to_owned();
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.map(|addr| addr.ip()).collect()) })
    }
}
