//! Webhook triggers end to end: signatures, the durable queue, and deliveries that arrive twice.

use crate::support::common::TestServer;
use crate::support::flows::{SECRET, create_hooked_flow, deliver, now, posted, wait_for, webhook_flow};
use crate::support::server::{ADMIN, Api};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_need_a_valid_signature_and_run_once_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    webhook_flow(&api, &sink.url("/in")).await;
    let body = json!({"records": [{"order": 1}]});

    // Refused: wrong secret, stale timestamp (a replay), missing headers, tampered body.
    let (status, _) = deliver(&api, "hooked", "wrong-secret-wrong-secret", now(), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, stale) = deliver(&api, "hooked", SECRET, now() - 3600, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api.call(reqwest::Method::POST, "/v1/hooks/hooked", None, Some(body.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let timestamp = now();
    let signature =
        plugboard_host_api::domain::webhook::sign_hook(SECRET, "hooked", timestamp, b"{\"records\":[{\"order\":1}]}");
    let response = api
        .client
        .post(api.url("/v1/hooks/hooked"))
        .header("x-plugboard-timestamp", timestamp.to_string())
        .header("x-plugboard-signature", signature)
        .body("{\"records\":[{\"order\":666}]}")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // No such flow: the same answer as a wrong signature, so outsiders cannot probe flow names.
    let (status, missing) = deliver(&api, "no-such-flow", SECRET, now(), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing, stale, "a missing flow and a stale delivery answer alike");
    // Signed for another flow with the same secret: the flow's name is part of what is signed.
    let bytes = serde_json::to_vec(&body).expect("json");
    let timestamp = now();
    let response = api
        .client
        .post(api.url("/v1/hooks/hooked"))
        .header("x-plugboard-timestamp", timestamp.to_string())
        .header(
            "x-plugboard-signature",
            plugboard_host_api::domain::webhook::sign_hook(SECRET, "other", timestamp, &bytes),
        )
        .body(bytes)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "a delivery signed for another flow is refused");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(sink.requests().is_empty(), "nothing ran");

    // Accepted: 202 once queued, then delivered by the worker.
    let (status, accepted) = deliver(&api, "hooked", SECRET, now(), &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    wait_for("the webhook's records to reach the sink", || !sink.requests().is_empty()).await;
    assert_eq!(posted(&sink), vec![json!({"order": 1})]);
    let (_, executions) = api.get("/v1/flows/hooked/executions", ADMIN).await;
    assert_eq!(executions["executions"][0]["trigger"], "webhook");
    // The 202's `queued` id follows the delivery to the execution that ran it.
    let id = accepted["queued"].as_u64().expect("queued id");
    assert_eq!(accepted["delivery"], format!("/v1/flows/hooked/deliveries/{id}"));
    let follow = accepted["delivery"].as_str().unwrap_or_default().to_string();
    let mut state = Value::Null;
    for _ in 0..100 {
        let (status, answer) = api.get(&follow, ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        state = answer;
        if state["state"] == "ran" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "ran", "{state}");
    assert_eq!(state["execution"]["id"], executions["executions"][0]["id"]);
    assert!(state["execution"]["queued"].as_array().is_some_and(|q| q.contains(&json!(id))), "{state}");
    let (status, _) = api.get(&format!("/v1/flows/other/deliveries/{id}"), ADMIN).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a delivery is found under its own flow only");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_webhook_work_survives_a_stop_before_it_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    let api = Api::start(dir.path()).await;
    webhook_flow(&api, &sink.url("/in")).await;
    api.stop().await;

    // Work acknowledged but not yet run when the server went down: it sits in the durable queue.
    use plugboard_host_api::store::{Change, ExecutionStatus, Op, Storage, TriggerKind};
    let store = crate::support::server::reopen(&dir.path().join("db")).await;
    let queued = plugboard_host_api::store::QueuedRun {
        id: store.next_id().expect("id"),
        flow: "hooked".into(),
        records: vec![json!({"order": 7})],
        headers: Vec::new(),
        trigger: TriggerKind::Webhook,
        received_at: now(),
        node: None,
        accepted: None,
    };
    store.apply(Change::new().with(Op::Enqueue(queued))).expect("enqueue");
    let interrupted = plugboard_host_api::store::ExecutionRecord {
        id: store.next_id().expect("id"),
        flow: "hooked".into(),
        status: ExecutionStatus::Running,
        trigger: TriggerKind::Webhook,
        queued: Vec::new(),
        started_at: now(),
        finished_at: None,
        plugin_versions: Default::default(),
        dead_letter_count: 0,
        state_error: None,
        records_in: 1,
        node: None,
        outcome: Default::default(),
    };
    store.apply(Change::new().with(Op::PutExecution(Box::new(interrupted.clone())))).expect("execution");
    store.close().await.expect("flush");
    drop(store);

    let api = Api::start(dir.path()).await;
    wait_for("queued work to run after the restart", || !sink.requests().is_empty()).await;
    assert_eq!(posted(&sink), vec![json!({"order": 7})]);
    let (_, old) = api.get(&format!("/v1/executions/{}", interrupted.id), ADMIN).await;
    assert_eq!(old["status"], "interrupted");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_delivery_runs_once_even_across_restarts_and_races() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    let api = Api::start(dir.path()).await;
    webhook_flow(&api, &sink.url("/in")).await;
    let sent = now();
    let body = json!({"records": [{"event": "evt_1"}]});
    let (status, first) = deliver(&api, "hooked", SECRET, sent, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");

    // A sender's retry, or a captured request sent again within the tolerance: nothing new runs.
    let (status, again) = deliver(&api, "hooked", SECRET, sent, &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!((again["duplicate"].clone(), again["queued"].clone()), (json!(true), first["queued"].clone()));
    // Another event (another body, or the same body at another second) is new work.
    let (status, _) = deliver(&api, "hooked", SECRET, sent, &json!({"records": [{"event": "evt_2"}]})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_for("both events to reach the sink", || posted(&sink).len() == 2).await;

    // Eight copies of one delivery at once: exactly one is queued.
    let racing = json!({"records": [{"event": "evt_3"}]});
    let copies = (0..8).map(|_| deliver(&api, "hooked", SECRET, sent, &racing));
    let statuses: Vec<StatusCode> = futures::future::join_all(copies).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::ACCEPTED).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 7, "{statuses:?}");
    wait_for("the raced event to reach the sink", || posted(&sink).len() == 3).await;

    // The marks are durable: after a restart the replay is still caught.
    api.stop().await;
    let api = Api::start(dir.path()).await;
    let (status, _) = deliver(&api, "hooked", SECRET, sent, &body).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Several workers run the flow (it is not `ordered`), so events may arrive in any order.
    let mut events: Vec<String> =
        posted(&sink).iter().map(|record| record["event"].as_str().unwrap_or_default().to_string()).collect();
    events.sort();
    assert_eq!(events, ["evt_1", "evt_2", "evt_3"], "each event delivered once");

    // Deleting the flow keeps its marks: a flow re-created under the name with the same secret
    // still refuses the replay of a delivery the old flow accepted.
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/flows/hooked", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    create_hooked_flow(&api).await;
    let (status, replayed) = deliver(&api, "hooked", SECRET, sent, &body).await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["duplicate"], true);
    let (status, _) = deliver(&api, "hooked", SECRET, sent, &json!({"records": [{"event": "evt_4"}]})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "new deliveries reach the new flow");
    api.stop().await;
}

#[tokio::test]
async fn delivery_marks_are_forgotten_once_their_window_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    use plugboard_host_api::store::QueueStore;
    let store = plugboard_host_api::store::sled::SledStore::open(
        dir.path(),
        plugboard_host_api::store::sealed::SecretsKey::ephemeral().expect("key"),
    )
    .expect("store");
    let run = |id| plugboard_host_api::store::QueuedRun {
        id,
        flow: "hooked".into(),
        records: vec![json!({"event": id})],
        headers: Vec::new(),
        trigger: plugboard_host_api::store::TriggerKind::Webhook,
        received_at: 0,
        node: None,
        accepted: None,
    };
    assert_eq!(store.enqueue_once(&run(1), b"old", 100).expect("enqueue"), (1, true));
    assert_eq!(store.enqueue_once(&run(2), b"new", 200).expect("enqueue"), (2, true));
    assert_eq!(store.enqueue_once(&run(3), b"old", 100).expect("enqueue"), (1, false), "a repeat");
    assert_eq!(store.queue_depths().expect("depths")["hooked"], 2, "the repeat was not queued");
    assert!(store.queued_run(3).expect("read").is_none(), "nor left behind unindexed");
    // The same run applied again (a cluster replica re-reading its log after a crash) stays queued.
    assert_eq!(store.enqueue_once(&run(2), b"new", 200).expect("enqueue"), (2, true), "the same run again");
    assert_eq!(store.queue_depths().expect("depths")["hooked"], 2, "still queued once");
    assert!(store.queued_run(2).expect("read").is_some(), "and not removed");
    assert_eq!(store.sweep_delivery_marks(150).expect("sweep"), 1);
    assert_eq!(store.enqueue_once(&run(4), b"old", 300).expect("enqueue"), (4, true), "expired mark gone");
    assert_eq!(store.enqueue_once(&run(5), b"new", 300).expect("enqueue"), (2, false), "live mark kept");
}
