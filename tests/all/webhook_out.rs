//! Webhooks out: the `webhook-sink` sample in a flow delivers records signed per Standard
//! Webhooks, and what it sent is verified by Svix's own library (`tests/senders/verify.py`) and
//! the GitHub-style signature by Octokit's (`sign.mjs verify-github`), as receivers would. A
//! retried record goes again under the same `webhook-id`, so receivers deduplicate it.

use crate::support::common::{TestServer, config, records, runtime};
use crate::support::flows::sender_script;
use plugboard_runtime::flow::{FlowDefinition, FlowRun};
use plugboard_runtime::{Error, Grant, PluginError, WriteReport};
use plugboard_tests::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const SIGNING: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GITHUB: &str = "a-github-style-secret";

fn grant(url: &str, batch_size: Option<&str>) -> Grant {
    let mut grant = config(&[("url", url)]);
    if let Some(size) = batch_size {
        grant.config.insert("batch_size".into(), size.into());
    }
    grant.outbound_hosts = vec!["127.0.0.1".into()];
    grant.secrets.insert("signing_secret".into(), SIGNING.into());
    grant.secrets.insert("github_secret".into(), GITHUB.into());
    grant
}

/// The requests as the verifiers take them.
fn captured(server: &TestServer) -> Vec<Value> {
    server.requests().iter().map(|r| json!({"headers": r.headers, "body": String::from_utf8_lossy(&r.body)})).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn webhook_sink() {
    // The receiver is down for the first request, then takes every one.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let receiver = TestServer::start(move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 { (503, "{}".into()) } else { (200, "{}".into()) }
    })
    .await;
    let plugin = WEBHOOK_SINK.load(&runtime(), &grant(&receiver.url("/hooks"), None));
    let flow: FlowDefinition = serde_json::from_value(json!({"name": "out",
        "sinks": [{"id": "hook", "plugin": "webhook-sink", "retry": {"max_attempts": 3, "initial_backoff_ms": 10}}]}))
    .expect("flow");
    let run = FlowRun::new(flow, BTreeMap::from([("webhook-sink".to_string(), plugin)]));
    let outcome = run.run(records(&[json!({"type": "order.paid", "n": 1}), json!({"n": 2}), json!({"n": 3})])).await;
    assert_eq!((outcome.delivered, outcome.dead_letters.len()), (3, 0), "{outcome:?}");
    assert_eq!(outcome.steps[0].attempts, 2, "the 503 was retried by the flow's policy");

    let requests = captured(&receiver);
    assert_eq!(requests.len(), 4, "{requests:?}");
    let ids: Vec<&str> = requests.iter().map(|r| r["headers"]["webhook-id"].as_str().unwrap_or_default()).collect();
    assert_eq!(ids[0], ids[1], "a retried record keeps its webhook-id");
    assert!(ids[1] != ids[2] && ids[2] != ids[3] && ids[1] != ids[3], "{ids:?}");
    assert_eq!(requests[1]["body"], json!({"type": "order.paid", "n": 1}).to_string());
    let verdicts = sender_script("verify.py", &json!({"secret": SIGNING, "requests": requests}));
    assert_eq!(verdicts, json!(["ok", "ok", "ok", "ok"]), "Svix accepts every request");
    let github = sender_script("sign.mjs", &json!({"scheme": "verify-github", "secret": GITHUB, "requests": requests}));
    assert_eq!(github, json!([true, true, true, true]), "Octokit accepts the GitHub-style signature");
    // The verifiers can refuse: a tampered body, and another secret.
    let mut tampered = requests[3].clone();
    tampered["body"] = json!("{\"n\":4}");
    let verdicts = sender_script("verify.py", &json!({"secret": SIGNING, "requests": [tampered]}));
    assert!(verdicts[0].as_str().is_some_and(|v| v.starts_with("refused")), "{verdicts}");
    let other = sender_script(
        "verify.py",
        &json!({"secret": "whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==", "requests": [requests[3].clone()]}),
    );
    assert!(other[0].as_str().is_some_and(|v| v.starts_with("refused")), "{other}");

    // Batches: two records a request, as a JSON array.
    let batched = TestServer::start(|_| (200, "{}".into())).await;
    let plugin = WEBHOOK_SINK.load(&runtime(), &grant(&batched.url("/hooks"), Some("2")));
    let report = plugin.write(records(&[json!(1), json!(2), json!(3)])).await.into_result().expect("written");
    assert_eq!(report, WriteReport { accepted: 3, failed: 0 });
    let bodies: Vec<Value> = captured(&batched).iter().map(|r| r["body"].clone()).collect();
    assert_eq!(bodies, vec![json!("[1,2]"), json!("[3]")]);

    // A receiver that rejects (4xx) fails the records; a secret that is not whsec_ is bad config.
    let rejecting = TestServer::start(|_| (422, "{}".into())).await;
    let plugin = WEBHOOK_SINK.load(&runtime(), &grant(&rejecting.url("/hooks"), None));
    let report = plugin.write(records(&[json!(1), json!(2)])).await.into_result().expect("answered");
    assert_eq!(report, WriteReport { accepted: 0, failed: 2 });
    let mut bad = grant(&rejecting.url("/hooks"), None);
    bad.secrets.insert("signing_secret".into(), "not base64 at all!".into());
    let plugin = WEBHOOK_SINK.load(&runtime(), &bad);
    assert!(matches!(
        plugin.write(records(&[json!(1)])).await.into_result(),
        Err(Error::Guest(PluginError::InvalidConfig(_)))
    ));
}
