//! The engine cluster mode (issue 15) stands on, checked against the versions Plugboard
//! ships with: Debian's nats-server 2.9 and async-nats without its 2.10+ features. Each test
//! pins one property the cluster design relies on, so a server or client upgrade that breaks it
//! fails here first, not in a node that lost work:
//!
//! - key-value writes are checked by revision (two nodes never overwrite each other) and reach a
//!   watcher on another server (how nodes will learn of uploads, activations and revocations);
//! - of concurrent publishes expecting the same last sequence on one subject of a stream, only
//!   one wins, with other subjects' traffic in between (the change log's revision check);
//! - a publish is acknowledged only once stored, and a work-queue message fetched but never
//!   acknowledged (a node that died mid-run) is delivered again after the ack wait;
//! - replicated (R3) buckets and streams keep serving when one of three servers is killed.

use async_nats::jetstream::{self, consumer, kv, stream};
use futures::StreamExt;
use plugboard_tests::nats::create_bucket;
use plugboard_tests::nats::{NatsCluster, READY_WITHIN};
use std::time::{Duration, Instant};

fn bytes(text: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(text.as_bytes())
}

/// Retries `op` until it succeeds or [`READY_WITHIN`] passes: a cluster that lost a server
/// elects new leaders for its streams, and calls fail meanwhile.
async fn eventually<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut op: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        match op().await {
            Ok(value) => return value,
            Err(_) if started.elapsed() < READY_WITHIN => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(err) => panic!("{what}: {err}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_value_writes_are_checked_by_revision_and_watched_from_another_server() {
    let cluster = NatsCluster::start(3).await.expect("three nats servers");
    let connect = |index: usize| {
        let url = cluster.nodes[index].url.clone();
        async move { jetstream::new(async_nats::connect(url).await.expect("connect")) }
    };
    let (first, third, second) = (connect(0).await, connect(2).await, connect(1).await);
    let store = eventually("create an R3 bucket", || create_bucket(&first, "plugins", 3)).await;
    let other = eventually("open it through another server", || third.get_key_value("plugins")).await;
    let watcher = eventually("open it through the third", || second.get_key_value("plugins")).await;
    let mut watch = watcher.watch_all().await.expect("watch");

    let created = store.create("json-mapper", bytes("v1")).await.expect("create");
    let again = other.create("json-mapper", bytes("v1 from another node")).await.expect_err("created twice");
    assert_eq!(again.kind(), kv::CreateErrorKind::AlreadyExists);
    let updated = store.update("json-mapper", bytes("v2"), created).await.expect("update at its revision");
    let stale = other.update("json-mapper", bytes("v2 from another node"), created).await.expect_err("stale");
    assert_eq!(stale.kind(), kv::UpdateErrorKind::WrongLastRevision, "a stale revision never overwrites");
    let current = other.entry("json-mapper").await.expect("entry").expect("present");
    assert_eq!((current.value, current.revision), (bytes("v2"), updated));

    // The watcher on the second server sees both writes, in order; the time from the writer's
    // acknowledgement to the watcher is what a change takes to reach another node.
    let mut seen = Vec::new();
    let written = Instant::now();
    let revoked = store.put("revoked-key", bytes("k1")).await.expect("put");
    while seen.last() != Some(&revoked) {
        let entry = tokio::time::timeout(READY_WITHIN, watch.next()).await.expect("the watch answers");
        seen.push(entry.expect("an entry").expect("no watch error").revision);
    }
    println!("a key-value write reached a watcher on another server in {:?}", written.elapsed());
    assert_eq!(seen, [created, updated, revoked]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_fetched_but_never_acknowledged_is_delivered_again_after_the_ack_wait() {
    let server = NatsCluster::single().await.expect("a nats server");
    let js = jetstream::new(async_nats::connect(&server.nodes[0].url).await.expect("connect"));
    let config = stream::Config {
        name: "WORK".into(),
        subjects: vec!["work.>".into()],
        retention: stream::RetentionPolicy::WorkQueue,
        ..Default::default()
    };
    let work = js.create_stream(config).await.expect("work-queue stream");
    // A publish answers once the server stored it: the ack carries its sequence.
    let ack = js.publish("work.orders", bytes("run 1")).await.expect("publish").await.expect("stored");
    assert_eq!(ack.sequence, 1);
    let workers = consumer::pull::Config {
        durable_name: Some("workers".into()),
        ack_wait: Duration::from_secs(1),
        ..Default::default()
    };
    let consumer = work.create_consumer(workers).await.expect("consumer");

    // A node takes the work and dies before storing the execution: it never acknowledges.
    let mut batch = consumer.fetch().max_messages(1).messages().await.expect("fetch");
    let taken = batch.next().await.expect("a message").expect("no error");
    assert_eq!(taken.payload, bytes("run 1"));
    drop(batch);

    // Another node's worker gets it after the ack wait, and its ack removes it from the queue.
    let started = Instant::now();
    let again = loop {
        let mut batch =
            consumer.fetch().max_messages(1).expires(Duration::from_secs(2)).messages().await.expect("fetch");
        if let Some(message) = batch.next().await {
            break message.expect("no error");
        }
        assert!(started.elapsed() < READY_WITHIN, "the unacknowledged work never came back");
    };
    assert_eq!(again.payload, bytes("run 1"));
    assert!(again.info().expect("info").delivered >= 2, "a redelivery");
    again.double_ack().await.expect("ack");
    let mut info = work.clone();
    assert_eq!(info.info().await.expect("info").state.messages, 0, "acknowledged work leaves a work queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_buckets_and_queues_keep_serving_when_one_of_three_servers_dies() {
    let mut cluster = NatsCluster::start(3).await.expect("three nats servers");
    // The client knows every server, as a Plugboard node given the cluster's URLs will.
    let client = async_nats::ConnectOptions::new().connect(cluster.addresses()).await.expect("connect");
    let js = jetstream::new(client);
    let store = eventually("create an R3 bucket", || create_bucket(&js, "grants", 3)).await;
    let config = stream::Config {
        name: "RUNS".into(),
        subjects: vec!["runs.>".into()],
        retention: stream::RetentionPolicy::WorkQueue,
        num_replicas: 3,
        ..Default::default()
    };
    let runs = eventually("create an R3 work queue", || js.create_stream(config.clone())).await;
    for n in 0..20 {
        js.publish("runs.orders", bytes(&format!("run {n}"))).await.expect("publish").await.expect("stored");
    }
    store.put("json-mapper", bytes("before")).await.expect("put");

    cluster.nodes[1].kill();

    // Writes and reads go on through the two servers left, once leaders are re-elected.
    eventually("a write after the kill", || store.put("json-mapper", bytes("after"))).await;
    let value = eventually("a read after the kill", || store.get("json-mapper")).await;
    assert_eq!(value, Some(bytes("after")));
    for n in 20..30 {
        eventually("a publish after the kill", || async {
            let sent = js.publish("runs.orders", bytes(&format!("run {n}"))).await.map_err(|e| e.to_string())?;
            sent.await.map_err(|e| e.to_string())
        })
        .await;
    }
    // Every run acknowledged before or after the kill is still there to work on.
    let workers = consumer::pull::Config { durable_name: Some("workers".into()), ..Default::default() };
    let consumer = eventually("a consumer", || runs.create_consumer(workers.clone())).await;
    let mut seen = std::collections::BTreeSet::new();
    let started = Instant::now();
    while seen.len() < 30 {
        assert!(started.elapsed() < READY_WITHIN, "runs lost: only {} of 30 ({})", seen.len(), cluster.log(0));
        let Ok(mut batch) = consumer.fetch().max_messages(10).expires(Duration::from_secs(1)).messages().await else {
            continue;
        };
        while let Some(Ok(message)) = batch.next().await {
            seen.insert(String::from_utf8_lossy(&message.payload).into_owned());
            let _ = message.ack().await;
        }
    }
    assert_eq!(seen.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_checked_by_subject_sequence_never_both_win() {
    let server = NatsCluster::single().await.expect("a nats server");
    let client = async_nats::connect(&server.nodes[0].url).await.expect("connect");
    let js = jetstream::new(client);
    let stream = js
        .get_or_create_stream(stream::Config {
            name: "CHECKED".into(),
            subjects: vec!["checked.>".into()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .expect("stream");
    // Unchecked traffic on another subject of the same stream, as executions are beside admin changes.
    let noise = {
        let js = js.clone();
        tokio::spawn(async move {
            for i in 0..3000u32 {
                js.publish("checked.work", bytes(&i.to_string())).await.expect("publish").await.expect("ack");
            }
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (js, stream) = (js.clone(), stream.clone());
            tokio::spawn(async move {
                let mut won = 0;
                for _ in 0..150 {
                    let last = match stream.get_last_raw_message_by_subject("checked.admin").await {
                        Ok(message) => message.sequence,
                        Err(_) => 0,
                    };
                    let publish = jetstream::message::PublishMessage::build()
                        .payload(bytes(&last.to_string()))
                        .expected_last_subject_sequence(last);
                    match js.send_publish("checked.admin", publish).await.expect("send").await {
                        Ok(_) => won += 1,
                        Err(err) => assert_eq!(err.kind(), jetstream::context::PublishErrorKind::WrongLastSequence),
                    }
                }
                won
            })
        })
        .collect();
    let mut won = 0;
    for writer in writers {
        won += writer.await.expect("writer");
    }
    noise.await.expect("noise");
    // Every accepted message names the one accepted before it on its subject.
    let mut previous = 0u64;
    let mut accepted = 0;
    let info = js.get_stream("CHECKED").await.expect("stream").cached_info().state.last_sequence;
    for seq in 1..=info {
        let message = stream.get_raw_message(seq).await.expect("message");
        if message.subject.as_str() != "checked.admin" {
            continue;
        }
        let expected: u64 = std::str::from_utf8(&message.payload).expect("utf8").parse().expect("number");
        assert_eq!(expected, previous, "message {seq} was accepted against {expected}, the last was {previous}");
        previous = seq;
        accepted += 1;
    }
    assert_eq!(accepted, won);
    println!("{won} of 600 checked writes won, {} lost their race", 600 - won);
}
