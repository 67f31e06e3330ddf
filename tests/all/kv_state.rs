//! The state guarantee: an invocation's key-value writes commit atomically if and only if it
//! succeeds, it reads its own writes before then, and concurrent invocations on one bucket leave
//! each key with a value some successful invocation committed last.

use crate::support::common::{config, records, runtime_with, values};
use crate::support::flows::{install_sink, posted};
use crate::support::server::{ADMIN, Api, install};
use plugboard_runtime::{
    BudgetLimits, Error, ErrorCode, KeyValueQuota, KeyValueStore, MemoryKeyValue, Plugin, PluginError, Runtime,
    TrapKind,
};
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

/// A runtime whose key-value data lives in `store`.
fn runtime_over(store: Arc<dyn KeyValueStore>) -> Runtime {
    runtime_with(|c| c.key_value = store)
}

/// The hostile guest in `kv-script` mode with bucket `counters` granted, under `budget`.
fn script_guest(runtime: &Runtime, budget: BudgetLimits) -> Plugin {
    let mut grant = config(&[("mode", "kv-script")]);
    grant.key_value = vec!["counters".into()];
    grant.budget = budget;
    GUEST_HOSTILE.load(runtime, &grant)
}

/// Runs the operations `ops` and answers what each returned.
async fn run(plugin: &Plugin, ops: &[Value]) -> Vec<Value> {
    values(&plugin.transform(records(ops)).await.into_result().expect("the script succeeds"))
}

/// The bucket as a later invocation sees it: every key, and each key's value.
async fn bucket(plugin: &Plugin) -> (Value, Vec<Value>) {
    let keys = run(plugin, &[json!(["list"])]).await.remove(0);
    let names: Vec<&str> = keys.as_array().expect("keys").iter().filter_map(Value::as_str).collect();
    let gets: Vec<Value> = names.iter().map(|k| json!(["get", k])).collect();
    let values = if gets.is_empty() { Vec::new() } else { run(plugin, &gets).await };
    (keys, values)
}

/// Commits a baseline, then writes over it and traps half-way: the bucket is exactly as it was.
async fn a_trap_half_way_leaves_the_bucket_as_it_was(runtime: &Runtime) {
    let plugin = script_guest(runtime, BudgetLimits::default());
    run(&plugin, &[json!(["set", "a", "1"]), json!(["set", "b", "2"])]).await;
    let before = bucket(&plugin).await;
    assert_eq!(before, (json!(["a", "b"]), vec![json!("1"), json!("2")]));
    let ops = [json!(["set", "a", "changed"]), json!(["delete", "b"]), json!(["set", "c", "new"]), json!(["panic"])];
    match plugin.transform(records(&ops)).await.outcome {
        Err(Error::GuestTrap { kind: TrapKind::Unreachable, .. }) => {}
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(bucket(&plugin).await, before);
}

#[tokio::test]
async fn kv_a_trap_half_way_leaves_the_bucket_as_it_was_in_memory() {
    a_trap_half_way_leaves_the_bucket_as_it_was(&runtime_over(Arc::new(MemoryKeyValue::default()))).await;
}

#[tokio::test]
async fn kv_a_trap_half_way_leaves_the_bucket_as_it_was_in_sled() {
    use plugboard_host_api::store::{Storage, sealed::SecretsKey, sled::SledStore};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path(), SecretsKey::ephemeral().expect("key")).expect("store");
    a_trap_half_way_leaves_the_bucket_as_it_was(&runtime_over(store.key_value())).await;
}

#[tokio::test]
async fn kv_a_plugin_error_a_timeout_and_an_oversized_output_discard_the_writes() {
    let runtime = runtime_over(Arc::new(MemoryKeyValue::default()));
    let plugin = script_guest(&runtime, BudgetLimits::default());
    let failed = plugin.transform(records(&[json!(["set", "error", "1"]), json!(["fail"])])).await;
    assert!(matches!(failed.outcome, Err(Error::Guest(PluginError::Internal(_)))), "{:?}", failed.outcome);

    let slow = script_guest(&runtime, BudgetLimits { timeout_ms: Some(300), ..Default::default() });
    let timed_out = slow.transform(records(&[json!(["set", "timeout", "1"]), json!(["sleep"])])).await;
    assert!(matches!(timed_out.outcome, Err(Error::Timeout { .. })), "{:?}", timed_out.outcome);

    // The guest succeeds, but its output (the big value it read back) is over the output budget.
    let budget = BudgetLimits { max_output_bytes: Some(1_000), ..Default::default() };
    let big = "v".repeat(2_000);
    let oversized = script_guest(&runtime, budget)
        .transform(records(&[json!(["set", "output", big]), json!(["get", "output"])]))
        .await;
    assert!(matches!(oversized.outcome, Err(Error::OutputTooLarge { .. })), "{:?}", oversized.outcome);

    assert_eq!(bucket(&plugin).await, (json!([]), vec![]), "nothing was committed");
    run(&plugin, &[json!(["set", "ok", "1"])]).await;
    assert_eq!(bucket(&plugin).await, (json!(["ok"]), vec![json!("1")]), "a success commits");
}

#[tokio::test]
async fn kv_reads_within_an_invocation_see_its_own_writes() {
    let runtime = runtime_over(Arc::new(MemoryKeyValue::default()));
    let plugin = script_guest(&runtime, BudgetLimits::default());
    run(&plugin, &[json!(["set", "a", "1"]), json!(["set", "c", "3"]), json!(["set", "e", "5"])]).await;
    let ops = [
        json!(["set", "b", "2"]),
        json!(["set", "c", "three"]),
        json!(["delete", "e"]),
        json!(["set", "f", "6"]),
        json!(["delete", "f"]),
        json!(["delete", "never-set"]),
        json!(["get", "a"]),
        json!(["get", "b"]),
        json!(["get", "c"]),
        json!(["get", "e"]),
        json!(["get", "f"]),
        json!(["exists", "b"]),
        json!(["exists", "e"]),
        json!(["list"]),
    ];
    let answers = run(&plugin, &ops).await;
    assert_eq!(
        answers[6..],
        [
            json!("1"),
            json!("2"),
            json!("three"),
            json!(null),
            json!(null),
            json!(true),
            json!(false),
            json!(["a", "b", "c"])
        ]
    );
    assert_eq!(bucket(&plugin).await, (json!(["a", "b", "c"]), vec![json!("1"), json!("2"), json!("three")]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_concurrent_invocations_keep_each_keys_last_committed_value() {
    const WRITERS: usize = 24;
    let runtime = runtime_over(Arc::new(MemoryKeyValue::default()));
    let plugin = script_guest(&runtime, BudgetLimits::default());
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let plugin = plugin.clone();
            tokio::spawn(async move {
                let mut ops = vec![json!(["set", "k", i.to_string()]), json!(["set", format!("own-{i:02}"), "x"])];
                // Every writer reads its own value back, whatever the others committed meanwhile.
                ops.push(json!(["get", "k"]));
                if i % 3 == 0 {
                    ops.push(json!(["panic"]));
                }
                let outcome = plugin.transform(records(&ops)).await.outcome;
                (i, outcome)
            })
        })
        .collect();
    let mut succeeded = Vec::new();
    for task in tasks {
        let (i, outcome) = task.await.expect("task");
        match outcome {
            Ok(out) => {
                assert_eq!(values(&out)[2], json!(i.to_string()), "writer {i} reads its own write");
                succeeded.push(i);
            }
            Err(Error::GuestTrap { .. }) => assert_eq!(i % 3, 0, "only the trapping writers fail"),
            Err(err) => panic!("writer {i}: {err:?}"),
        }
    }
    let (keys, values) = bucket(&plugin).await;
    let mut expected: Vec<String> = succeeded.iter().map(|i| format!("own-{i:02}")).collect();
    expected.insert(0, "k".into());
    assert_eq!(keys, json!(expected), "every successful writer's key, no failed writer's");
    let last: usize = values[0].as_str().and_then(|v| v.parse().ok()).expect("k holds a writer's id");
    assert!(succeeded.contains(&last), "k = {last}, written by a writer that failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_a_commit_past_the_quota_fails_the_invocation_and_applies_nothing() {
    let quota = KeyValueQuota { max_keys: 2, max_bytes: 1 << 20 };
    let runtime = runtime_with(|c| {
        c.key_value = Arc::new(MemoryKeyValue::default());
        c.key_value_quota = quota;
    });
    let plugin = script_guest(&runtime, BudgetLimits::default());
    // The first writer's two keys fit when it sets them; it then waits for the second writer's
    // key, which fits too (the first one's writes are not committed yet) and commits first.
    let first = {
        let plugin = plugin.clone();
        let ops = [json!(["set", "a", "1"]), json!(["set", "b", "2"]), json!(["wait", "go"])];
        tokio::spawn(async move { plugin.transform(records(&ops)).await })
    };
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    run(&plugin, &[json!(["set", "go", "1"])]).await;
    let first = first.await.expect("task");
    match &first.outcome {
        Err(err @ Error::KeyValueQuota(exceeded)) => {
            assert_eq!(err.code(), ErrorCode::KeyValueQuota);
            assert_eq!(exceeded.quota, quota);
        }
        other => panic!("expected the commit to be refused, got {other:?}"),
    }
    assert!(first.logs.entries.iter().any(|e| e.context == "host" && e.message.contains("discarded")));
    assert_eq!(bucket(&plugin).await, (json!(["go"]), vec![json!("1")]), "none of the first writer's keys");
}

/// The dedupe transformer of the bug report as a flow step: it runs out of fuel part-way through
/// 40 records, the batch goes to the dead-letter queue, and after the budget is raised the replay
/// delivers all 40 (the ids the failed attempt stored must not make it drop any).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_dedupe_replayed_after_running_out_of_fuel_delivers_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    install(&api, GUEST_HOSTILE).await;
    let grant = |fuel: u64| json!({"key_value": ["seen"], "budget": {"fuel": fuel}});
    let (status, body) = api.put("/v1/plugins/hostile/grants", grant(10_000_000_000)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api.put("/v1/plugins/hostile/config", json!({"values": {"mode": "kv-dedupe"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let batch =
        |prefix: &str| json!({"records": (0..40).map(|i| json!({"id": format!("{prefix}{i}")})).collect::<Vec<_>>()});

    // What 40 records cost (other ids, so the flow's records are still unseen).
    let (status, body) = api.post("/v1/plugins/hostile/invoke", ADMIN, batch("probe-")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records"].as_array().map(Vec::len), Some(40));
    let fuel = body["usage"]["fuel"].as_u64().expect("fuel");
    let (status, body) = api.put("/v1/plugins/hostile/grants", grant(fuel / 2)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let sink = crate::support::common::TestServer::start(|_| (200, "{}".into())).await;
    install_sink(&api, "dedupe-sink", &sink.url("/in")).await;
    let flow = json!({
        "name": "dedupe",
        "steps": [{"type": "transform", "id": "dedupe", "plugin": "hostile"}],
        "sinks": [{"id": "deliver", "plugin": "dedupe-sink"}]
    });
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, execution) = api.post("/v1/flows/dedupe/run", ADMIN, batch("r-")).await;
    assert_eq!(status, StatusCode::OK, "{execution}");
    assert_eq!(execution["status"], "completed-with-dead-letters", "{execution}");
    assert_eq!(execution["steps"][0]["error"]["code"], "out-of-fuel", "{execution}");
    let (_, dlq) = api.get("/v1/flows/dedupe/dlq", ADMIN).await;
    assert_eq!(dlq["dead_letters"].as_array().map(Vec::len), Some(40));
    assert!(sink.requests().is_empty());

    let (status, body) = api.put("/v1/plugins/hostile/grants", grant(fuel * 4)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, replay) = api.post("/v1/flows/dedupe/dlq/replay", ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["executions"][0]["status"], "succeeded", "{replay}");
    let delivered: Vec<Value> = posted(&sink);
    assert_eq!(delivered, batch("r-")["records"].as_array().cloned().unwrap_or_default(), "all 40, in order");
    let (_, dlq) = api.get("/v1/flows/dedupe/dlq", ADMIN).await;
    assert_eq!(dlq["dead_letters"], json!([]));
    api.stop().await;
}
