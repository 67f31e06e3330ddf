//! An exactly granted host *name* is only as trustworthy as its DNS: one that resolves to a
//! loopback or private address is not reached unless the grant says `allow_private`, while an IP
//! literal reaches what it names; a link-local address (cloud metadata) is never reached. With the
//! real server, the real system resolver (`localhost`) and a real local HTTP server.

use crate::support::common::TestServer;
use crate::support::server::{ADMIN, Api};
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_name_reaches_a_private_address_only_when_the_grant_allows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let receiver = TestServer::start(|_| (200, "{}".into())).await;
    let mut manifest = plugboard_runtime::Manifest { name: "local-sink".into(), ..HTTP_SINK.manifest() };
    manifest.capabilities.outbound_hosts = vec!["localhost".into(), "127.0.0.1".into(), "169.254.169.254".into()];
    let file = plugboard_runtime::signing::sign(&HTTP_SINK.bytes(), &manifest, test_key()).expect("sign");
    let (status, body) = api.upload(file, "?activate=true", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let grant = |allow_private: bool| json!({"outbound_hosts": ["localhost", "127.0.0.1", "169.254.169.254"], "allow_private": allow_private});
    let configure = async |url: String| {
        let (status, body) = api.put("/v1/plugins/local-sink/config", json!({"values": {"url": url}})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    };
    let write = async || api.post("/v1/plugins/local-sink/invoke", ADMIN, json!({"records": [{"n": 1}]})).await;

    // `localhost` resolves to loopback: refused by name, with the reason, nothing sent.
    let (status, body) = api.put("/v1/plugins/local-sink/grants", grant(false)).await;
    assert_eq!((status, body["allow_private"].clone()), (StatusCode::OK, json!(false)), "{body}");
    configure(format!("http://localhost:{}/in", receiver.addr.port())).await;
    let (status, refused) = write().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], "capability-denied", "{refused}");
    assert!(refused.to_string().contains("allow_private"), "the denial says how to allow it: {refused}");
    assert!(receiver.requests().is_empty(), "nothing reached the private address");

    // The IP literal, granted exactly, reaches what it names.
    configure(receiver.url("/in")).await;
    let (status, body) = write().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(receiver.requests().len(), 1);

    // The grant allows private names: `localhost` is reached.
    let (status, body) = api.put("/v1/plugins/local-sink/grants", grant(true)).await;
    assert_eq!((status, body["allow_private"].clone()), (StatusCode::OK, json!(true)), "{body}");
    configure(format!("http://localhost:{}/in", receiver.addr.port())).await;
    let (status, body) = write().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(receiver.requests().len(), 2);

    // Link-local (cloud metadata) is never reached, even granted exactly with allow_private.
    configure("http://169.254.169.254/latest/meta-data/".into()).await;
    let (status, refused) = write().await;
    assert_eq!(
        (status, refused["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("capability-denied")),
        "{refused}"
    );
    assert!(refused.to_string().contains("link-local"), "{refused}");
    api.stop().await;
}
