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

/// System lookups running at once, host-wide. A lookup cannot be cancelled once the system
/// resolver has it, so one abandoned by an ended invocation keeps its place until it returns:
/// plugins cannot pile up blocking lookups past this bound, however many invocations they start.
pub const MAX_SYSTEM_LOOKUPS: usize = 32;

static SYSTEM_LOOKUPS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_SYSTEM_LOOKUPS);

/// The operating system's resolver (`getaddrinfo`), on tokio's blocking pool.
///
/// Dropping the future stops waiting for it; the blocking call itself ends on the system
/// resolver's own timeout and holds one of [`MAX_SYSTEM_LOOKUPS`] places until then. When all are
/// taken the lookup fails at once (a denial), rather than queueing behind lookups that hang.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn lookup(&self, host: &str) -> Lookup {
        let host = host.to_owned();
        Box::pin(async move {
            let permit = SYSTEM_LOOKUPS.try_acquire().map_err(|_| {
                io::Error::new(io::ErrorKind::WouldBlock, "too many DNS lookups are in flight on this host")
            })?;
            let lookup = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), 0))
                    .map(|addrs| addrs.map(|addr| addr.ip()).collect::<Vec<_>>())
            });
            lookup.await.map_err(io::Error::other)?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn system_lookups_are_bounded_host_wide() {
        let Ok(all) = SYSTEM_LOOKUPS.try_acquire_many(MAX_SYSTEM_LOOKUPS as u32) else {
            return; // another test holds a place right now; the bound itself is what matters
        };
        let refused = SystemResolver.lookup("localhost").await;
        assert_eq!(refused.map_err(|err| err.kind()), Err(io::ErrorKind::WouldBlock), "no place left: refused at once");
        drop(all);
        let answered = SystemResolver.lookup("localhost").await.expect("localhost resolves");
        assert!(answered.iter().all(IpAddr::is_loopback), "{answered:?}");
    }
}
