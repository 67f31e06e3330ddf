//! A load-and-fault harness for Plugboard: it runs the real `plugboard` binary as a child process,
//! loads it the way production does (concurrent signed webhook deliveries into a flow that ends at
//! an outside HTTP system, config and grant changes, plugin uploads), SIGKILLs and restarts it at
//! random moments, and checks what the docs promise (docs/flows.md, docs/testing.md): nothing acknowledged is lost, the flow's
//! filter holds, the worker never stalls while work is owed, memory stays bounded and SIGTERM stops
//! the server in time. [`run`] answers a [`Report`]; [`Report::check`] lists every violation.
//!
//! Unit and in-process tests cannot see these failures: they need a real process that dies without
//! flushing, a real restart on the same data directory, and enough concurrency for a storage layer
//! to misbehave. The harness therefore uses no Plugboard crate, only the binary's command line and
//! HTTP API (so a refactoring of the server cannot bend what it checks), and it works against any
//! build: the CI test (`tests/all/load.rs`) runs a short version, `plugboard-harness` a long one.
//!
//! One concern per module: [`child`] the server process, [`sink`] the outside HTTP system,
//! [`ledger`] what was acknowledged versus delivered, [`senders`] the webhook senders,
//! [`writers`] config and grant writes, [`uploads`] plugin uploads, [`report`] the figures.

pub mod child;
pub mod ledger;
pub mod report;
pub mod senders;
pub mod sink;
pub mod uploads;
pub mod writers;

pub use report::Report;

use anyhow::{Context, bail};
use child::{Live, ServerProcess};
use ledger::Ledger;
use report::{Limits, WriteFigures};
use senders::{SenderContext, SenderStats};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use uploads::Uploader;
use writers::{Admin, Kind, Writer};

/// The flow's webhook secret.
const SECRET: &str = "plugboard-harness-webhook-secret";

/// Longest wait for any one answer: past it the server counts as not answering.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// How much longer than the shutdown deadline the harness waits after SIGTERM before it kills.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(5);

/// What to run; [`Options::default`] is the short default run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The `plugboard` binary; else `PLUGBOARD_BIN`, else the newest of the workspace's builds.
    pub binary: Option<PathBuf>,
    /// Concurrent webhook senders.
    pub senders: usize,
    /// Records per delivery.
    pub records_per_delivery: u64,
    /// Pause between one sender's deliveries (zero: as fast as they are answered).
    pub delivery_interval: Duration,
    /// Kill/restart cycles.
    pub cycles: u32,
    /// Each kill comes this many milliseconds (uniformly random) after the server became ready.
    pub cycle_ms: RangeInclusive<u64>,
    /// The load phase lasts at least this long (the whole load phase when `cycles` is 0; 10 s if
    /// unset then).
    pub duration: Option<Duration>,
    /// The sink answers each batch after this long (a slow outside system).
    pub sink_delay: Duration,
    /// How long to wait after the load for every acknowledged record to reach the sink.
    pub drain_timeout: Duration,
    /// How long SIGTERM may take.
    pub shutdown_deadline: Duration,
    /// Longest allowed gap in sink progress while work is pending.
    pub stall: Duration,
    /// Largest allowed server resident set, MiB.
    pub max_rss_mib: u64,
    /// Pause between config writes, and between grant writes.
    pub write_every: Duration,
    /// Pause between uploads.
    pub upload_every: Duration,
    /// The json-mapper component to re-sign and upload (else searched for; see [`uploads`]).
    pub component: Option<PathBuf>,
    /// Seed for the kill schedule (else from the clock).
    pub seed: Option<u64>,
    /// Keep data, log and keys here instead of a temporary directory.
    pub work_dir: Option<PathBuf>,
    /// A line on stderr per cycle.
    pub progress: bool,
    /// Run the server as a cluster node over the NATS server at this URL (`serve --cluster`).
    pub cluster: Option<String>,
    /// Deliver as GitHub does (`scheme: github`: `X-Hub-Signature-256` over the body, an
    /// `X-GitHub-Delivery` id and event), not with Plugboard's own signature.
    pub github: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            binary: None,
            senders: 8,
            records_per_delivery: 5,
            delivery_interval: Duration::ZERO,
            cycles: 3,
            cycle_ms: 300..=2000,
            duration: None,
            sink_delay: Duration::ZERO,
            drain_timeout: Duration::from_secs(60),
            shutdown_deadline: Duration::from_secs(30),
            stall: Duration::from_secs(10),
            max_rss_mib: 1024,
            write_every: Duration::from_millis(100),
            upload_every: Duration::from_secs(2),
            component: None,
            seed: None,
            work_dir: None,
            progress: false,
            cluster: None,
            github: false,
        }
    }
}

/// `MIN..MAX` (or `MIN..=MAX`, or one number) in milliseconds.
///
/// # Errors
/// When it is not such a range.
pub fn parse_range(text: &str) -> Result<RangeInclusive<u64>, String> {
    let number = |t: &str| t.trim().parse::<u64>().map_err(|err| format!("`{t}` in `{text}`: {err}"));
    let (min, max) = match text.split_once("..") {
        Some((min, max)) => (number(min)?, number(max.trim_start_matches('='))?),
        None => (number(text)?, number(text)?),
    };
    if min > max {
        return Err(format!("`{text}`: the minimum is above the maximum"));
    }
    Ok(min..=max)
}

/// A small xorshift generator for the kill schedule: reproducible from its seed, no dependency.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn between(&mut self, range: &RangeInclusive<u64>) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let span = range.end() - range.start();
        range.start() + if span == u64::MAX { self.0 } else { self.0 % (span + 1) }
    }
}

/// Where the run keeps its files; a temporary directory is removed when this is dropped.
struct WorkDir {
    path: PathBuf,
    /// Held only to remove the directory on drop; `None` for a directory the caller keeps.
    temporary: Option<tempfile::TempDir>,
}

impl WorkDir {
    fn new(kept: Option<&Path>) -> anyhow::Result<WorkDir> {
        match kept {
            Some(path) => {
                if path.join("data").exists() {
                    bail!("{} already holds a run: pass an empty or new directory", path.display());
                }
                std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
                Ok(WorkDir { path: path.to_path_buf(), temporary: None })
            }
            None => {
                let temporary = tempfile::Builder::new().prefix("plugboard-harness-").tempdir()?;
                Ok(WorkDir { path: temporary.path().to_path_buf(), temporary: Some(temporary) })
            }
        }
    }
}

/// The writes whose acknowledged values must survive.
struct Writes {
    config: Arc<Writer>,
    grant: Arc<Writer>,
    uploads: Result<Arc<Uploader>, String>,
}

impl Writes {
    async fn verify(&self, admin: &Admin, base: &str, when: &str) -> Vec<String> {
        let mut violations = writers::verify(admin, base, &[&self.config, &self.grant], when).await;
        if let Ok(uploader) = &self.uploads {
            violations.extend(uploader.verify(admin, base, when).await);
        }
        violations
    }
}

fn writer_figures(writer: &Writer) -> WriteFigures {
    WriteFigures {
        attempted: writer.attempted.load(Ordering::Relaxed),
        acknowledged: writer.acknowledged.load(Ordering::Relaxed),
        unacknowledged: writer.unacknowledged.load(Ordering::Relaxed),
        verified: writer.verified.load(Ordering::Relaxed),
    }
}

fn upload_figures(uploader: &Uploader) -> WriteFigures {
    let acknowledged = uploader.acknowledged.lock().map_or(0, |a| a.len() as u64);
    WriteFigures {
        attempted: uploader.attempted.load(Ordering::Relaxed),
        acknowledged,
        unacknowledged: uploader.unacknowledged.load(Ordering::Relaxed),
        verified: uploader.verified.load(Ordering::Relaxed),
    }
}

/// Starts the stall detector (a ledger tick every 100 ms) and the memory sampler (the server's
/// `VmRSS` every 250 ms, the largest kept in the answered counter).
fn spawn_monitors(ledger: &Arc<Ledger>, live: &Live) -> (JoinSet<()>, Arc<AtomicU64>) {
    let max_rss = Arc::new(AtomicU64::new(0));
    let mut monitors = JoinSet::new();
    let ledger = ledger.clone();
    monitors.spawn(async move {
        loop {
            ledger.tick();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let (live, largest) = (live.clone(), max_rss.clone());
    monitors.spawn(async move {
        loop {
            if let Some(rss) = live.current().and_then(|e| child::rss_bytes(e.pid)) {
                largest.fetch_max(rss, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    (monitors, max_rss)
}

/// A seed from the clock.
fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.as_secs().rotate_left(32) ^ u64::from(now.subsec_nanos())
}

/// Runs the whole scenario: start (with `--demo`), set up the flow, load, kill and restart
/// `options.cycles` times, stop the load, drain, read the metrics, SIGTERM.
///
/// # Errors
/// When the harness itself cannot proceed: no binary, the server does not start or restart, the
/// setup calls fail. Broken promises of a running server are not errors but violations in the
/// [`Report`].
pub async fn run(options: Options) -> anyhow::Result<Report> {
    if options.senders == 0 || options.records_per_delivery == 0 {
        bail!("at least one sender and one record per delivery");
    }
    let senders = u32::try_from(options.senders).context("too many senders")?;
    let binary = child::locate_binary(options.binary.as_deref())?;
    let work = WorkDir::new(options.work_dir.as_deref())?;
    let (data, log) = (work.path.join("data"), work.path.join("server.log"));
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .context("HTTP client")?;
    let ledger = Arc::new(Ledger::new(options.senders));
    let sink = sink::start(ledger.clone(), options.sink_delay).await?;

    let (mut server, first_start) =
        ServerProcess::start(&binary, &data, &log, true, options.cluster.as_deref(), &client)
            .await
            .context("starting the server")?;
    let base = server.endpoint().base.clone();
    let token = std::fs::read_to_string(data.join("admin-token")).context("reading DATA/admin-token")?;
    let admin = Admin { client: client.clone(), token: token.trim().to_string() };
    writers::setup_flow(&admin, &base, &sink.url, SECRET, options.github).await.context("setting up the load flow")?;
    let uploads = match uploads::find_component(options.component.as_deref()) {
        Some(component) => Ok(Arc::new(
            Uploader::prepare(&binary, component, &work.path.join("publisher"), &admin, &base)
                .await
                .context("preparing uploads")?,
        )),
        None => {
            let reason = "no json_mapper.wasm found (build the plugboard binary, or pass --component)".to_string();
            eprintln!("warning: uploads skipped: {reason}");
            Err(reason)
        }
    };
    let writes = Writes {
        config: Arc::new(Writer::new(Kind::Config)),
        grant: Arc::new(Writer::new(Kind::Grant)),
        uploads: uploads.clone(),
    };
    let live = Live::new();
    live.set(Some(server.endpoint().clone()));
    ledger.set_up(true);

    let (mut monitors, max_rss) = spawn_monitors(&ledger, &live);

    let context = Arc::new(SenderContext {
        client: client.clone(),
        live: live.clone(),
        ledger: ledger.clone(),
        stats: SenderStats::default(),
        secret: SECRET.to_string(),
        github: options.github,
        records_per_delivery: options.records_per_delivery,
        interval: options.delivery_interval,
        stop: AtomicBool::new(false),
        stop_grace: Duration::from_secs(30),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let load_start = Instant::now();
    let mut load = JoinSet::new();
    for sender in 0..senders {
        load.spawn(senders::run_sender(context.clone(), sender));
    }
    for writer in [&writes.config, &writes.grant] {
        load.spawn(writer.clone().run(admin.clone(), live.clone(), options.write_every, stop.clone()));
    }
    if let Ok(uploader) = &uploads {
        load.spawn(uploader.clone().run(admin.clone(), live.clone(), options.upload_every, stop.clone()));
    }

    let seed = options.seed.unwrap_or_else(clock_seed);
    let mut rng = Rng::new(seed);
    let (mut restarts, mut downtime, mut write_violations) = (Vec::new(), Duration::ZERO, Vec::new());
    for cycle in 1..=options.cycles {
        let wait = Duration::from_millis(rng.between(&options.cycle_ms));
        tokio::time::sleep(wait).await;
        live.set(None);
        ledger.set_up(false);
        let down = Instant::now();
        server.kill().await?;
        let (next, ready) = ServerProcess::start(&binary, &data, &log, false, options.cluster.as_deref(), &client)
            .await
            .with_context(|| format!("restart {cycle} after SIGKILL"))?;
        downtime += down.elapsed();
        restarts.push(ready);
        server = next;
        live.set(Some(server.endpoint().clone()));
        ledger.set_up(true);
        let when = format!("after restart {cycle}");
        write_violations.extend(writes.verify(&admin, &server.endpoint().base, &when).await);
        if options.progress {
            let figures = ledger.figures();
            eprintln!(
                "cycle {cycle}/{}: killed after {wait:.1?}, ready in {ready:.2?}; {} records acknowledged, {} pending",
                options.cycles, figures.acknowledged, figures.pending
            );
        }
    }
    let minimum = options.duration.or((options.cycles == 0).then_some(Duration::from_secs(10)));
    if let Some(rest) = minimum.and_then(|m| m.checked_sub(load_start.elapsed())) {
        tokio::time::sleep(rest).await;
    }
    let load_time = load_start.elapsed();

    // Stop the load: each sender finishes the delivery in hand, the writers their write.
    context.stop.store(true, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let limit = context.stop_grace + REQUEST_TIMEOUT + Duration::from_secs(5);
    if tokio::time::timeout(limit, async { while load.join_next().await.is_some() {} }).await.is_err() {
        load.abort_all();
    }
    let base = server.endpoint().base.clone();
    write_violations.extend(writes.verify(&admin, &base, "at the end").await);

    let drain_start = Instant::now();
    while ledger.pending() > 0 && drain_start.elapsed() < options.drain_timeout {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain = drain_start.elapsed();

    let metrics = match client.get(format!("{base}/metrics")).send().await {
        Ok(answer) => answer.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    live.set(None);
    ledger.set_up(false);
    let termination = server.terminate(options.shutdown_deadline + SHUTDOWN_SLACK).await?;
    monitors.abort_all();

    let figures = ledger.figures();
    let stats = &context.stats;
    let mut all_refusals = vec![&stats.refusals, &writes.config.refusals, &writes.grant.refusals];
    if let Ok(uploader) = &uploads {
        all_refusals.push(&uploader.refusals);
    }
    Ok(Report {
        binary,
        cluster: options.cluster.clone(),
        senders: options.senders,
        records_per_delivery: options.records_per_delivery,
        cycles: options.cycles,
        seed,
        acknowledged: figures.acknowledged,
        acknowledged_dropped: figures.acknowledged_dropped,
        delivered: figures.acknowledged - figures.pending,
        lost: figures.pending,
        duplicates: figures.duplicates,
        filtered_seen: figures.filtered_seen,
        unknown_seen: figures.unknown_seen,
        deliveries_accepted: stats.accepted.load(Ordering::Relaxed),
        deliveries_duplicate: stats.duplicates.load(Ordering::Relaxed),
        overloaded: stats.overloaded.load(Ordering::Relaxed),
        server_errors: stats.server_errors.load(Ordering::Relaxed),
        no_answer: stats.no_answer.load(Ordering::Relaxed),
        given_up: stats.given_up.load(Ordering::Relaxed),
        refused: all_refusals.iter().map(|r| r.count()).sum(),
        refusals: all_refusals.iter().flat_map(|r| r.first()).collect(),
        first_start,
        restarts,
        load: load_time,
        downtime,
        end_to_end: figures.last_reached.map(|at| at.saturating_duration_since(load_start)),
        drain,
        longest_gap: figures.longest_gap,
        longest_gap_at: figures.longest_gap_ended.map(|at| at.saturating_duration_since(load_start)),
        max_rss_bytes: max_rss.load(Ordering::Relaxed),
        termination,
        fsyncs: report::metric(&metrics, "plugboard_store_fsyncs_total"),
        commits: report::metric(&metrics, "plugboard_store_commits_total"),
        config: writer_figures(&writes.config),
        grant: writer_figures(&writes.grant),
        uploads: uploads.as_deref().map(upload_figures).map_err(Clone::clone),
        write_violations,
        limits: Limits {
            stall: options.stall,
            max_rss_bytes: options.max_rss_mib << 20,
            shutdown_deadline: options.shutdown_deadline,
        },
        server_log_tail: child::log_tail(&log, 40),
        work_dir: work.temporary.is_none().then(|| work.path.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_in_every_spelling() {
        assert_eq!(parse_range("300..2000"), Ok(300..=2000));
        assert_eq!(parse_range("300..=2000"), Ok(300..=2000));
        assert_eq!(parse_range("500"), Ok(500..=500));
        assert!(parse_range("2000..300").is_err());
        assert!(parse_range("a..b").is_err());
    }

    #[test]
    fn the_kill_schedule_stays_in_range_and_follows_the_seed() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        for _ in 0..1000 {
            let x = a.between(&(300..=2000));
            assert!((300..=2000).contains(&x));
            assert_eq!(x, b.between(&(300..=2000)));
        }
        assert_eq!(Rng::new(7).between(&(5..=5)), 5);
    }
}
