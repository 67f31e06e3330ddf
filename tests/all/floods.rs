//! Floods of unauthenticated requests against the real server: however many slow webhook senders
//! hold connections open, an operator with a token is still served, and the flood learns nothing.

use crate::support::flows::{SECRET, deliver, now, webhook_flow};
use crate::support::server::{ADMIN, Api};
use plugboard_host_api::api::ServerLimits;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connections in the flood (more than the authenticated pool of 256 holds).
const FLOOD: usize = 300;

/// Opens a webhook request to `flow` announcing a 16 MB body with plausible headers, trickles the
/// body a byte at a time, and returns the status line the server answered (or `None` when it
/// answered nothing within `give_up`).
async fn slow_delivery(addr: String, flow: &'static str, give_up: Duration) -> Option<String> {
    let stream = TcpStream::connect(&addr).await.ok()?;
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /v1/hooks/{flow} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 16000000\r\nX-Plugboard-Timestamp: {}\r\nX-Plugboard-Signature: sha256={}\r\n\r\n{{\"records\":[",
        now(),
        "ab".repeat(32)
    );
    writer.write_all(head.as_bytes()).await.ok()?;
    let trickle = tokio::spawn(async move {
        while writer.write_all(b" ").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let answer = status_line(&mut reader, give_up).await;
    trickle.abort();
    answer
}

/// The first line the server answers within `give_up`, `HTTP/1.1 reset` when it reset the
/// connection, `None` when it answered nothing.
async fn status_line(reader: &mut tokio::net::tcp::OwnedReadHalf, give_up: Duration) -> Option<String> {
    let mut answer = vec![0u8; 512];
    match tokio::time::timeout(give_up, reader.read(&mut answer)).await.ok()? {
        Ok(read) => String::from_utf8_lossy(&answer[..read]).lines().next().map(str::to_string),
        // The server answered and closed while bytes sent were still unread on its side: the
        // kernel then resets the connection, which can overtake the answer. It was not left hanging.
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => Some("HTTP/1.1 reset".into()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_unauthenticated_floods_leave_operators_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = ServerLimits { public_body_timeout: Duration::from_secs(5), ..ServerLimits::default() };
    let api = Api::start_with(dir.path(), limits).await;
    let sink = crate::support::common::TestServer::start(|_| (200, "{}".into())).await;
    webhook_flow(&api, &sink.url("/in")).await;
    let addr = api.base.trim_start_matches("http://").to_string();

    // Most of the flood names a real flow with well-formed headers (more of them than the
    // authenticated pool holds), the rest a flow that does not exist.
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| {
            let flow = if i % 8 == 0 { "nosuchflow" } else { "hooked" };
            (flow, tokio::spawn(slow_delivery(addr.clone(), flow, Duration::from_secs(20))))
        })
        .collect();
    // Wait until the flood holds the server: unauthenticated requests are turned away.
    let saturated = tokio::time::timeout(Duration::from_secs(10), async {
        while api.call(reqwest::Method::GET, "/metrics", None, None).await.0 != StatusCode::TOO_MANY_REQUESTS {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    saturated.await.expect("the flood never filled the unauthenticated pool");

    // While the flood's connections are open and trickling, the admin is served, and so are health
    // probes (an orchestrator must not restart a server for being flooded).
    assert_eq!(api.call(reqwest::Method::GET, "/healthz", None, None).await.0, StatusCode::OK);
    for _ in 0..3 {
        let (status, body) = api.get("/v1/keys", ADMIN).await;
        assert_eq!(status, StatusCode::OK, "the admin is locked out by an unauthenticated flood: {body}");
        let (status, _) = api.get("/v1/plugins", ADMIN).await;
        assert_eq!(status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every flood connection got an answer, the same whether its flow exists or not: the public
    // pool was full (429) or the body did not arrive in time (408). None is left hanging.
    for (flow, connection) in flood {
        let status =
            connection.await.expect("flood task").unwrap_or_else(|| panic!("no answer to a slow {flow} delivery"));
        let code = status.split_whitespace().nth(1).unwrap_or_default().to_string();
        assert!(["408", "429", "reset"].contains(&code.as_str()), "{flow}: {status}");
    }

    // Once the flood has gone, signed deliveries are accepted again.
    let (status, body) = deliver(&api, "hooked", SECRET, now(), &json!({"records": [{"after": "flood"}]})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_webhook_reveals_nothing_about_the_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = ServerLimits { public_body_timeout: Duration::from_secs(1), ..ServerLimits::default() };
    let api = Api::start_with(dir.path(), limits).await;
    let sink = crate::support::common::TestServer::start(|_| (200, "{}".into())).await;
    webhook_flow(&api, &sink.url("/in")).await;
    let flow = json!({"name": "no-secret", "triggers": [{"type": "webhook"}], "sinks": [{"id": "out", "plugin": "hook-sink"}]});
    assert_eq!(api.post("/v1/flows", ADMIN, flow).await.0, StatusCode::CREATED);
    let body = json!({"records": [{"n": 1}]});
    // No such flow, a flow without a secret yet, a stale timestamp, a wrong secret: one answer.
    let answers = [
        deliver(&api, "no-such-flow", SECRET, now(), &body).await,
        deliver(&api, "no-secret", SECRET, now(), &body).await,
        deliver(&api, "hooked", SECRET, now() - 3600, &body).await,
        deliver(&api, "hooked", "wrong-secret-wrong-secret", now(), &body).await,
    ];
    for answer in &answers {
        assert_eq!(answer, &answers[0], "refusals must be indistinguishable");
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    // Well-formed headers and a body that never comes: the same wait and the same 408 for a flow
    // that exists and one that does not.
    let addr = api.base.trim_start_matches("http://").to_string();
    let real = slow_delivery(addr.clone(), "hooked", Duration::from_secs(15)).await;
    let missing = slow_delivery(addr, "no-such-flow", Duration::from_secs(15)).await;
    assert_eq!(real.as_deref(), Some("HTTP/1.1 408 Request Timeout"));
    assert_eq!(real, missing);

    // A tolerance beyond an hour would keep captured deliveries usable for too long.
    let flow = json!({"name": "lenient", "triggers": [{"type": "webhook", "tolerance_secs": 86400}], "sinks": [{"id": "out", "plugin": "hook-sink"}]});
    let (status, refusal) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refusal}");
    assert_eq!(refusal["code"], "flow-invalid");
    api.stop().await;
}

/// Starts an upload with `token` announcing `announced` bytes, sends 1 KiB of it and waits up to
/// `give_up` for the status line (`None`: no answer, the server is waiting for the body).
async fn partial_upload(addr: &str, token: &str, announced: usize, give_up: Duration) -> Option<String> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /v1/plugins HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/wasm\r\nContent-Length: {announced}\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.ok()?;
    writer.write_all(&[0u8; 1024]).await.ok()?;
    let answer = status_line(&mut reader, give_up).await;
    drop(writer);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_refused_before_their_body_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = ServerLimits { max_concurrent_uploads: 2, ..ServerLimits::default() };
    let api = Api::start_with(dir.path(), limits).await;
    let addr = api.base.trim_start_matches("http://").to_string();
    let invoker = api.token("reader", "invoker").await;
    // A token that may not upload is answered 403 at once, though 60 MB are announced and 1 KiB
    // sent: the server does not wait for (or hold) the body. Many at once, as the flood would be.
    let refusals = (0..24).map(|_| partial_upload(&addr, &invoker, 60_000_000, Duration::from_secs(5)));
    for answer in futures::future::join_all(refusals).await {
        let answer = answer.expect("answered without the body");
        assert!(answer.contains("403") || answer.contains("reset"), "{answer}");
    }
    // A publisher's uploads beyond the concurrent bound wait, unread, for a place: while two
    // uploads hold both places (their bodies trickling), a whole valid upload gets no answer; once
    // they are gone, it is installed.
    api.trust_test_key().await;
    let publisher = api.token("publisher", "publisher").await;
    let holding: Vec<_> = (0..2)
        .map(|_| {
            let (addr, token) = (addr.clone(), publisher.clone());
            tokio::spawn(async move { partial_upload(&addr, &token, 60_000_000, Duration::from_secs(4)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let upload = |timeout: Duration| {
        reqwest::Client::new()
            .post(api.url("/v1/plugins"))
            .bearer_auth(&publisher)
            .body(plugboard_tests::FILTER.signed())
            .timeout(timeout)
            .send()
    };
    let waiting = upload(Duration::from_millis(1500)).await;
    assert!(waiting.as_ref().is_err_and(reqwest::Error::is_timeout), "it waits for a place: {waiting:?}");
    for held in holding {
        assert_eq!(held.await.expect("task"), None, "an upload within the bound waits for its body");
    }
    let installed = upload(Duration::from_secs(60)).await.expect("answered");
    assert_eq!(installed.status(), StatusCode::CREATED);
    // The server still serves.
    let (status, _) = api.get("/v1/plugins", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    api.stop().await;
}
