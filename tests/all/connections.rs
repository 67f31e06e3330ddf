//! Connections against a real OAuth 2.0 authorization server (npm `oauth2-mock-server`, pinned in
//! `tests/senders`) and a resource server that accepts only tokens it issued
//! (`tests/senders/oauth.mjs`): the host fetches a token once for many invocations, fetches a new
//! one after a `401`, holds the rate limit across concurrent invocations, never gives the
//! credential to another host, refuses definitions that would misdirect it, and survives a token
//! endpoint that answers garbage or hangs. A refresh-token connection trades the token, stores
//! each rotated one before use and still works after a restart, against a server that accepts only
//! the latest.

use crate::support::common::TestServer;
use crate::support::server::{ADMIN, Api};
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The authorization and resource servers, as a child process; killed on drop.
struct OAuth {
    child: Child,
    token_url: String,
    resource: String,
    /// The first refresh token the server will accept.
    refresh_token: String,
}

impl OAuth {
    fn start() -> OAuth {
        let mut child = Command::new("node")
            .arg("oauth.mjs")
            .current_dir(SENDERS_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the OAuth servers");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("their addresses");
        let started: Value = serde_json::from_str(&line).expect("their addresses as JSON");
        OAuth {
            child,
            token_url: started["token_url"].as_str().unwrap_or_default().to_string(),
            resource: started["resource"].as_str().unwrap_or_default().to_string(),
            refresh_token: started["refresh_token"].as_str().unwrap_or_default().to_string(),
        }
    }

    async fn stats(&self) -> Value {
        reqwest::get(format!("{}/stats", self.resource)).await.expect("stats").json().await.expect("json")
    }
}

impl Drop for OAuth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs the http-source sample as `name` (its manifest asks for a connection it calls
/// `api`), granted 127.0.0.1 and the operator's connection `crm` as its `api`, reading `url`.
async fn install_source(api: &Api, name: &str, url: &str) {
    let manifest = plugboard_runtime::Manifest { name: name.into(), ..HTTP_SOURCE.manifest() };
    assert_eq!(manifest.capabilities.connections, vec!["api".to_string()], "the sample asks for it");
    let file = plugboard_runtime::signing::sign(&HTTP_SOURCE.bytes(), &manifest, test_key()).expect("sign");
    let (status, body) = api.upload(file, "?activate=true", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let grant = json!({"outbound_hosts": ["127.0.0.1"], "connections": {"api": "crm"}});
    let (status, body) = api.put(&format!("/v1/plugins/{name}/grants"), grant).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connections"], json!({"api": "crm"}));
    let (status, body) = api.put(&format!("/v1/plugins/{name}/config"), json!({"values": {"url": url}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn read(api: &Api, plugin: &str) -> (StatusCode, Value) {
    api.post(&format!("/v1/plugins/{plugin}/invoke"), ADMIN, json!({"max_records": 5})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_connections_authorize_plugin_requests_the_plugin_never_sees() {
    let oauth = OAuth::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let port = oauth.resource.rsplit(':').next().unwrap_or_default().to_string();
    let secret = "client-secret-for-the-crm";
    let connection = |rate_limit: Value| {
        json!({
            "kind": "oauth2-client-credentials",
            "hosts": [format!("http://127.0.0.1:{port}")],
            "token_url": oauth.token_url,
            "client_id": "plugboard",
            "secret": secret,
            "scopes": ["contacts.read"],
            "rate_limit": rate_limit,
            "probe_url": format!("{}/data", oauth.resource)
        })
    };
    let (status, body) = api.put("/v1/connections/crm", connection(json!({"per_second": 10, "burst": 1}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["has_secret"], true);
    assert!(!body.to_string().contains(secret), "never answered: {body}");
    install_source(&api, "crm-source", &format!("{}/data", oauth.resource)).await;

    // Eight concurrent invocations: one token, every request authorized, 10 a second at most.
    let calls = (0..8).map(|_| read(&api, "crm-source"));
    for (status, body) in futures::future::join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["records"].as_array().map(Vec::len), Some(1), "{body}");
        assert!(!body.to_string().contains("Bearer"), "the plugin's answer and logs hold no credential: {body}");
    }
    let stats = oauth.stats().await;
    assert_eq!(stats["issued"], 1, "one token for many invocations: {stats}");
    let times: Vec<u64> =
        stats["requests"].as_array().expect("requests").iter().filter_map(|r| r["at"].as_u64()).collect();
    let span = times.iter().max().unwrap_or(&0) - times.iter().min().unwrap_or(&0);
    // Eight requests at 10 a second with a burst of one: seven waits of 100 ms, as the resource
    // server measured them.
    assert!(span >= 600, "the rate limit held across invocations: {span} ms for {} requests", times.len());

    // The same connection limited to two requests in flight (replaced: its secret is kept), on a
    // slow endpoint: the resource server never sees more than two at once.
    let mut limited = connection(json!({"concurrent": 2}));
    limited.as_object_mut().expect("object").remove("secret");
    let (status, body) = api.put("/v1/connections/crm", limited).await;
    assert_eq!((status, body["has_secret"].clone()), (StatusCode::OK, json!(true)), "{body}");
    let (status, body) =
        api.put("/v1/plugins/crm-source/config", json!({"values": {"url": format!("{}/slow", oauth.resource)}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let calls = (0..6).map(|_| read(&api, "crm-source"));
    for (status, body) in futures::future::join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let stats = oauth.stats().await;
    assert!(stats["max_in_flight"].as_u64().is_some_and(|n| n <= 2), "the concurrency limit held: {stats}");
    let issued = stats["issued"].as_u64().unwrap_or_default();

    // The resource server revokes the token: the next request is refused (401), which drops the
    // cached token, and the one after fetches a new one.
    reqwest::Client::new().post(format!("{}/revoke", oauth.resource)).send().await.expect("revoke");
    let (status, refused) = read(&api, "crm-source").await;
    assert_ne!(status, StatusCode::OK, "{refused}");
    let (status, body) = read(&api, "crm-source").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(oauth.stats().await["issued"].as_u64(), Some(issued + 1), "a new token after the 401");

    // Another granted host never sees the credential.
    let other = TestServer::start(|_| (200, "[{\"n\": 0}]".into())).await;
    install_source(&api, "other-source", &other.url("/data")).await;
    let (status, body) = read(&api, "other-source").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(other.requests().iter().all(|r| !r.headers.contains_key("authorization")), "{:?}", other.requests());

    // The test endpoint, the listing (no secret anywhere), and the plugins that use it.
    let (status, tested) = api.post("/v1/connections/crm/test", ADMIN, json!({})).await;
    assert_eq!((status, tested["ok"].clone()), (StatusCode::OK, json!(true)), "{tested}");
    let (_, listed) = api.get("/v1/connections", ADMIN).await;
    assert!(!listed.to_string().contains(secret), "{listed}");
    assert_eq!(listed["connections"][0]["used_by"], json!(["crm-source", "other-source"]));
    // Per-connection figures: requests sent with it, the remote's answers (the revoked token's
    // 401 among them), token fetches, time waited for the rate limit.
    let metrics = reqwest::get(format!("{}/metrics", api.base)).await.expect("metrics").text().await.expect("text");
    for line in [
        "plugboard_connection_answers_total{connection=\"crm\",status=\"401\"} 1",
        &format!("plugboard_connection_token_fetches_total{{connection=\"crm\",outcome=\"ok\"}} {}", issued + 1),
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    let figure = |name: &str| {
        metrics.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert!(figure("plugboard_connection_requests_total{connection=\"crm\"}").is_some_and(|n| n >= 16.0), "{metrics}");
    assert!(figure("plugboard_connection_rate_limit_wait_seconds_total").is_some_and(|s| s >= 0.5), "{metrics}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_token_endpoint_denies_the_request_and_the_host_stays_up() {
    let resource = TestServer::start(|_| (200, "[{\"n\": 1}]".into())).await;
    let garbage = TestServer::start(|_| (200, "<html>not a token</html>".into())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let port = resource.addr.port();
    let connection = |token_url: String| {
        json!({"kind": "oauth2-client-credentials", "hosts": [format!("http://127.0.0.1:{port}")], "token_url": token_url,
               "client_id": "c", "secret": "s"})
    };
    let (status, body) = api.put("/v1/connections/crm", connection(garbage.url("/token"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    install_source(&api, "crm-source", &resource.url("/data")).await;
    let (status, body) = read(&api, "crm-source").await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("denied") || body.to_string().contains("not JSON"), "{body}");
    assert!(resource.requests().is_empty(), "nothing was sent without the credential");
    // Definitions that would misdirect a credential are refused, naming what is wrong: every
    // host, a probe elsewhere, a token endpoint in clear, a missing field; and a replacement that
    // sends the kept secret somewhere else.
    let refusals = [
        (json!({"kind": "bearer", "hosts": ["*"], "secret": "t"}), "`*`"),
        (
            json!({"kind": "bearer", "hosts": ["api.example"], "secret": "t", "probe_url": "https://evil.example/"}),
            "probe_url",
        ),
        (
            json!({"kind": "oauth2-client-credentials", "hosts": ["api.example"], "secret": "t", "client_id": "c", "token_url": "http://auth.example/token"}),
            "https",
        ),
        (json!({"kind": "basic", "hosts": ["x.example"], "secret": "p"}), "username"),
        (
            json!({"kind": "oauth2-client-credentials", "hosts": ["evil.example"], "token_url": garbage.url("/token"), "client_id": "c"}),
            "secret",
        ),
    ];
    for (definition, named) in refusals {
        let (status, body) = api.put("/v1/connections/crm", definition.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{definition}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(named), "{definition}: {body}");
    }
    // A grant cannot bind a connection that does not exist.
    let (status, body) = api.put("/v1/plugins/crm-source/grants", json!({"connections": {"api": "nope"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A bound connection that was deleted denies the plugin's requests rather than sending them bare.
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/connections/crm", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = read(&api, "crm-source").await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(resource.requests().is_empty(), "nothing was sent without the credential");
    let (status, body) = api.get("/v1/connections/crm", ADMIN).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::NOT_FOUND, json!("not-found")), "{body}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_is_traded_rotated_stored_and_survives_a_restart() {
    let oauth = OAuth::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let port = oauth.resource.rsplit(':').next().unwrap_or_default().to_string();
    let connection = json!({
        "kind": "oauth2-refresh-token",
        "hosts": [format!("http://127.0.0.1:{port}")],
        "token_url": oauth.token_url,
        "client_id": "plugboard",
        "client_secret": "the-client-secret",
        "secret": oauth.refresh_token,
    });
    let (status, body) = api.put("/v1/connections/crm", connection).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shown = body.to_string();
    assert!(!shown.contains(&oauth.refresh_token) && !shown.contains("the-client-secret"), "never answered: {body}");
    install_source(&api, "crm-source", &format!("{}/data", oauth.resource)).await;

    let (status, body) = read(&api, "crm-source").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats = oauth.stats().await;
    assert_eq!((stats["refreshed"].clone(), stats["refresh_refused"].clone()), (json!(1), json!(0)), "{stats}");
    assert_eq!(stats["refresh_clients"], json!(["plugboard:the-client-secret"]), "a confidential client: {stats}");

    // The access token is revoked: a 401, then a new one traded for the *rotated* refresh token
    // (the server refuses the first one now).
    reqwest::Client::new().post(format!("{}/revoke", oauth.resource)).send().await.expect("revoke");
    let (status, refused) = read(&api, "crm-source").await;
    assert_ne!(status, StatusCode::OK, "{refused}");
    let (status, body) = read(&api, "crm-source").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats = oauth.stats().await;
    assert_eq!((stats["refreshed"].clone(), stats["refresh_refused"].clone()), (json!(2), json!(0)), "{stats}");

    // A restart finds the rotated refresh token in the store, not the one the operator gave.
    api.stop().await;
    let api = Api::start(dir.path()).await;
    let (status, body) = read(&api, "crm-source").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats = oauth.stats().await;
    assert_eq!((stats["refreshed"].clone(), stats["refresh_refused"].clone()), (json!(3), json!(0)), "{stats}");
    let (_, audit) = api.get("/v1/audit?limit=100", ADMIN).await;
    let rotations = audit.to_string().matches("refresh token rotated by the authorization server").count();
    assert_eq!(rotations, 3, "each rotation is audited: {audit}");
    let (_, listed) = api.get("/v1/connections", ADMIN).await;
    assert_eq!(listed["connections"][0]["has_secret"], true, "{listed}");
    assert!(listed["connections"][0].get("client_secret").is_none(), "{listed}");

    // The operator replaces the connection keeping its secrets (a rate limit added): the stored
    // (rotated) refresh token and client secret are what it keeps, and the next refresh works.
    let replaced = json!({
        "kind": "oauth2-refresh-token",
        "hosts": [format!("http://127.0.0.1:{port}")],
        "token_url": oauth.token_url,
        "client_id": "plugboard",
        "rate_limit": {"concurrent": 4},
    });
    let (status, body) = api.put("/v1/connections/crm", replaced).await;
    assert_eq!((status, body["has_secret"].clone()), (StatusCode::OK, json!(true)), "{body}");
    reqwest::Client::new().post(format!("{}/revoke", oauth.resource)).send().await.expect("revoke");
    let _ = read(&api, "crm-source").await;
    let (status, body) = read(&api, "crm-source").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats = oauth.stats().await;
    assert_eq!(stats["refresh_refused"], json!(0), "{stats}");
    assert_eq!(
        stats["refresh_clients"].as_array().and_then(|c| c.last()).cloned(),
        Some(json!("plugboard:the-client-secret"))
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_token_endpoint_times_out_and_the_host_stays_up() {
    // Accepts connections, counts them, and never answers.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let token_url = format!("http://{}/token", hanging.local_addr().expect("addr"));
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let held = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = hanging.accept().await {
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                open.push(stream);
            }
        })
    };
    let resource = TestServer::start(|_| (200, "[{\"n\": 1}]".into())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let port = resource.addr.port();
    let connection = json!({"kind": "oauth2-client-credentials", "hosts": [format!("http://127.0.0.1:{port}")],
                            "token_url": token_url, "client_id": "c", "secret": "s"});
    let (status, body) = api.put("/v1/connections/crm", connection).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    install_source(&api, "crm-source", &resource.url("/data")).await;
    // Four invocations at once all end (the token fetch's own deadline, inside the invocation's),
    // none sent its request bare, and the server still answers.
    let calls = (0..4).map(|_| read(&api, "crm-source"));
    for (status, body) in futures::future::join_all(calls).await {
        assert_ne!(status, StatusCode::OK, "{body}");
    }
    assert!(resource.requests().is_empty(), "nothing was sent without the credential");
    // One fetch for all four (they waited for its turn), and its failure was the answer for the
    // others, not a reason to ask the hanging endpoint again.
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "the token endpoint was asked once");
    let (status, _) = api.get("/healthz", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    held.abort();
    api.stop().await;
}
