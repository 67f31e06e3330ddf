//! Modes that test the state guarantee: an invocation's key-value writes commit only if it
//! succeeds, and it reads its own writes before then.
//!
//! `kv-script` runs the operations its input records name, in bucket `counters`, and outputs one
//! record per operation with its answer: `["set", key, value]`, `["delete", key]`, `["get", key]`
//! (the value as a string, or null), `["exists", key]`, `["list"]` (every key, page by page),
//! `["wait", key]` (until another invocation commits `key`), `["panic"]` (a trap), `["fail"]` (a
//! plugin error), `["sleep"]` (an hour, in a host call).
//!
//! `kv-dedupe` is the transformer of the bug report: for each record `{"id": …}` it does some
//! work (so a small fuel budget runs out part-way), then drops the record if bucket `seen` holds
//! its id, and otherwise stores the id and keeps the record.

use plugboard_plugin_sdk::bindings::wasi::keyvalue::store;
use plugboard_plugin_sdk::{Batch, PluginError, Record};
use serde_json::{Value, json};
use std::hint::black_box;

fn internal(err: store::Error) -> PluginError {
    PluginError::Internal(format!("{err:?}"))
}

/// Runs the operations of `input` in bucket `counters`.
pub fn script(input: &Batch) -> Result<Batch, PluginError> {
    let bucket = store::open("counters").map_err(internal)?;
    let mut answers = Vec::new();
    for record in input {
        let op: Vec<Value> = record.json()?;
        let arg = |i: usize| op.get(i).and_then(Value::as_str).unwrap_or_default().to_string();
        let answer = match arg(0).as_str() {
            "set" => bucket.set(&arg(1), arg(2).as_bytes()).map(|()| json!("ok")),
            "delete" => bucket.delete(&arg(1)).map(|()| json!("ok")),
            "get" => bucket.get(&arg(1)).map(|v| json!(v.map(|v| String::from_utf8_lossy(&v).into_owned()))),
            "exists" => bucket.exists(&arg(1)).map(|e| json!(e)),
            "list" => list(&bucket).map(|keys| json!(keys)),
            "wait" => wait(&bucket, &arg(1)).map(|()| json!("ok")),
            "panic" => panic!("the hostile guest traps after its writes"),
            "fail" => return Err(PluginError::Internal("the hostile guest fails after its writes".into())),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(json!("slept"))
            }
            other => return Err(PluginError::InvalidConfig(format!("unknown operation `{other}`"))),
        };
        answers.push(Record::from_json(&answer.unwrap_or_else(|err| json!(format!("{err:?}"))))?);
    }
    Ok(answers)
}

fn wait(bucket: &store::Bucket, key: &str) -> Result<(), store::Error> {
    while !bucket.exists(key)? {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(())
}

fn list(bucket: &store::Bucket) -> Result<Vec<String>, store::Error> {
    let (mut keys, mut cursor) = (Vec::new(), None);
    loop {
        let page = bucket.list_keys(cursor)?;
        keys.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(keys),
        }
    }
}

/// Keeps the records whose id bucket `seen` does not hold yet, and stores their ids.
pub fn dedupe(input: Batch) -> Result<Batch, PluginError> {
    let seen = store::open("seen").map_err(internal)?;
    let mut kept = Vec::new();
    for record in input {
        let id = record.json::<Value>()?.get("id").map(Value::to_string).unwrap_or_default();
        // The work a real transformer would do per record: some fuel, so a budget can run out.
        let mut work: u64 = 0;
        for i in 0..20_000u64 {
            work = black_box(work.wrapping_add(i));
        }
        black_box(work);
        if seen.exists(&id).map_err(internal)? {
            continue;
        }
        seen.set(&id, b"1").map_err(internal)?;
        kept.push(record);
    }
    Ok(kept)
}
