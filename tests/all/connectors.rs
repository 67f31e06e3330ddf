//! Connector failure paths: the allow-list, transport failures and secrets.

use crate::common::{TestServer, config, runtime};
use crate::samples::connector_grant;
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
    match &invocation.outcome {
        Err(err @ Error::Guest(PluginError::Denied(_))) => assert_eq!(err.code(), ErrorCode::CapabilityDenied),
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(
        invocation
            .logs
            .entries
            .iter()
            .any(|e| e.context == "host" && e.message.contains("not on this plugin's outbound allow-list"))
    );
    assert!(server.requests().is_empty(), "nothing may reach the server");

    // The manifest's `*` does not reach loopback: private addresses must be listed exactly.
    grant.outbound_hosts = vec!["*".into()];
    let wildcard = HTTP_SOURCE.load(&runtime, &grant);
    assert!(matches!(wildcard.read(None, 10).await.outcome, Err(Error::Guest(PluginError::Denied(_)))));
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
    let outcome = plugin.write(crate::common::records(&[serde_json::json!(1)])).await.outcome;
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
    let runtime = crate::common::runtime_with(|c| {
        c.outbound = plugboard_runtime::OutboundLimits { max_response_body: 16 * 1024, ..Default::default() }
    });
    let plugin = HTTP_SOURCE.load(&runtime, &connector_grant(&server.url("/")));
    let outcome = plugin.read(None, 10).await.outcome;
    assert!(matches!(outcome, Err(Error::Guest(PluginError::Retryable(_)))), "{outcome:?}");

    // A request body larger than allowed is refused before anything is sent.
    let runtime = crate::common::runtime_with(|c| {
        c.outbound = plugboard_runtime::OutboundLimits { max_request_body: 1024, ..Default::default() }
    });
    let sink = HTTP_SINK.load(&runtime, &connector_grant(&server.url("/in")));
    let big = crate::common::records(&[serde_json::json!("y".repeat(4096))]);
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
    let written = plugin.write(crate::common::records(&values)).await.outcome.expect("write");
    assert_eq!(written.accepted, 48);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let body = &requests[0].body;
    assert_eq!(requests[0].headers.get("content-length"), Some(&body.len().to_string()));
    assert_eq!(serde_json::from_slice::<Vec<serde_json::Value>>(body).expect("a JSON array"), values);
}
