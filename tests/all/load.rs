//! The real `plugboard` binary under load and faults: the short run of the load-and-fault harness
//! (`tests/harness`, also the `plugboard-harness` command for long soak runs).
//!
//! Eight webhook senders deliver signed batches into a flow (json-mapper → filter → http-sink into
//! a local HTTP sink) while config, grant and upload writers change the server; the server is
//! SIGKILLed and restarted on the same data directory three times, then stopped with SIGTERM. Every
//! acknowledged record must reach the sink, no record the filter drops may, every acknowledged write
//! must survive each restart, the sink must never stall while work is owed, and SIGTERM must stop
//! the server within its deadline.
//!
//! It runs the binary of the same build (`cargo test --workspace` builds it), else the newest of
//! `target/{release,debug}/plugboard` or `PLUGBOARD_BIN`. A missing binary fails the test rather
//! than skipping it, so that CI cannot pass without running it.

use plugboard_harness::{Options, run};
use std::time::Duration;

/// The short run: 8 senders, 3 kill/restart cycles of 2-4 s, 15 s of load.
fn short_run() -> Options {
    Options {
        senders: 8,
        records_per_delivery: 5,
        cycles: 3,
        cycle_ms: 2000..=4000,
        duration: Some(Duration::from_secs(15)),
        drain_timeout: Duration::from_secs(60),
        shutdown_deadline: Duration::from_secs(30),
        stall: Duration::from_secs(10),
        max_rss_mib: 1024,
        progress: true,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_under_load_the_server_keeps_every_promise() {
    let binary = crate::support::common::plugboard_binary();
    if let Ok(age) = std::fs::metadata(&binary).and_then(|m| m.modified()).map(|m| m.elapsed().unwrap_or_default()) {
        eprintln!("load test: {} (built {:.0?} ago)", binary.display(), age);
    }
    // Senders sign as GitHub does: a `scheme: github` flow under the same kills.
    let options = Options { binary: Some(binary), github: true, ..short_run() };
    let report = run(options).await.expect("the harness ran");
    eprintln!("{report}");
    if let Err(violations) = report.check() {
        panic!("{} violations:\n  - {}", violations.len(), violations.join("\n  - "));
    }
    assert!(report.cycles == 3 && report.restarts.len() == 3, "three kill/restart cycles");
    assert!(report.acknowledged > 0 && report.delivered == report.acknowledged);
}

/// The same as a cluster node over a real NATS JetStream server: killed and restarted on its data
/// directory (its replica of the change log) more often, since a kill between applying a change
/// and noting it applied is what a restarted replica must survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_killed_and_restarted_under_load_keeps_every_promise() {
    let nats = plugboard_tests::nats::NatsCluster::single().await.expect("nats-server");
    let options = Options {
        binary: Some(crate::support::common::plugboard_binary()),
        cycles: 8,
        cycle_ms: 1000..=2000,
        cluster: Some(nats.nodes[0].url.clone()),
        ..short_run()
    };
    let report = run(options).await.expect("the harness ran");
    eprintln!("{report}");
    if let Err(violations) = report.check() {
        panic!("{} violations:\n  - {}", violations.len(), violations.join("\n  - "));
    }
    assert!(report.cycles == 8 && report.restarts.len() == 8, "eight kill/restart cycles");
    assert!(report.acknowledged > 0 && report.delivered == report.acknowledged);
}
