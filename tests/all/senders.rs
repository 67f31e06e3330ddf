//! Webhooks in, as real senders send them: every delivery here is signed by the sender's own
//! library (`tests/senders/`: standardwebhooks, slack_sdk and the CNCF cloudevents SDK from PyPI,
//! stripe and @octokit/webhooks-methods from npm), installed pinned by the test build, and sent
//! over real HTTP to a real server. Per scheme: a valid delivery runs once; a retry (re-signed
//! with a new timestamp where the sender does that) is a duplicate; a wrong secret, a stale
//! timestamp, a tampered body and another scheme's headers are the one 401; rotation accepts both
//! secrets; an event filter ignores other events; an allow-list refuses other sources.

use crate::support::common::TestServer;
use crate::support::flows::{install_sink, now, posted, sender_script, wait_for};
use crate::support::server::{ADMIN, Api};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Signs with a sender's library: `sign.py` (Python senders) or `sign.mjs` (npm senders).
fn sign(input: Value) -> (Vec<(String, String)>, String) {
    let node = matches!(input["scheme"].as_str(), Some("stripe" | "github"));
    let signed = sender_script(if node { "sign.mjs" } else { "sign.py" }, &input);
    let headers = signed["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let body =
        signed["body"].as_str().map_or_else(|| input["body"].as_str().unwrap_or_default().to_string(), str::to_string);
    (headers, body)
}

/// POSTs `body` with `headers` to the flow's hook.
async fn send(api: &Api, flow: &str, headers: &[(String, String)], body: &str) -> (StatusCode, Value) {
    let mut request = api.client.post(api.url(&format!("/v1/hooks/{flow}"))).body(body.to_string());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.send().await.expect("deliver");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A flow `name` from a webhook `trigger` to the sink `hook-sink`, with `secret`.
async fn hooked(api: &Api, name: &str, trigger: Value, secret: &str) {
    let mut trigger = trigger;
    trigger["type"] = json!("webhook");
    let flow = json!({"name": name, "triggers": [trigger], "sinks": [{"id": "out", "plugin": "hook-sink"}]});
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    set_secret(api, name, secret, 0).await;
}

async fn set_secret(api: &Api, flow: &str, secret: &str, keep_previous_secs: u64) {
    let body = json!({"secret": secret, "keep_previous_secs": keep_previous_secs});
    let (status, answer) = api.put(&format!("/v1/flows/{flow}/webhook-secret"), body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
}

/// A server with the sink installed; the sink answers 200.
async fn start(dir: &std::path::Path) -> (Api, TestServer) {
    let api = Api::start(dir).await;
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    api.trust_test_key().await;
    install_sink(&api, "hook-sink", &sink.url("/in")).await;
    (api, sink)
}

/// Waits until the sink saw `count` records, then a moment more to see nothing else arrives.
async fn delivered(sink: &TestServer, count: usize) -> Vec<Value> {
    wait_for("the records to reach the sink", || posted(sink).len() >= count).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let records = posted(sink);
    assert_eq!(records.len(), count, "{records:?}");
    records
}

fn sw_secret(seed: u8) -> String {
    use base64::Engine as _;
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([seed; 24]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_webhooks_signed_by_the_reference_library_run_once_and_rotate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, sink) = start(dir.path()).await;
    let secret = sw_secret(7);
    let trigger = json!({"scheme": "standard-webhooks", "events": ["invoice.paid"], "headers": ["webhook-id"]});
    hooked(&api, "sw", trigger, &secret).await;
    let body = json!({"type": "invoice.paid", "data": {"n": 1}}).to_string();
    let signed = |secret: &str, id: &str, at: u64, body: &str| {
        sign(json!({"scheme": "standard-webhooks", "secret": secret, "id": id, "timestamp": at, "body": body}))
    };

    let (headers, _) = signed(&secret, "msg_1", now(), &body);
    let (status, first) = send(&api, "sw", &headers, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    // The sender's retry: the same message id, re-signed a few seconds later.
    let (headers, _) = signed(&secret, "msg_1", now() + 3, &body);
    let (status, retry) = send(&api, "sw", &headers, &body).await;
    assert_eq!(status, StatusCode::OK, "{retry}");
    assert_eq!(retry["duplicate"], true);
    assert_eq!(retry["queued"], first["queued"]);

    // Refusals: one 401, the same body, whatever the reason.
    let mut refusals = Vec::new();
    let (headers, _) = signed(&sw_secret(8), "msg_2", now(), &body);
    refusals.push(send(&api, "sw", &headers, &body).await);
    let (headers, _) = signed(&secret, "msg_3", now() - 600, &body);
    refusals.push(send(&api, "sw", &headers, &body).await);
    let (headers, _) = signed(&secret, "msg_4", now(), &body);
    refusals.push(send(&api, "sw", &headers, &body.replace("\"n\":1", "\"n\":2")).await);
    let (headers, _) = sign(json!({"scheme": "slack", "secret": secret, "timestamp": now(), "body": body}));
    refusals.push(send(&api, "sw", &headers, &body).await);
    let (headers, _) = signed(&secret, "msg_5", now(), &body);
    refusals.push(send(&api, "no-such-flow", &headers, &body).await);
    for (status, answer) in &refusals {
        assert_eq!(*status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(answer, &refusals[0].1, "every refusal answers alike");
    }

    // Another event type is ignored, and queues nothing.
    let other = json!({"type": "invoice.created", "data": {"n": 9}}).to_string();
    let (headers, _) = signed(&secret, "msg_6", now(), &other);
    let (status, ignored) = send(&api, "sw", &headers, &other).await;
    assert_eq!((status, ignored["ignored"].clone()), (StatusCode::OK, json!(true)), "{ignored}");

    // Rotation: the new secret and, for the overlap, the old one.
    let rotated = sw_secret(9);
    set_secret(&api, "sw", &rotated, 3600).await;
    for (secret, id) in [(&secret, "msg_7"), (&rotated, "msg_8")] {
        let (headers, _) = signed(secret, id, now(), &body);
        let (status, answer) = send(&api, "sw", &headers, &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    set_secret(&api, "sw", &sw_secret(10), 0).await;
    let (headers, _) = signed(&rotated, "msg_9", now(), &body);
    assert_eq!(
        send(&api, "sw", &headers, &body).await.0,
        StatusCode::UNAUTHORIZED,
        "a rotation without overlap forgets the old secret"
    );

    assert_eq!(delivered(&sink, 3).await, vec![json!({"type": "invoice.paid", "data": {"n": 1}}); 3]);
    let metrics = api.client.get(api.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    for reason in ["bad-signature", "stale", "malformed"] {
        assert!(
            metrics.contains(&format!("plugboard_webhook_refused_total{{flow=\"sw\",reason=\"{reason}\"}}")),
            "{reason} counted: {metrics}"
        );
    }
    assert!(metrics.contains("plugboard_webhook_refused_total{flow=\"\",reason=\"no-hook\"} 1"), "{metrics}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_deliveries_signed_by_octokit_route_by_event_answer_ping_and_run_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, sink) = start(dir.path()).await;
    let secret = "a GitHub webhook secret, free text";
    let flow = json!({
        "name": "gh",
        "triggers": [{"type": "webhook", "scheme": "github", "events": ["push", "issues"], "headers": ["x-github-event"]}],
        "steps": [{"type": "route", "id": "by-event", "routes": [{"when": {"field": "header:x-github-event", "op": "equals", "value": "push"}, "to": "pushes"}]}],
        "branches": {"pushes": {"sinks": [{"id": "out", "plugin": "hook-sink"}]}}
    });
    let (status, answer) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    set_secret(&api, "gh", secret, 0).await;
    let github = |event: &str, guid: &str, body: &str, secret: &str| {
        let (mut headers, _) = sign(json!({"scheme": "github", "secret": secret, "body": body}));
        headers.push(("X-GitHub-Event".into(), event.into()));
        headers.push(("X-GitHub-Delivery".into(), guid.into()));
        headers
    };

    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1}).to_string();
    let (status, pong) = send(&api, "gh", &github("ping", "guid-0", &ping, secret), &ping).await;
    assert_eq!((status, pong), (StatusCode::OK, json!({"pong": true})));
    let push = json!({"ref": "refs/heads/main", "after": "abc"}).to_string();
    let (status, first) = send(&api, "gh", &github("push", "guid-1", &push, secret), &push).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    // GitHub's redelivery, and a replay of the captured body under a made-up delivery id.
    for guid in ["guid-1", "guid-forged"] {
        let (status, again) = send(&api, "gh", &github("push", guid, &push, secret), &push).await;
        assert_eq!((status, again["duplicate"].clone()), (StatusCode::OK, json!(true)), "{again}");
    }
    let issue = json!({"action": "opened", "issue": {"number": 3}}).to_string();
    let (status, _) = send(&api, "gh", &github("issues", "guid-2", &issue, secret), &issue).await;
    assert_eq!(status, StatusCode::ACCEPTED, "an issue is taken, and routed nowhere");
    let star = json!({"action": "created"}).to_string();
    let (status, ignored) = send(&api, "gh", &github("star", "guid-3", &star, secret), &star).await;
    assert_eq!((status, ignored["ignored"].clone()), (StatusCode::OK, json!(true)));
    let (status, _) = send(&api, "gh", &github("push", "guid-4", &push, "another secret entirely"), &push).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let tampered = push.replace("abc", "evil");
    let (status, _) = send(&api, "gh", &github("push", "guid-5", &push, secret), &tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    assert_eq!(delivered(&sink, 1).await, vec![json!({"ref": "refs/heads/main", "after": "abc"})]);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_deliveries_signed_by_stripe_node_are_deduplicated_by_event_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, sink) = start(dir.path()).await;
    let secret = "whsec_stripe_test_secret_0123456789";
    hooked(&api, "st", json!({"scheme": "stripe", "tolerance_secs": 300}), secret).await;
    let stripe = |secret: &str, at: u64, body: &str| {
        sign(json!({"scheme": "stripe", "secret": secret, "timestamp": at, "body": body})).0
    };
    let event = json!({"id": "evt_1", "type": "charge.succeeded", "data": {"object": {"amount": 100}}}).to_string();
    let (status, answer) = send(&api, "st", &stripe(secret, now(), &event), &event).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    // Stripe retries an event re-signed with a new timestamp: the same event id.
    let (status, again) = send(&api, "st", &stripe(secret, now() + 5, &event), &event).await;
    assert_eq!((status, again["duplicate"].clone()), (StatusCode::OK, json!(true)), "{again}");
    for headers in [stripe(secret, now() - 3600, &event), stripe("whsec_wrong_wrong_wrong_wrong", now(), &event)] {
        assert_eq!(send(&api, "st", &headers, &event).await.0, StatusCode::UNAUTHORIZED);
    }
    // Rotation: the previous secret stays accepted during the overlap.
    set_secret(&api, "st", "whsec_stripe_rolled_secret_98765", 600).await;
    let second = json!({"id": "evt_2", "type": "charge.succeeded"}).to_string();
    let (status, _) = send(&api, "st", &stripe(secret, now(), &second), &second).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the previous secret during the overlap");
    delivered(&sink, 2).await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_events_and_slash_commands_signed_by_slack_sdk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, sink) = start(dir.path()).await;
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    hooked(&api, "sl", json!({"scheme": "slack", "events": ["app_mention"]}), secret).await;
    let slack =
        |at: u64, body: &str| sign(json!({"scheme": "slack", "secret": secret, "timestamp": at, "body": body})).0;

    let challenge = json!({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "token": "x"}).to_string();
    let (status, answer) = send(&api, "sl", &slack(now(), &challenge), &challenge).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}));
    let event = json!({"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention", "text": "hi"}})
        .to_string();
    assert_eq!(send(&api, "sl", &slack(now(), &event), &event).await.0, StatusCode::ACCEPTED);
    let (status, again) = send(&api, "sl", &slack(now() + 2, &event), &event).await;
    assert_eq!((status, again["duplicate"].clone()), (StatusCode::OK, json!(true)), "Slack's retry: the same event_id");
    let other = json!({"type": "event_callback", "event_id": "Ev2", "event": {"type": "reaction_added"}}).to_string();
    let (status, ignored) = send(&api, "sl", &slack(now(), &other), &other).await;
    assert_eq!((status, ignored["ignored"].clone()), (StatusCode::OK, json!(true)));
    assert_eq!(send(&api, "sl", &slack(now() - 400, &other), &other).await.0, StatusCode::UNAUTHORIZED);

    // A slash command: a form body, signed the same way, one record.
    hooked(&api, "slash", json!({"scheme": "slack"}), secret).await;
    let form = "command=%2Fdeploy&text=prod+now&user_name=ada";
    let mut headers = slack(now(), form);
    headers.push(("content-type".into(), "application/x-www-form-urlencoded".into()));
    assert_eq!(send(&api, "slash", &headers, form).await.0, StatusCode::ACCEPTED);
    let records = delivered(&sink, 2).await;
    assert!(records.contains(&json!({"command": "/deploy", "text": "prod now", "user_name": "ada"})), "{records:?}");
    assert!(records.contains(
        &json!({"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention", "text": "hi"}})
    ));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudevents_in_all_three_modes_from_the_cncf_sdk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, sink) = start(dir.path()).await;
    let token = "a-cloudevents-access-token";
    let flow = json!({
        "name": "ce",
        "triggers": [{"type": "webhook", "scheme": "cloudevents", "events": ["com.example.order", "com.example.refund"]}],
        "steps": [{"type": "route", "id": "by-type", "routes": [{"when": {"field": "header:ce-type", "op": "equals", "value": "com.example.order"}, "to": "orders"}]}],
        "branches": {"orders": {"sinks": [{"id": "out", "plugin": "hook-sink"}]}}
    });
    assert_eq!(api.post("/v1/flows", ADMIN, flow).await.0, StatusCode::CREATED);
    set_secret(&api, "ce", token, 0).await;
    let event = |id: &str, kind: &str, n: u64| json!({"attributes": {"id": id, "source": "/shop", "type": kind}, "data": {"n": n}});
    let cloud = |mode: &str, events: Vec<Value>, token: &str| {
        sign(json!({"scheme": format!("cloudevents-{mode}"), "secret": token, "events": events}))
    };

    // The CloudEvents web hook validation handshake, as Azure Event Grid makes it.
    let handshake = |flow: &str| {
        api.client
            .request(reqwest::Method::OPTIONS, api.url(&format!("/v1/hooks/{flow}")))
            .header("WebHook-Request-Origin", "eventemitter.example.com")
            .send()
    };
    let answer = handshake("ce").await.expect("options");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.headers().get("webhook-allowed-origin").and_then(|v| v.to_str().ok()),
        Some("eventemitter.example.com")
    );
    assert_eq!(handshake("no-such-flow").await.expect("options").status(), StatusCode::UNAUTHORIZED);
    let (headers, body) = cloud("structured", vec![event("1", "com.example.order", 1)], token);
    assert_eq!(send(&api, "ce", &headers, &body).await.0, StatusCode::ACCEPTED);
    let (headers, body) = cloud("binary", vec![event("2", "com.example.order", 2)], token);
    assert_eq!(send(&api, "ce", &headers, &body).await.0, StatusCode::ACCEPTED);
    let batch = vec![
        event("3", "com.example.order", 3),
        event("4", "com.example.refund", 4),
        event("5", "com.example.other", 5),
    ];
    let (headers, body) = cloud("batch", batch, token);
    let (status, answer) = send(&api, "ce", &headers, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["records"], 2, "the filtered-out event is not queued: {answer}");
    // The same event again (source and id): a duplicate.
    let (headers, body) = cloud("binary", vec![event("2", "com.example.order", 2)], token);
    let (status, again) = send(&api, "ce", &headers, &body).await;
    assert_eq!((status, again["duplicate"].clone()), (StatusCode::OK, json!(true)));
    let (headers, body) = cloud("structured", vec![event("6", "com.example.order", 6)], "not-the-token-at-all");
    assert_eq!(send(&api, "ce", &headers, &body).await.0, StatusCode::UNAUTHORIZED);
    // A batch past the record cap is refused whole, before anything is queued.
    let flood: Vec<Value> = (0..10_001).map(|i| event(&format!("f{i}"), "com.example.order", i)).collect();
    let (headers, body) = cloud("batch", flood, token);
    let (status, answer) = send(&api, "ce", &headers, &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["code"], "input-too-large");

    let mut records = delivered(&sink, 3).await;
    records.sort_by_key(|r| r["n"].as_u64());
    assert_eq!(
        records,
        vec![json!({"n": 1}), json!({"n": 2}), json!({"n": 3})],
        "orders routed by their ce-type header"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shopify_generic_hmac_basic_and_api_key_schemes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, sink) = start(dir.path()).await;
    let secret = "shpss_0123456789abcdef0123456789";
    hooked(&api, "shop", json!({"scheme": "shopify"}), secret).await;
    let order = json!({"id": 820982911946154500u64, "email": "jon@example.com"}).to_string();
    let (mut headers, _) = sign(json!({"scheme": "shopify", "secret": secret, "body": order}));
    headers.push(("X-Shopify-Topic".into(), "orders/create".into()));
    assert_eq!(send(&api, "shop", &headers, &order).await.0, StatusCode::ACCEPTED);
    assert_eq!(send(&api, "shop", &headers, &order).await.1["duplicate"], true);

    // A sender not in the list, described as data: HMAC-SHA512, base64, over "{timestamp}:{body}".
    let hmac = json!({"header": "x-acme-sig", "prefix": "v1=", "algorithm": "sha512", "encoding": "base64", "signed": "{timestamp}:{body}", "timestamp_header": "x-acme-time"});
    hooked(&api, "acme", json!({"scheme": "hmac", "hmac": hmac}), secret).await;
    let at = now();
    let body = json!({"acme": 1}).to_string();
    let tag = {
        use base64::Engine as _;
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(format!("{at}:{body}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let headers = vec![("x-acme-sig".to_string(), format!("v1={tag}")), ("x-acme-time".to_string(), at.to_string())];
    assert_eq!(send(&api, "acme", &headers, &body).await.0, StatusCode::ACCEPTED);
    assert_eq!(send(&api, "acme", &headers, &body.replace('1', "2")).await.0, StatusCode::UNAUTHORIZED);

    hooked(&api, "basic", json!({"scheme": "basic"}), "zapier:correct-horse-battery").await;
    let basic = |pair: &str| {
        use base64::Engine as _;
        vec![("authorization".to_string(), format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))]
    };
    assert_eq!(send(&api, "basic", &basic("zapier:correct-horse-battery"), "{\"b\":1}").await.0, StatusCode::ACCEPTED);
    assert_eq!(send(&api, "basic", &basic("zapier:wrong"), "{\"b\":2}").await.0, StatusCode::UNAUTHORIZED);
    hooked(&api, "keyed", json!({"scheme": "api-key", "api_key_header": "X-Token"}), "an-api-key-for-the-hook").await;
    let key = |value: &str| vec![("x-token".to_string(), value.to_string())];
    assert_eq!(send(&api, "keyed", &key("an-api-key-for-the-hook"), "{\"k\":1}").await.0, StatusCode::ACCEPTED);
    assert_eq!(send(&api, "keyed", &key("an-api-key-for-the-hoo"), "{\"k\":2}").await.0, StatusCode::UNAUTHORIZED);

    // Schemes are data checked when the flow is saved: a typo is a 422 naming the field.
    let typo = json!({"name": "typo", "triggers": [{"type": "webhook", "scheme": "githib"}], "sinks": [{"id": "o", "plugin": "hook-sink"}]});
    let (status, answer) = api.post("/v1/flows", ADMIN, typo).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer["message"].as_str().unwrap_or_default().contains("githib"), "{answer}");
    let bad_cidr = json!({"name": "cidr", "triggers": [{"type": "webhook", "allow_from": ["10.0.0.0/40"]}], "sinks": [{"id": "o", "plugin": "hook-sink"}]});
    let (status, answer) = api.post("/v1/flows", ADMIN, bad_cidr).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer["message"].as_str().unwrap_or_default().contains("allow_from"), "{answer}");
    delivered(&sink, 4).await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_lists_refuse_other_sources_and_trust_only_named_proxies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = plugboard_host_api::server::ServeConfig {
        trusted_proxies: vec!["127.0.0.1/32".into()],
        ..Api::config(dir.path())
    };
    let api = Api::start_configured(config, Default::default()).await;
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    api.trust_test_key().await;
    install_sink(&api, "hook-sink", &sink.url("/in")).await;
    let key = "an-api-key-for-the-hook";
    hooked(&api, "lan", json!({"scheme": "api-key", "allow_from": ["10.0.0.0/8"]}), key).await;
    hooked(&api, "local", json!({"scheme": "api-key", "allow_from": ["127.0.0.1"]}), key).await;
    let with = |forwarded: Option<&str>| {
        let mut headers = vec![("x-api-key".to_string(), key.to_string())];
        if let Some(forwarded) = forwarded {
            headers.push(("x-forwarded-for".to_string(), forwarded.to_string()));
        }
        headers
    };
    assert_eq!(
        send(&api, "lan", &with(None), "{\"a\":1}").await.0,
        StatusCode::UNAUTHORIZED,
        "127.0.0.1 is not in 10/8"
    );
    assert_eq!(
        send(&api, "lan", &with(Some("10.1.2.3")), "{\"a\":2}").await.0,
        StatusCode::ACCEPTED,
        "named by the trusted proxy"
    );
    // The left of X-Forwarded-For is whatever the client wrote: only the right-most untrusted hop counts.
    assert_eq!(send(&api, "lan", &with(Some("10.9.9.9, 192.0.2.1")), "{\"a\":3}").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&api, "lan", &with(Some("not-an-address")), "{\"a\":4}").await.0, StatusCode::UNAUTHORIZED);
    // Read from the right: junk further left than the first untrusted hop does not matter, and a
    // hop may carry a port.
    assert_eq!(send(&api, "lan", &with(Some("unknown, 10.4.4.4:4711")), "{\"a\":6}").await.0, StatusCode::ACCEPTED);
    assert_eq!(send(&api, "local", &with(None), "{\"a\":5}").await.0, StatusCode::ACCEPTED);
    delivered(&sink, 3).await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_deliveries_get_typed_answers_and_the_host_stays_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, sink) = start(dir.path()).await;
    let secret = sw_secret(3);
    hooked(&api, "sw", json!({"scheme": "standard-webhooks"}), &secret).await;
    hooked(&api, "slash", json!({"scheme": "api-key"}), "an-api-key-for-the-hook").await;
    let body = "{\"type\":\"x\"}";
    let (mut headers, _) =
        sign(json!({"scheme": "standard-webhooks", "secret": secret, "id": "m1", "timestamp": now(), "body": body}));
    let signature = headers.iter().position(|(k, _)| k == "webhook-signature").expect("signature");
    for hostile in
        ["v1,".to_string() + &"A".repeat(5000), "v1,@@@not base64@@@".into(), "v2,abc v1".into(), " ".repeat(100)]
    {
        headers[signature].1 = hostile;
        let (status, answer) = send(&api, "sw", &headers, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    }
    // Thousands of form fields: refused as invalid, nothing queued.
    let form: String = (0..5000).map(|i| format!("f{i}=x")).collect::<Vec<_>>().join("&");
    let headers = vec![
        ("x-api-key".to_string(), "an-api-key-for-the-hook".to_string()),
        ("content-type".to_string(), "application/x-www-form-urlencoded".to_string()),
    ];
    let (status, answer) = send(&api, "slash", &headers, &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "invalid-request");
    // Not JSON at all, and an empty body.
    let keyed = vec![("x-api-key".to_string(), "an-api-key-for-the-hook".to_string())];
    assert_eq!(send(&api, "slash", &keyed, "{not json").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(send(&api, "slash", &keyed, "").await.0, StatusCode::BAD_REQUEST);
    // Still serving.
    assert_eq!(send(&api, "slash", &keyed, "{\"ok\":true}").await.0, StatusCode::ACCEPTED);
    assert_eq!(delivered(&sink, 1).await, vec![json!({"ok": true})]);
    api.stop().await;
}
