//! A transformer that misbehaves on purpose, chosen by config `mode`:
//! `echo` (identity), `loop`, `grow`, `recurse`, `output` (a 100 MiB record), `panic`,
//! `log-spam`, `ungranted-config`, `stdout`, `kv-count` (counts calls in bucket `counters`),
//! `kv-other-bucket`, `sleep` (an hour, in a host call).

use plugboard_plugin_sdk::{Batch, PluginError, Record, Transformer, config, kv, log};
use std::hint::black_box;

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
            other => Err(PluginError::InvalidConfig(format!("unknown mode `{other}`"))),
        }
    }
}

plugboard_plugin_sdk::export_transformer!(Hostile);
