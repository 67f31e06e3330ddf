//! Name resolution for outbound HTTP, pluggable so that embedders (and tests) choose the resolver.
//!
//! The outbound policy resolves a destination exactly once per request, checks every address it
//! got, and connects only to those: nothing downstream sees the name again (see
//! [`crate::host::outbound`]).
//!
//! The default, [`DnsResolver`], asks the system's name servers (`/etc/resolv.conf`, and
//! `/etc/hosts` first) from inside the process, with hickory's asynchronous resolver rather than
//! the C library's blocking `getaddrinfo`: a lookup is a future, and dropping it ends it. A
//! blocking lookup, once started, held a thread and a place of the host's lookup bound for the
//! system resolver's whole timeout (10–30 s) after the invocation that wanted it was gone, and
//! one plugin asking for names that never answer held them all (`host::lookup_shares`).

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The pending answer of one lookup.
pub type Lookup = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Resolves a DNS name to IP addresses.
pub trait Resolve: Send + Sync + Debug {
    /// The addresses `host` (a DNS name, never an IP literal) resolves to. The outbound policy
    /// calls this once per request and treats an error or an empty answer as a denial.
    fn lookup(&self, host: &str) -> Lookup;
}

/// How long one name server is given to answer one query; the outbound policy's connect timeout
/// bounds the whole lookup again.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a [`DnsResolver`] sends its queries.
#[derive(Debug, Clone)]
enum Servers {
    /// The system's configuration, read at the first lookup.
    System,
    /// One name server, UDP then TCP on its port; no hosts file.
    Only(SocketAddr),
}

/// Hickory's asynchronous resolver: cancellable lookups, the system's configuration by default.
///
/// Built at the first lookup (inside the runtime that drives it) and shared by every clone. When
/// the system configuration cannot be read, only `/etc/hosts` answers, and the reason is logged
/// once: every other name is a denial, never a guess at some public resolver.
#[derive(Clone)]
pub struct DnsResolver {
    servers: Servers,
    resolver: Arc<OnceLock<Result<TokioResolver, String>>>,
}

impl Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsResolver").field("servers", &self.servers).finish_non_exhaustive()
    }
}

impl Default for DnsResolver {
    fn default() -> DnsResolver {
        DnsResolver::system()
    }
}

impl DnsResolver {
    /// The system's name servers, search domains and hosts file.
    pub fn system() -> DnsResolver {
        DnsResolver { servers: Servers::System, resolver: Arc::default() }
    }

    /// Only the name server at `server` (a local resolver, a test's server).
    pub fn with_name_server(server: SocketAddr) -> DnsResolver {
        DnsResolver { servers: Servers::Only(server), resolver: Arc::default() }
    }

    fn resolver(&self) -> &Result<TokioResolver, String> {
        self.resolver.get_or_init(|| build(&self.servers))
    }
}

fn build(servers: &Servers) -> Result<TokioResolver, String> {
    let (config, mut options) = match servers {
        Servers::System => hickory_resolver::system_conf::read_system_conf().unwrap_or_else(|err| {
            tracing::warn!(%err, "the system's DNS configuration cannot be read; outbound names resolve from /etc/hosts only");
            (ResolverConfig::from_parts(None, vec![], vec![]), ResolverOpts::default())
        }),
        Servers::Only(server) => {
            let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
            for connection in &mut name_server.connections {
                connection.port = server.port();
            }
            let mut options = ResolverOpts::default();
            options.use_hosts_file = ResolveHosts::Never;
            (ResolverConfig::from_parts(None, vec![], vec![name_server]), options)
        }
    };
    // Every address of the name is checked before any is connected to, as with getaddrinfo.
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    options.timeout = options.timeout.min(QUERY_TIMEOUT);
    if matches!(servers, Servers::System) {
        options.use_hosts_file = ResolveHosts::Always;
    }
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default()).with_options(options).build().map_err(
        |err| {
            tracing::warn!(%err, "the DNS resolver cannot be built; every outbound name is a denial");
            format!("no DNS resolver: {err}")
        },
    )
}

impl Resolve for DnsResolver {
    fn lookup(&self, host: &str) -> Lookup {
        let resolver = self.resolver().clone();
        let host = host.to_owned();
        Box::pin(async move {
            let resolver = resolver.map_err(io::Error::other)?;
            match resolver.lookup_ip(host.as_str()).await {
                Ok(found) => Ok(found.iter().collect()),
                Err(err) if err.is_no_records_found() || err.is_nx_domain() => Ok(Vec::new()),
                Err(err) => Err(io::Error::other(err.to_string())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_hosts_file_answers_localhost() {
        let answered = DnsResolver::system().lookup("localhost").await.expect("localhost resolves");
        assert!(!answered.is_empty() && answered.iter().all(IpAddr::is_loopback), "{answered:?}");
    }
}
