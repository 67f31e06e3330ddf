//! Outbound HTTP for connectors: an allow-list checked on every request, with size and time bounds.
//!
//! Deny by default. A request reaches the network only when its destination matches one of the
//! installation's effective [`HostPattern`]s. Loopback, private, link-local and other non-public
//! addresses (`host::addresses`) are reachable only through a pattern that names the host
//! exactly (no wildcard), and a DNS name that resolves to such an address counts as that address.
//! A refused request fails in the guest with `error-code.HTTP-request-denied`, so the plugin sees a
//! typed denial and the host stays up; the plugin's log (context `host`) says why. Request and
//! response bodies are capped and every phase of the exchange has a timeout.
//!
//! Resolve once: a name is looked up exactly once per request, through the runtime's [`Resolve`],
//! every address in the answer is checked, and the connection goes to those addresses only
//! (`host::transport`). Checking one answer and then letting the connector resolve again
//! would let a DNS server answer a public address to the check and a private one to the connect
//! (rebinding). A lookup that fails, times out (the connect timeout) or answers nothing is a
//! denial: an address nobody could check is not reached. A lookup takes a place of the plugin's
//! share of the host's lookups first (`host::lookup_shares`); with none free the request fails
//! with `connection-limit-reached` in the guest and the invocation, if it then fails, is
//! `overloaded` (retryable): the host's capacity, not a denial the plugin could fix.
//!
//! Also denied: an authority with user info (`user:password@host`), which has no meaning for
//! `wasi:http` and would otherwise put credentials in the `Host` header; and more than
//! [`MAX_IN_FLIGHT`] requests of one invocation in flight at once.
//!
//! Lifetime: `wasi:http` runs each request, this hook's future included, in a task whose handle
//! aborts it on drop (`AbortOnDropJoinHandle`) and lives in the invocation's resource table, as
//! does the task driving a response's connection. Dropping the invocation's Store therefore
//! cancels its lookups (and gives their places back), connects and transfers.

use crate::host::addresses::{is_link_local, is_non_public};
use crate::host::credentials::{CredentialError, Credentials};
use crate::host::logs::LogSink;
use crate::host::lookup_shares::{LookupsFull, PluginLookups};
pub use crate::host::patterns::HostPattern;
use crate::host::resolver::Resolve;
use crate::host::retry_after::RetryAfterSeen;
use crate::host::transport::{self, Timeouts};
use crate::sync::Locked;
use http_body_util::{BodyExt, Limited};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Most outbound requests one invocation may have in flight at once (from the call that sends it
/// until its response body is done); one more is denied.
pub const MAX_IN_FLIGHT: usize = 8;

/// Most distinct credential values one invocation keeps for blanking.
const MAX_CREDENTIALS_BLANKED: usize = 32;

/// Size and time bounds on outbound exchanges.
#[derive(Debug, Clone, Copy)]
pub struct OutboundLimits {
    /// Largest request body a guest may send.
    pub max_request_body: usize,
    /// Largest response body a guest may receive.
    pub max_response_body: usize,
    /// Upper bound on connect, first-byte and between-bytes timeouts.
    pub max_phase_timeout: Duration,
}

impl Default for OutboundLimits {
    fn default() -> OutboundLimits {
        OutboundLimits {
            max_request_body: 8 << 20,
            max_response_body: 16 << 20,
            max_phase_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a request is denied. Shown in the logs; the guest sees `HTTP-request-denied`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Denial {
    #[error("{}", not_allowed(.url, *.requested))]
    NotAllowed {
        /// `scheme://host:port`.
        url: String,
        /// Whether the manifest requests a matching pattern (so the grant is what lacks it).
        requested: bool,
    },
    #[error("{0} is a loopback or private address; it must be listed exactly, not by wildcard")]
    NonPublic(String),
    #[error(
        "{0} resolves to a loopback or private address; a name reaches one only when the grant says \
         `allow_private` (or grant the IP address itself)"
    )]
    PrivateName(String),
    #[error("{0} is (or resolves to) a link-local address, where metadata services answer; never reached")]
    LinkLocal(String),
    #[error("{host} could not be resolved ({reason}); an address that cannot be checked is not reached")]
    Unresolved { host: String, reason: String },
    #[error("the authority of a request to {0} carries user info (`user@host`), which is not allowed")]
    UserInfo(String),
    #[error("the request names no host")]
    NoHost,
    #[error("more than {MAX_IN_FLIGHT} outbound requests in flight at once")]
    TooManyInFlight,
    #[error("no credential for this request: {0}")]
    Credential(String),
    /// Not a denial: the host's capacity (see [`OutboundPolicy::lookups_full`]).
    #[error("{0}")]
    LookupsFull(LookupsFull),
}

/// Why a host is not allowed, and where to fix it: the manifest (a signed request, changed only by
/// publishing a new version) or the operator's grant.
fn not_allowed(url: &str, requested: bool) -> String {
    if requested {
        format!(
            "{url} is requested by the plugin's manifest but not granted by the operator (grant it: `plugboard grant <plugin> --allow-host <pattern>`)"
        )
    } else {
        format!(
            "{url} is not among the manifest's `outbound_hosts` (add it to plugin.toml and publish a new version; a grant cannot widen the manifest)"
        )
    }
}

/// The `wasi:http` hooks for one invocation: the allow-list, bounds, resolver and a log of denials.
pub struct OutboundPolicy {
    allowed: Arc<[HostPattern]>,
    requested: Arc<[HostPattern]>,
    limits: OutboundLimits,
    resolver: Arc<dyn Resolve>,
    lookups: PluginLookups,
    /// The first lookup of the invocation that found no place.
    lookups_full: Arc<std::sync::OnceLock<LookupsFull>>,
    log: LogSink,
    in_flight: Arc<Semaphore>,
    /// The plugin's granted connections and where their credentials come from.
    connections: Arc<[String]>,
    credentials: Option<Arc<dyn Credentials>>,
    /// The longest `Retry-After` the invocation's remotes answered with.
    retry_after: RetryAfterSeen,
    /// The credentials added to the invocation's requests, by connection, to blank afterwards.
    credentials_sent: Arc<std::sync::Mutex<Vec<(String, String)>>>,
    /// Whether an exactly granted name may resolve to a private or loopback address.
    allow_private: bool,
}

impl OutboundPolicy {
    pub(crate) fn new(
        allowed: Arc<[HostPattern]>,
        requested: Arc<[HostPattern]>,
        limits: OutboundLimits,
        resolver: Arc<dyn Resolve>,
        lookups: PluginLookups,
        log: LogSink,
    ) -> OutboundPolicy {
        let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        OutboundPolicy {
            allowed,
            requested,
            limits,
            resolver,
            lookups,
            lookups_full: Arc::default(),
            log,
            in_flight,
            connections: Arc::new([]),
            credentials: None,
            retry_after: RetryAfterSeen::default(),
            credentials_sent: Arc::default(),
            allow_private: false,
        }
    }

    /// Lets exactly granted names resolve to private and loopback addresses (the grant's
    /// `allow_private`); link-local stays unreachable.
    pub(crate) fn allowing_private(mut self, allow_private: bool) -> OutboundPolicy {
        self.allow_private = allow_private;
        self
    }

    /// The credentials added to this invocation's requests: (`connection NAME`, value), the
    /// header's whole value and its part after the scheme (`Bearer TOKEN` → `TOKEN`).
    pub(crate) fn credentials_sent(&self) -> Vec<(String, String)> {
        self.credentials_sent.locked().clone()
    }

    /// The longest delay a remote asked for (`429`/`503` with `Retry-After`) in this invocation.
    pub(crate) fn remote_delay(&self) -> Option<Duration> {
        self.retry_after.longest()
    }

    /// Why a lookup of this invocation found no place, if one did not.
    pub(crate) fn lookups_full(&self) -> Option<LookupsFull> {
        self.lookups_full.get().copied()
    }

    /// Adds the credentials of the plugin's granted `connections` to its requests to their
    /// hosts (see [`crate::host::credentials`]).
    pub(crate) fn with_credentials(
        mut self,
        connections: Arc<[String]>,
        credentials: Option<Arc<dyn Credentials>>,
    ) -> OutboundPolicy {
        self.connections = connections;
        self.credentials = credentials.filter(|_| !self.connections.is_empty());
        self
    }
}

/// The addresses a request to `scheme://host:port` may connect to: the IP literal, or every
/// address the single lookup of the name answered, each checked against the matching pattern: a
/// wildcard reaches only public addresses, an exact name a private one only with
/// `allow_private`, an exact IP literal whatever it names, and nothing reaches link-local. A name
/// is looked up only in a place of the plugin's lookups, held until the lookup ends.
async fn vet(
    allowed: &[HostPattern],
    resolution: Resolution<'_>,
    scheme: &str,
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Denial> {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    if host.is_empty() {
        return Err(Denial::NoHost);
    }
    // An exact pattern that matches decides over a wildcard that also does (`["*", "10.0.0.7"]`).
    let matching = || allowed.iter().filter(|p| p.matches(scheme, &host, port));
    let Some(pattern) = matching().find(|p| p.is_exact()).or_else(|| matching().next()) else {
        return Err(Denial::NotAllowed { url: format!("{scheme}://{host}:{port}"), requested: false });
    };
    let literal = host.parse::<IpAddr>().is_ok();
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match resolution.lookup(&host).await? {
            Ok(Ok(found)) if !found.is_empty() => found,
            Ok(Ok(_)) => return Err(Denial::Unresolved { host, reason: "no addresses".into() }),
            Ok(Err(err)) => return Err(Denial::Unresolved { host, reason: err.to_string() }),
            Err(_) => return Err(Denial::Unresolved { host, reason: "the lookup timed out".into() }),
        },
    };
    if addresses.iter().copied().any(is_link_local) {
        return Err(Denial::LinkLocal(host));
    }
    if addresses.iter().copied().any(is_non_public) {
        if !pattern.is_exact() {
            return Err(Denial::NonPublic(host));
        }
        if !literal && !allow_private {
            return Err(Denial::PrivateName(host));
        }
    }
    Ok(addresses.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
}

/// How a name is looked up: by which resolver, in a place of which plugin's share (none in unit
/// tests of the policy), within how long.
struct Resolution<'a> {
    resolver: &'a dyn Resolve,
    places: Option<&'a PluginLookups>,
    timeout: Duration,
}

impl Resolution<'_> {
    /// The lookup's answer (or `Elapsed`), in a place held until it ends; no place is a denial
    /// the caller turns into `overloaded`.
    async fn lookup(
        &self,
        host: &str,
    ) -> Result<Result<std::io::Result<Vec<IpAddr>>, tokio::time::error::Elapsed>, Denial> {
        let _place = self.places.map(PluginLookups::take).transpose().map_err(Denial::LookupsFull)?;
        Ok(tokio::time::timeout(self.timeout, self.resolver.lookup(host)).await)
    }
}

fn clamp(option: Option<Duration>, cap: Duration) -> Duration {
    option.map_or(cap, |d| d.min(cap))
}

type ConnectionIo = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, ConnectionIo), HttpError>> + Send> {
        drop(fut);
        // Taken now, when the guest sends, and held until the response's connection is done.
        let permit = self.in_flight.clone().try_acquire_owned();
        let allowed = self.allowed.clone();
        let requested = self.requested.clone();
        let limits = self.limits;
        let resolver = self.resolver.clone();
        let lookups = self.lookups.clone();
        let lookups_full = self.lookups_full.clone();
        let log = self.log.clone();
        let connections = self.connections.clone();
        let credentials = self.credentials.clone();
        let retry_after = self.retry_after.clone();
        let credentials_sent = self.credentials_sent.clone();
        let allow_private = self.allow_private;
        Box::new(async move {
            let deny = |denial: Denial| {
                log.host_denial(format!("outbound request denied: {denial}"));
                HttpError::HttpRequestDenied
            };
            let Ok(permit) = permit else { return Err(deny(Denial::TooManyInFlight)) };
            let uri = request.uri().clone();
            let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
            let host = uri.host().unwrap_or_default().to_string();
            if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
                return Err(deny(Denial::UserInfo(host)));
            }
            let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
            let cap = limits.max_phase_timeout;
            let options = options.unwrap_or_default();
            let timeouts = Timeouts {
                connect: clamp(options.connect_timeout, cap),
                first_byte: clamp(options.first_byte_timeout, cap),
                between_bytes: clamp(options.between_bytes_timeout, cap),
            };
            let resolution =
                Resolution { resolver: resolver.as_ref(), places: Some(&lookups), timeout: timeouts.connect };
            let addresses = match vet(&allowed, resolution, &scheme, &host, port, allow_private).await {
                Ok(addresses) => addresses,
                Err(Denial::LookupsFull(full)) => {
                    log.host_warning(format!("outbound request to {host} not sent: {full}; retry later"));
                    let _ = lookups_full.set(full);
                    return Err(HttpError::ConnectionLimitReached);
                }
                Err(Denial::NotAllowed { url, .. }) => {
                    let name = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
                    let requested = requested.iter().any(|p| p.matches(&scheme, &name, port));
                    return Err(deny(Denial::NotAllowed { url, requested }));
                }
                Err(denial) => return Err(deny(denial)),
            };
            let mut request = request;
            let authorization = match &credentials {
                // TRACE echoes the request's headers into the answer, CONNECT tunnels past them.
                Some(_) if matches!(*request.method(), http::Method::TRACE | http::Method::CONNECT) => None,
                None => None,
                Some(credentials) => match credentials.authorize(&connections, &scheme, &host, port).await {
                    Ok(found) => found,
                    Err(CredentialError::Refused(reason)) => return Err(deny(Denial::Credential(reason))),
                    Err(CredentialError::Unavailable(reason)) => {
                        log.host_denial(format!("outbound request not sent: no credential for now: {reason}"));
                        return Err(HttpError::InternalError(Some(
                            "the connection's credential is unavailable".into(),
                        )));
                    }
                },
            };
            if let Some(authorization) = &authorization {
                // Replaces whatever the plugin put under that name: the host's credential wins.
                request.headers_mut().insert(authorization.header.clone(), authorization.value.clone());
                if let Ok(value) = authorization.value.to_str() {
                    let label = format!("connection {}", authorization.connection);
                    let mut sent = credentials_sent.locked();
                    // Each credential once (a plugin may send thousands of requests), a few at most:
                    // a token is renewed rarely within one invocation.
                    let bare = value.split_once(' ').map(|(_, credential)| credential);
                    for credential in [Some(value), bare].into_iter().flatten() {
                        if sent.len() < MAX_CREDENTIALS_BLANKED && !sent.iter().any(|(_, known)| known == credential) {
                            sent.push((label.clone(), credential.to_string()));
                        }
                    }
                }
            }
            let max_request = limits.max_request_body;
            let request = request.map(|body| {
                Limited::new(body, max_request)
                    .map_err(move |err| match err.downcast::<HttpError>() {
                        Ok(inner) => *inner,
                        Err(_) => HttpError::HttpRequestBodySize(Some(max_request as u64)),
                    })
                    .boxed_unsync()
            });
            let tls_name = host.trim_start_matches('[').trim_end_matches(']');
            let (response, io) = transport::send(request, &addresses, tls_name, scheme == "https", timeouts).await?;
            if let (Some(credentials), Some(authorization)) = (&credentials, &authorization) {
                credentials.answered(authorization, response.status().as_u16());
            }
            retry_after.observe(response.status().as_u16(), response.headers());
            let max_response = limits.max_response_body;
            let response = response.map(|body| {
                Limited::new(body, max_response)
                    .map_err(move |err| match err.downcast::<HttpError>() {
                        Ok(inner) => *inner,
                        Err(_) => HttpError::HttpResponseBodySize(Some(max_response as u64)),
                    })
                    .boxed_unsync()
            });
            let io = async move {
                let _permit = permit;
                let _connection_place = authorization.map(|a| a.hold);
                io.await
            };
            Ok((response, Box::new(io) as ConnectionIo))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::resolver::{DnsResolver, Lookup};

    /// [`vet`] with no lookup places to take.
    async fn vet_with(
        allowed: &[HostPattern],
        resolver: &dyn Resolve,
        scheme: &str,
        host: &str,
        port: u16,
        timeout: Duration,
        allow_private: bool,
    ) -> Result<Vec<SocketAddr>, Denial> {
        vet(allowed, Resolution { resolver, places: None, timeout }, scheme, host, port, allow_private).await
    }

    fn allowed(entries: &[&str]) -> Vec<HostPattern> {
        entries.iter().map(|e| HostPattern::parse(e).expect("valid pattern")).collect()
    }

    async fn refused(allowed: &[HostPattern], host: &str) -> bool {
        vet_with(allowed, &DnsResolver::system(), "http", host, 80, Duration::from_secs(10), false).await.is_err()
    }

    #[tokio::test]
    async fn denies_by_default_and_guards_private_addresses() {
        assert!(refused(&[], "127.0.0.1").await);
        assert!(!refused(&allowed(&["127.0.0.1:80"]), "127.0.0.1").await);
        assert!(refused(&allowed(&["*"]), "127.0.0.1").await);
        assert!(refused(&allowed(&["*"]), "10.1.2.3").await);
        assert!(refused(&allowed(&["*"]), "localhost").await);
        assert!(
            refused(&allowed(&["localhost"]), "localhost").await,
            "a name reaches loopback only with allow_private"
        );
        assert!(refused(&allowed(&["*"]), "[::1]").await);
        for hidden in ["0.1.2.3", "224.0.0.1", "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[::ffff:10.0.0.1]", "[ff02::1]"]
        {
            assert!(refused(&allowed(&["*"]), hidden).await, "{hidden} must count as private");
        }
        assert!(!refused(&allowed(&["*"]), "[64:ff9b::808:808]").await, "NAT64 of a public address");
    }

    /// Answers `answer` to every lookup.
    #[derive(Debug)]
    struct Fixed(std::io::Result<Vec<IpAddr>>);

    impl Resolve for Fixed {
        fn lookup(&self, _host: &str) -> Lookup {
            let answer = match &self.0 {
                Ok(ips) => Ok(ips.clone()),
                Err(err) => Err(std::io::Error::new(err.kind(), err.to_string())),
            };
            Box::pin(std::future::ready(answer))
        }
    }

    #[tokio::test]
    async fn a_name_is_checked_by_every_address_it_resolves_to() {
        let public: IpAddr = "93.184.215.14".parse().expect("ip");
        let both = Fixed(Ok(vec![public, "10.0.0.7".parse().expect("ip")]));
        let second = Duration::from_secs(1);
        let vetted =
            vet_with(&allowed(&["*"]), &Fixed(Ok(vec![public])), "https", "api.test", 443, second, false).await;
        assert_eq!(vetted.expect("public"), vec![SocketAddr::new(public, 443)]);
        let denied = vet_with(&allowed(&["*"]), &both, "https", "api.test", 443, second, true).await;
        assert!(matches!(denied, Err(Denial::NonPublic(_))), "{denied:?}");
    }

    #[tokio::test]
    async fn an_exact_name_reaches_a_private_address_only_when_allowed_and_link_local_never() {
        let second = Duration::from_secs(1);
        let private = Fixed(Ok(vec!["10.0.0.7".parse().expect("ip")]));
        let exact = allowed(&["api.partner.test"]);
        let denied = vet_with(&exact, &private, "https", "api.partner.test", 443, second, false).await;
        assert!(matches!(denied, Err(Denial::PrivateName(_))), "{denied:?}");
        let vetted = vet_with(&exact, &private, "https", "api.partner.test", 443, second, true).await;
        assert!(vetted.is_ok(), "{vetted:?}");
        // An IP literal granted exactly reaches what it names, as local services need.
        let literal = vet_with(&allowed(&["10.0.0.7"]), &private, "http", "10.0.0.7", 80, second, false).await;
        assert!(literal.is_ok(), "{literal:?}");
        // The exact pattern decides even when a wildcard before it matches too.
        let both = vet_with(&allowed(&["*", "10.0.0.7"]), &private, "http", "10.0.0.7", 80, second, false).await;
        assert!(both.is_ok(), "{both:?}");
        // Link-local (cloud metadata): never, named, resolved, allowed or mapped.
        let metadata = Fixed(Ok(vec!["169.254.169.254".parse().expect("ip")]));
        for (grant, host, resolver) in [
            ("169.254.169.254", "169.254.169.254", &metadata),
            ("metadata.internal", "metadata.internal", &metadata),
            ("[::ffff:169.254.169.254]", "[::ffff:169.254.169.254]", &metadata),
            ("[fe80::1]", "[fe80::1]", &metadata),
            ("[64:ff9b::a9fe:a9fe]", "[64:ff9b::a9fe:a9fe]", &metadata),
            ("[2002:a9fe:a9fe::]", "[2002:a9fe:a9fe::]", &metadata),
            ("[::a9fe:a9fe]", "[::a9fe:a9fe]", &metadata),
            ("[fd00:ec2::254]", "[fd00:ec2::254]", &metadata),
            ("100.100.100.200", "100.100.100.200", &metadata),
        ] {
            let denied = vet_with(&allowed(&[grant]), resolver, "http", host, 80, second, true).await;
            assert!(matches!(denied, Err(Denial::LinkLocal(_))), "{host}: {denied:?}");
        }
    }

    #[tokio::test]
    async fn a_resolver_failure_or_empty_answer_is_a_denial() {
        let failing = Fixed(Err(std::io::Error::other("SERVFAIL")));
        for resolver in [failing, Fixed(Ok(vec![]))] {
            let denied =
                vet_with(&allowed(&["*"]), &resolver, "http", "api.test", 80, Duration::from_secs(1), false).await;
            assert!(matches!(denied, Err(Denial::Unresolved { .. })), "{denied:?}");
        }
    }

    fn policy(entries: &[&str]) -> (OutboundPolicy, LogSink) {
        let log = LogSink::default();
        let allowed: Arc<[HostPattern]> = allowed(entries).into();
        let policy = OutboundPolicy::new(
            allowed.clone(),
            allowed,
            OutboundLimits::default(),
            Arc::new(DnsResolver::system()),
            PluginLookups {
                shares: crate::host::lookup_shares::LookupShares::new(Default::default()),
                plugin: "test".into(),
            },
            log.clone(),
        );
        (policy, log)
    }

    fn get(uri: &str) -> http::Request<WasiBody> {
        let body = http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync();
        http::Request::get(uri).body(body).expect("request")
    }

    fn denied_because(log: &LogSink, reason: &str) -> bool {
        log.take().entries.iter().any(|e| e.context == "host" && e.message.contains(reason))
    }

    #[tokio::test]
    async fn user_info_in_the_authority_is_denied() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (mut policy, log) = policy(&["127.0.0.1"]);
        let request = get(&format!("http://admin:hunter2@127.0.0.1:{port}/"));
        let outcome = Box::into_pin(policy.send_request(request, None, Box::new(async { Ok(()) }))).await;
        assert!(matches!(outcome, Err(HttpError::HttpRequestDenied)), "{:?}", outcome.err());
        let logs = log.take();
        assert!(logs.entries.iter().any(|e| e.message.contains("user info")), "{logs:?}");
        assert!(logs.entries.iter().all(|e| !e.message.contains("hunter2")), "no credentials in the log");
    }

    #[tokio::test]
    async fn at_most_max_in_flight_requests_at_once() {
        // Nothing listens here: an admitted request fails to connect, a refused one is denied.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let url = format!("http://127.0.0.1:{port}/");
        let (mut policy, log) = policy(&["127.0.0.1"]);
        let send = |policy: &mut OutboundPolicy| {
            Box::into_pin(policy.send_request(get(&url), None, Box::new(async { Ok(()) })))
        };
        // Sent but not yet answered: each holds its slot.
        let mut pending: Vec<_> = (0..MAX_IN_FLIGHT).map(|_| send(&mut policy)).collect();
        let outcome = send(&mut policy).await;
        assert!(matches!(outcome, Err(HttpError::HttpRequestDenied)), "{:?}", outcome.err());
        assert!(denied_because(&log, "in flight"));

        // One finishes (here: fails to connect), and its slot is free again.
        let finished = pending.pop().expect("one").await;
        assert!(matches!(finished, Err(HttpError::Connect(_))), "{:?}", finished.err());
        let outcome = send(&mut policy).await;
        assert!(matches!(outcome, Err(HttpError::Connect(_))), "{:?}", outcome.err());
        assert!(!denied_because(&log, "in flight"));
    }
}
