//! Concurrency: many invocations of one plugin at once, each with its own Store, all correct; a
//! stuck plugin does not stall the others.

use crate::support::common::{config, records, runtime, runtime_with, values};
use plugboard_runtime::{BudgetLimits, Error};
use plugboard_tests::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_invocations_return_their_own_results() {
    let runtime = runtime();
    let mapper = JSON_MAPPER.load(&runtime, &config(&[("mapping", r#"{"n": "$.n", "twice": ["$.n", "$.n"]}"#)]));
    let calls = (0..64).map(|n| {
        let mapper = mapper.clone();
        tokio::spawn(async move { (n, mapper.transform(records(&[json!({"n": n})])).await.into_result()) })
    });
    let mut seen = 0;
    for call in calls {
        let (n, result) = call.await.expect("task");
        assert_eq!(values(&result.expect("invocation")), vec![json!({"n": n, "twice": [n, n]})]);
        seen += 1;
    }
    assert_eq!(seen, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_plugin_does_not_stall_others() {
    // Fuel high enough that the deadline, not fuel, ends the loops.
    let runtime = runtime_with(|c| c.caps.fuel = u64::MAX / 2);
    let mut grant = config(&[("mode", "loop")]);
    grant.budget = BudgetLimits { timeout_ms: Some(1500), ..Default::default() };
    let stuck = GUEST_HOSTILE.load(&runtime, &grant);
    let mapper = JSON_MAPPER.load(&runtime, &config(&[("mapping", r#"{"v": "$.a"}"#)]));
    // Occupy both worker threads with looping guests.
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let stuck = stuck.clone();
            tokio::spawn(async move { stuck.transform(records(&[json!(1)])).await.outcome })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // While they spin, a good plugin still completes all its calls, before the loops time out.
    for a in 0..20 {
        let out = mapper.transform(records(&[json!({"a": a})])).await.into_result().expect("good plugin");
        assert_eq!(values(&out), vec![json!({"v": a})]);
        assert!(loops.iter().any(|l| !l.is_finished()), "the good plugin should finish while loops still run");
    }
    for task in loops {
        let outcome = task.await.expect("task");
        assert!(matches!(outcome, Err(Error::Timeout { .. })), "{outcome:?}");
    }
}
