//! Connector failure paths: the allow-list, transport failures and secrets.

use crate::samples::connector_grant;
use crate::support::common::{TestServer, config, runtime};
use plugboard_runtime::{Error, ErrorCode, PluginError};
use plugboard_tests::*;

#[tokio::test]
async fn a_host_not_on_the_allow_list_is_denied_inside_the_call() {
    let server = TestServer::start(|_| (200, "[]".into())).await;
    let runtime = runtime();
    // Granted config but no outbound host: deny by default.
    let mut grant = connector_grant(&server.url("/"));
    grant.outbound_hosts.clear();
    let plugin = HTTP_SOURCE.load(&runtime, &grant);
    let invocation = plugin.read(None, 10).await;
    // The error names what was refused and which party lacks it: the manifest requests the
    // server's host, the grant does not.
    match &invocation.outcome {
        Err(err @ Error::Denied { denial, reported }) => {
            assert_eq!(err.code(), ErrorCode::CapabilityDenied);
            assert!(
                denial.contains("is requested by the plugin's manifest but not granted by the operator"),
                "{denial}"
            );
            assert!(!reported.is_empty());
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(
        invocation
            .logs
            .entries
            .iter()
            .any(|e| e.context == "host" && e.message.contains("but not granted by the operator"))
    );
    assert!(server.requests().is_empty(), "nothing may reach the server");

    // The manifest's `*` does not reach loopback: private addresses must be listed exactly.
    grant.outbound_hosts = vec!["*".into()];
    let wildcard = HTTP_SOURCE.load(&runtime, &grant);
    match wildcard.read(None, 10).await.outcome {
        Err(Error::Denied { denial, .. }) => assert!(denial.contains("must be listed exactly"), "{denial}"),
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(server.requests().is_empty());

    // A grant cannot add a host the manifest does not request.
    let mut grant = connector_grant(&server.url("/"));
    grant.outbound_hosts = vec!["10.0.0.1".into()];
    let widened = HTTP_SINK.load(&runtime, &grant);
    assert!(widened.effective().outbound_hosts.is_empty());

    // And the same runtime still serves allowed requests.
    let allowed = HTTP_SOURCE.load(&runtime, &connector_grant(&server.url("/")));
    assert!(allowed.read(None, 10).await.outcome.is_ok());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    // Bind and drop a listener to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let plugin = HTTP_SINK.load(&runtime(), &connector_grant(&format!("http://127.0.0.1:{port}/in")));
    let outcome = plugin.write(crate::support::common::records(&[serde_json::json!(1)])).await.outcome;
    assert!(matches!(outcome, Err(Error::Guest(PluginError::Retryable(_)))), "{outcome:?}");
}

#[tokio::test]
async fn a_missing_url_is_invalid_config() {
    let mut grant = config(&[]);
    grant.outbound_hosts = vec!["127.0.0.1".into()];
    let plugin = HTTP_SOURCE.load(&runtime(), &grant);
    assert!(matches!(plugin.read(None, 1).await.outcome, Err(Error::Guest(PluginError::InvalidConfig(_)))));
}

#[tokio::test]
async fn outbound_bodies_are_bounded() {
    // A response larger than the host allows never reaches the plugin whole: a typed failure.
    let server = TestServer::start(|_| (200, format!("[\"{}\"]", "x".repeat(64 * 1024)))).await;
    let runtime = crate::support::common::runtime_with(|c| {
        c.outbound = plugboard_runtime::OutboundLimits { max_response_body: 16 * 1024, ..Default::default() }
    });
    let plugin = HTTP_SOURCE.load(&runtime, &connector_grant(&server.url("/")));
    let outcome = plugin.read(None, 10).await.outcome;
    assert!(matches!(outcome, Err(Error::Guest(PluginError::Retryable(_)))), "{outcome:?}");

    // A request body larger than allowed is refused before anything is sent.
    let runtime = crate::support::common::runtime_with(|c| {
        c.outbound = plugboard_runtime::OutboundLimits { max_request_body: 1024, ..Default::default() }
    });
    let sink = HTTP_SINK.load(&runtime, &connector_grant(&server.url("/in")));
    let big = crate::support::common::records(&[serde_json::json!("y".repeat(4096))]);
    let outcome = sink.write(big).await.outcome;
    assert!(matches!(outcome, Err(Error::Guest(PluginError::Retryable(_)))), "{outcome:?}");
    assert!(server.requests().iter().all(|r| r.body.len() <= 1024), "no oversized body was delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_body_larger_than_one_write_arrives_whole_with_its_length() {
    // 3 MiB: more than the host's 1 MiB write budget, so the body goes out in several writes.
    let server = TestServer::start(|_| (200, "{}".into())).await;
    let plugin = HTTP_SINK.load(&runtime(), &connector_grant(&server.url("/in")));
    let values: Vec<serde_json::Value> =
        (0..48).map(|i| serde_json::json!({"n": i, "pad": "z".repeat(64 * 1024)})).collect();
    let written = plugin.write(crate::support::common::records(&values)).await.outcome.expect("write");
    assert_eq!(written.accepted, 48);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let body = &requests[0].body;
    assert_eq!(requests[0].headers.get("content-length"), Some(&body.len().to_string()));
    assert_eq!(serde_json::from_slice::<Vec<serde_json::Value>>(body).expect("a JSON array"), values);
}

/// A DNS server that rebinds: the first lookup answers `first`, every later one `later`.
#[derive(Debug)]
struct Rebinding {
    first: std::net::IpAddr,
    later: std::io::Result<std::net::IpAddr>,
    lookups: std::sync::atomic::AtomicUsize,
}

impl Rebinding {
    fn new(first: &str, later: std::io::Result<&str>) -> std::sync::Arc<Rebinding> {
        let later = later.map(|ip| ip.parse().expect("ip"));
        std::sync::Arc::new(Rebinding { first: first.parse().expect("ip"), later, lookups: Default::default() })
    }

    fn lookups(&self) -> usize {
        self.lookups.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl plugboard_runtime::Resolve for Rebinding {
    fn lookup(&self, _host: &str) -> plugboard_runtime::Lookup {
        let answer = match (self.lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst), &self.later) {
            (0, _) => Ok(vec![self.first]),
            (_, Ok(later)) => Ok(vec![*later]),
            (_, Err(err)) => Err(std::io::Error::new(err.kind(), err.to_string())),
        };
        Box::pin(std::future::ready(answer))
    }
}

/// The HTTP source reading `http://{NAME}:{port}/`, with the name (not an address) on the allow-list.
fn load_named(runtime: &plugboard_runtime::Runtime, server: &TestServer) -> plugboard_runtime::Plugin {
    const NAME: &str = "connector.test";
    let mut grant = connector_grant(&format!("http://{NAME}:{}/", server.addr.port()));
    grant.outbound_hosts = vec![NAME.into()];
    // The name answers a loopback address (the test server): a private name the grant allows.
    grant.allow_private = true;
    let mut manifest = HTTP_SOURCE.manifest();
    manifest.capabilities.outbound_hosts.push(NAME.into());
    runtime.load(&HTTP_SOURCE.bytes(), manifest, &grant).expect("load")
}

#[tokio::test]
async fn a_name_is_resolved_once_and_the_connection_goes_to_the_vetted_address() {
    let server = TestServer::start(|_| (200, "[]".into())).await;
    // Any second lookup would answer an address where nothing listens.
    let resolver = Rebinding::new("127.0.0.1", Ok("127.0.0.2"));
    let runtime = crate::support::common::runtime_with(|c| c.resolver = resolver.clone());
    let plugin = load_named(&runtime, &server);
    let outcome = plugin.read(None, 10).await.outcome;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(resolver.lookups(), 1, "one lookup per request");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].headers.get("host"),
        Some(&format!("connector.test:{}", server.addr.port())),
        "the Host header keeps the name"
    );
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_denied() {
    let server = TestServer::start(|_| (200, "[]".into())).await;
    let resolver = std::sync::Arc::new(Rebinding {
        first: "127.0.0.1".parse().expect("ip"),
        later: Err(std::io::Error::other("SERVFAIL")),
        // Past the first answer: every lookup fails.
        lookups: 1.into(),
    });
    let runtime = crate::support::common::runtime_with(|c| c.resolver = resolver.clone());
    let invocation = load_named(&runtime, &server).read(None, 10).await;
    match &invocation.outcome {
        Err(err @ Error::Denied { denial, .. }) => {
            assert_eq!(err.code(), ErrorCode::CapabilityDenied);
            assert!(denial.contains("could not be resolved"), "{denial}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(
        invocation.logs.entries.iter().any(|e| e.context == "host" && e.message.contains("could not be resolved")),
        "{:?}",
        invocation.logs
    );
    assert!(server.requests().is_empty());
}
