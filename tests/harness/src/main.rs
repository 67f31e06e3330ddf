//! `plugboard-harness`: runs the load-and-fault scenario against a `plugboard` binary and prints the
//! report; exits 1 when an invariant is violated (the report lists which), so scripts and soak jobs
//! can use it as is.
//!
//! Short run: `plugboard-harness --cycles 3 --senders 8`. Soak: `plugboard-harness --cycles 200
//! --cycle-ms 1000..4000 --senders 8 --duration-secs 600`.

use clap::Parser;
use plugboard_harness::{Options, parse_range};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Load and fault harness: runs `plugboard serve` as a child process under webhook, config and
/// upload load, SIGKILLs and restarts it, and checks that nothing it acknowledged was lost.
#[derive(Debug, Parser)]
#[command(name = "plugboard-harness", version)]
struct Cli {
    /// The plugboard binary (default: the newest of target/release/plugboard and
    /// target/debug/plugboard in this workspace).
    #[arg(long = "bin", env = "PLUGBOARD_BIN", value_name = "PATH")]
    binary: Option<PathBuf>,
    /// Concurrent webhook senders.
    #[arg(long, default_value_t = 8)]
    senders: usize,
    /// Records per webhook delivery.
    #[arg(long, default_value_t = 5)]
    records_per_delivery: u64,
    /// Pause between one sender's deliveries, ms (0: send as fast as answered).
    #[arg(long, default_value_t = 0)]
    delivery_interval_ms: u64,
    /// SIGKILL/restart cycles.
    #[arg(long, default_value_t = 3)]
    cycles: u32,
    /// Each kill comes at a random moment this many ms after the server became ready: MIN..MAX.
    #[arg(long, default_value = "300..2000", value_parser = parse_range)]
    cycle_ms: RangeInclusive<u64>,
    /// Minimum length of the load phase, s (the whole load phase with --cycles 0; default 10 then).
    #[arg(long)]
    duration_secs: Option<u64>,
    /// The local sink answers each batch after this many ms (a slow outside system).
    #[arg(long, default_value_t = 0)]
    sink_delay_ms: u64,
    /// After the load, how long every acknowledged record may take to reach the sink, s.
    #[arg(long, default_value_t = 60)]
    drain_timeout_secs: u64,
    /// How long the server may take to exit after SIGTERM, s (5 s of slack are added).
    #[arg(long, default_value_t = 30)]
    shutdown_deadline_secs: u64,
    /// Longest allowed time without sink progress while work is pending, s.
    #[arg(long, default_value_t = 10)]
    stall_secs: u64,
    /// Largest allowed server resident set, MiB.
    #[arg(long, default_value_t = 1024)]
    max_rss_mib: u64,
    /// Pause between aggregate config writes (and between grant writes), ms.
    #[arg(long, default_value_t = 100)]
    write_every_ms: u64,
    /// Pause between plugin uploads, ms.
    #[arg(long, default_value_t = 2000)]
    upload_every_ms: u64,
    /// The json-mapper component to re-sign and upload (default: found in the sample build output).
    #[arg(long, env = "PLUGBOARD_HARNESS_COMPONENT", value_name = "WASM")]
    component: Option<PathBuf>,
    /// Seed of the kill schedule.
    #[arg(long)]
    seed: Option<u64>,
    /// Keep the data directory, server log and keys here (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// No progress line per cycle.
    #[arg(long)]
    quiet: bool,
    /// Run the server as a cluster node over the NATS JetStream server at this URL
    /// (`plugboard serve --cluster URL`); the server must have JetStream on.
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// Deliver as GitHub does (a `scheme: github` flow, `X-Hub-Signature-256` over the body).
    #[arg(long)]
    github: bool,
}

impl Cli {
    fn options(self) -> Options {
        Options {
            binary: self.binary,
            senders: self.senders,
            records_per_delivery: self.records_per_delivery,
            delivery_interval: Duration::from_millis(self.delivery_interval_ms),
            cycles: self.cycles,
            cycle_ms: self.cycle_ms,
            duration: self.duration_secs.map(Duration::from_secs),
            sink_delay: Duration::from_millis(self.sink_delay_ms),
            drain_timeout: Duration::from_secs(self.drain_timeout_secs),
            shutdown_deadline: Duration::from_secs(self.shutdown_deadline_secs),
            stall: Duration::from_secs(self.stall_secs),
            max_rss_mib: self.max_rss_mib,
            write_every: Duration::from_millis(self.write_every_ms),
            upload_every: Duration::from_millis(self.upload_every_ms),
            component: self.component,
            seed: self.seed,
            work_dir: self.work_dir,
            progress: !self.quiet,
            cluster: self.cluster,
            github: self.github,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let report = plugboard_harness::run(Cli::parse().options()).await?;
    print!("{report}");
    Ok(if report.check().is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_default_to_the_library_defaults() {
        let parsed = Cli::parse_from(["plugboard-harness"]).options();
        // The environment may name a binary or a component; the progress line is the binary's own.
        let parsed = Options { binary: None, component: None, progress: false, ..parsed };
        assert_eq!(parsed, Options::default());
    }
}
