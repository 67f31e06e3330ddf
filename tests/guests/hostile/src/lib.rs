//! A transformer that misbehaves on purpose, chosen by config `mode`:
//! `echo` (identity), `loop`, `grow`, `recurse`, `output` (a 100 MiB record), `panic`,
//! `log-spam`, `ungranted-config`, `stdout`, `kv-count` (counts calls in bucket `counters`),
//! `kv-other-bucket`, `sleep` (an hour, in a host call), `kv-fill` (sets keys in `counters`, each
//! to the first input record's value, until refused: outputs `[written, error]`), `kv-drain`
//! (lists `counters` page by page, deleting each page before asking for the next: outputs
//! `[keys seen, pages, error of a made-up cursor]`), `kv-checks` (over-long keys in every
//! operation, bad bucket names: outputs `[[operation, error], …]`), `handles` (creates HTTP
//! `fields` without end), and the state-guarantee modes of [`kv_state`]: `kv-script` (runs the
//! key-value operations its records name, a trap, a plugin error or a sleep among them) and
//! `kv-dedupe` (drops records whose id it has seen).

mod kv_state;

use plugboard_plugin_sdk::bindings::wasi::http::types::Fields;
use plugboard_plugin_sdk::bindings::wasi::keyvalue::store;
use plugboard_plugin_sdk::{Batch, PluginError, Record, Transformer, config, kv, log};
use std::hint::black_box;

/// Sets keys until the host refuses one (at most 100,000).
fn kv_fill(input: &Batch) -> Result<Batch, PluginError> {
    let bucket = kv::open("counters")?;
    let value = input.first().map(|r| r.value.clone()).unwrap_or_default();
    let existing = bucket.keys()?.len();
    for written in 0..100_000usize {
        if let Err(err) = bucket.set(&format!("fill-{:06}", existing + written), &value) {
            return Ok(vec![Record::from_json(&(written, Some(format!("{err:?}"))))?]);
        }
    }
    Ok(vec![Record::from_json(&(100_000, None::<String>))?])
}

/// Lists the bucket page by page, deleting each page's keys before asking for the next.
fn kv_drain() -> Result<Batch, PluginError> {
    let bucket = store::open("counters").map_err(|e| PluginError::Internal(format!("{e:?}")))?;
    let (mut seen, mut pages, mut cursor) = (0usize, 0usize, None);
    loop {
        let page = bucket.list_keys(cursor).map_err(|e| PluginError::Internal(format!("{e:?}")))?;
        pages += 1;
        seen += page.keys.len();
        for key in &page.keys {
            bucket.delete(key).map_err(|e| PluginError::Internal(format!("{e:?}")))?;
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let made_up = bucket.list_keys(Some(123_456)).err().map(|e| format!("{e:?}"));
    Ok(vec![Record::from_json(&(seen, pages, made_up))?])
}

/// Every operation with an over-long key, and bad bucket names: what each answered.
fn kv_checks() -> Result<Batch, PluginError> {
    let bucket = store::open("counters").map_err(|e| PluginError::Internal(format!("{e:?}")))?;
    let long = "k".repeat(2000);
    let answer = |result: Result<String, store::Error>| match result {
        Ok(ok) => format!("ok {ok}"),
        Err(err) => format!("{err:?}"),
    };
    let results = vec![
        ("get", answer(bucket.get(&long).map(|v| format!("{v:?}")))),
        ("set", answer(bucket.set(&long, b"v").map(|()| String::new()))),
        ("exists", answer(bucket.exists(&long).map(|v| v.to_string()))),
        ("delete", answer(bucket.delete(&long).map(|()| String::new()))),
        ("open-empty", answer(store::open("").map(|_| String::new()))),
        ("open-nul", answer(store::open("counters\0x").map(|_| String::new()))),
    ];
    Ok(vec![Record::from_json(&results)?])
}

fn recurse(depth: u64, trail: &mut [u64; 16]) -> u64 {
    trail[(depth % 16) as usize] = depth;
    if black_box(depth) == u64::MAX {
        return 0;
    }
    1 + recurse(depth + 1, black_box(trail))
}

struct Hostile;

impl Transformer for Hostile {
    fn transform(input: Batch) -> Result<Batch, PluginError> {
        let mode = config::require("mode")?;
        match mode.as_str() {
            "echo" => Ok(input),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recurse" => {
                let mut trail = [0u64; 16];
                Ok(vec![Record::from_json(&recurse(0, &mut trail))?])
            }
            "output" => Ok(vec![Record { key: None, value: vec![b'x'; 100 << 20], headers: Vec::new() }]),
            "panic" => panic!("the hostile guest panics on purpose"),
            "log-spam" => {
                for i in 0..10_000 {
                    log::info(&format!("line {i}"));
                }
                Ok(input)
            }
            "host-spin" => {
                // Cheap in fuel, expensive in the host: each call copies 4 MiB out of the guest.
                let line = "x".repeat(4 << 20);
                loop {
                    log::info(&line);
                }
            }
            "ungranted-config" => config::get("not-granted").map(|_| input),
            "stdout" => {
                println!("hello from stdout");
                eprintln!("hello from stderr");
                Ok(input)
            }
            "kv-count" => {
                let bucket = kv::open("counters")?;
                let count = bucket.get("n")?.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap_or_default())) + 1;
                bucket.set("n", &count.to_le_bytes())?;
                Ok(vec![Record::from_json(&count)?])
            }
            "sleep" => {
                // Blocks inside a host call (a clock poll), where no fuel is burned.
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(input)
            }
            "kv-other-bucket" => kv::open("not-granted").map(|_| input),
            "kv-fill" => kv_fill(&input),
            "kv-drain" => kv_drain(),
            "kv-checks" => kv_checks(),
            "kv-script" => kv_state::script(&input),
            "kv-dedupe" => kv_state::dedupe(input),
            "handles" => {
                let mut hoard = Vec::new();
                loop {
                    hoard.push(Fields::new());
                    black_box(&hoard);
                }
            }
            other => Err(PluginError::InvalidConfig(format!("unknown mode `{other}`"))),
        }
    }
}

plugboard_plugin_sdk::export_transformer!(Hostile);
