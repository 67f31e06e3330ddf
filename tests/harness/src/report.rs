//! What a run measured, the invariants it must meet ([`Report::check`]), and how it prints.
//!
//! The invariants are the promises the docs make (docs/flows.md, docs/testing.md): nothing acknowledged is lost (records, config,
//! grants, uploads), the filter's drops never reach the sink, the worker keeps delivering while work
//! is owed, memory stays bounded, and SIGTERM stops the server in time. The other figures (rates,
//! restart times, duplicates, 429s, fsyncs per acknowledgement) are for comparing runs and builds.

use crate::child::Termination;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Whether an answer with `status` is worth sending the same request again: 408, 429 and 5xx.
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// Requests refused for good (any other non-2xx answer, or a request the harness could not even
/// build): for the well-formed requests the harness sends, each is a bug of the server or of the
/// harness, so each counts as a violation. The first few are kept for the report.
#[derive(Debug, Default)]
pub struct Refusals {
    count: AtomicU64,
    first: Mutex<Vec<String>>,
}

impl Refusals {
    /// How many to keep.
    const KEPT: usize = 5;

    /// Notes one refusal.
    pub fn note(&self, refusal: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        if first.len() < Self::KEPT {
            first.push(refusal);
        }
    }

    /// How many there were.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The first few.
    pub fn first(&self) -> Vec<String> {
        self.first.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The thresholds [`Report::check`] applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest allowed time without sink progress while work is pending and the server is up.
    pub stall: Duration,
    /// Largest allowed resident set of the server.
    pub max_rss_bytes: u64,
    /// How long SIGTERM may take; the harness waits 5 s longer before it kills.
    pub shutdown_deadline: Duration,
}

/// One writer's counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteFigures {
    /// Writes sent.
    pub attempted: u64,
    /// Writes answered 2xx.
    pub acknowledged: u64,
    /// Writes answered otherwise, or not answered.
    pub unacknowledged: u64,
    /// Checks that every acknowledged write was visible (after each restart and at the end).
    pub verified: u64,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Report {
    /// The binary under test.
    pub binary: PathBuf,
    /// The NATS server of a cluster-mode run (`None`: the embedded store).
    pub cluster: Option<String>,
    /// Concurrent webhook senders.
    pub senders: usize,
    /// Records per delivery.
    pub records_per_delivery: u64,
    /// Kill/restart cycles done.
    pub cycles: u32,
    /// The kill schedule's seed (`--seed` repeats the schedule, not the interleavings).
    pub seed: u64,
    /// Acknowledged records that the filter keeps: each must reach the sink.
    pub acknowledged: u64,
    /// Acknowledged records that the filter drops.
    pub acknowledged_dropped: u64,
    /// Of [`Report::acknowledged`], how many reached the sink.
    pub delivered: u64,
    /// Acknowledged, kept, and never seen at the sink.
    pub lost: u64,
    /// Extra deliveries of records already seen (allowed: delivery is at least once).
    pub duplicates: u64,
    /// Records at the sink the filter should have dropped.
    pub filtered_seen: u64,
    /// Records at the sink the harness never sent.
    pub unknown_seen: u64,
    /// Deliveries answered 202 (or 200 without `duplicate`).
    pub deliveries_accepted: u64,
    /// Deliveries answered 200 `"duplicate": true`: retries of deliveries queued before.
    pub deliveries_duplicate: u64,
    /// 429 answers to senders.
    pub overloaded: u64,
    /// 408 and 5xx answers to senders.
    pub server_errors: u64,
    /// Sender requests with no answer (mostly the kills).
    pub no_answer: u64,
    /// Deliveries refused for good, or abandoned at the end of the load.
    pub given_up: u64,
    /// Requests refused for good (senders, writers, uploads; see [`Refusals`]).
    pub refused: u64,
    /// The first few of them.
    pub refusals: Vec<String>,
    /// Spawn to ready, first start (with `--demo`, which installs and compiles the samples).
    pub first_start: Duration,
    /// Spawn to ready, each restart.
    pub restarts: Vec<Duration>,
    /// The load phase.
    pub load: Duration,
    /// Of the load phase, time between a kill and the restarted server's readiness.
    pub downtime: Duration,
    /// From the first delivery until the last acknowledged record reached the sink.
    pub end_to_end: Option<Duration>,
    /// From the end of the load phase until every acknowledged record had arrived (or the timeout).
    pub drain: Duration,
    /// The longest time without sink progress while work was pending and the server up.
    pub longest_gap: Duration,
    /// When that gap ended (or was last measured), from the start of the load phase.
    pub longest_gap_at: Option<Duration>,
    /// The server's largest resident set seen.
    pub max_rss_bytes: u64,
    /// How SIGTERM went.
    pub termination: Termination,
    /// `plugboard_store_fsyncs_total` before SIGTERM (this server process only), if exported.
    pub fsyncs: Option<f64>,
    /// `plugboard_store_commits_total` before SIGTERM (this server process only), if exported.
    pub commits: Option<f64>,
    /// `PUT /v1/plugins/aggregate/config`.
    pub config: WriteFigures,
    /// `PUT /v1/plugins/aggregate/grants`.
    pub grant: WriteFigures,
    /// Uploads of `harness-mapper`, or why they were skipped.
    pub uploads: Result<WriteFigures, String>,
    /// Acknowledged writes that were not visible after a restart or at the end.
    pub write_violations: Vec<String>,
    /// The thresholds.
    pub limits: Limits,
    /// The end of the server's log, for failure messages.
    pub server_log_tail: String,
    /// The kept work directory (data, log, keys), if any.
    pub work_dir: Option<PathBuf>,
}

/// The `q`-quantile (nearest rank) of `values`.
pub fn quantile(values: &[Duration], q: f64) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1).min(sorted.len().saturating_sub(1))).copied()
}

/// The sum of every sample of metric `name` in Prometheus text, or `None` when it is absent.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let Some(value) = value {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

impl Report {
    /// Restart-to-ready, median.
    pub fn restart_p50(&self) -> Option<Duration> {
        quantile(&self.restarts, 0.5)
    }

    /// Restart-to-ready, 99th percentile.
    pub fn restart_p99(&self) -> Option<Duration> {
        quantile(&self.restarts, 0.99)
    }

    /// Acknowledged deliveries per second of the load phase while the server was up.
    pub fn deliveries_per_sec(&self) -> f64 {
        let up = self.load.saturating_sub(self.downtime).as_secs_f64();
        if up > 0.0 { (self.deliveries_accepted + self.deliveries_duplicate) as f64 / up } else { 0.0 }
    }

    /// Records delivered to the sink per second, from the first delivery until the last
    /// acknowledged record arrived (downtime included).
    pub fn end_to_end_per_sec(&self) -> Option<f64> {
        self.end_to_end.filter(|d| !d.is_zero()).map(|d| self.delivered as f64 / d.as_secs_f64())
    }

    /// fsyncs per acknowledgement that waited for durability, when the server exports both.
    pub fn fsyncs_per_ack(&self) -> Option<f64> {
        match (self.fsyncs, self.commits) {
            (Some(fsyncs), Some(commits)) if commits > 0.0 => Some(fsyncs / commits),
            _ => None,
        }
    }

    /// Every violated invariant, or `Ok`.
    ///
    /// # Errors
    /// The violations, one sentence each.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut violations = Vec::new();
        if self.acknowledged == 0 {
            violations.push("no record was acknowledged: the load never ran".to_string());
        }
        if self.lost > 0 {
            violations.push(format!(
                "{} acknowledged records never reached the sink (waited {:.1?} after the load)",
                self.lost, self.drain
            ));
        }
        if self.filtered_seen > 0 {
            violations.push(format!("{} records the filter drops reached the sink", self.filtered_seen));
        }
        if self.unknown_seen > 0 {
            violations.push(format!("{} records at the sink were never sent", self.unknown_seen));
        }
        if self.longest_gap > self.limits.stall {
            violations.push(format!(
                "the sink saw no progress for {:.1?} while work was pending (limit {:?})",
                self.longest_gap, self.limits.stall
            ));
        }
        if self.max_rss_bytes > self.limits.max_rss_bytes {
            violations.push(format!(
                "the server's resident set reached {} MiB (limit {} MiB)",
                self.max_rss_bytes >> 20,
                self.limits.max_rss_bytes >> 20
            ));
        }
        match &self.termination.status {
            None => violations.push(format!(
                "the server did not exit within {:.1?} of SIGTERM (deadline {:?} + 5 s) and was killed",
                self.termination.elapsed, self.limits.shutdown_deadline
            )),
            Some(status) if !self.termination.success => {
                violations.push(format!("after SIGTERM the server exited with {status}"));
            }
            Some(_) => {}
        }
        violations.extend(self.write_violations.iter().cloned());
        if self.refused > 0 {
            violations.push(format!(
                "{} requests were refused for good (first {}: {})",
                self.refused,
                self.refusals.len(),
                self.refusals.join("; ")
            ));
        }
        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }
}

fn secs(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "n/a".into(), |d| format!("{:.3} s", d.as_secs_f64()))
}

fn writes(f: &mut fmt::Formatter<'_>, what: &str, figures: &WriteFigures) -> fmt::Result {
    writeln!(
        f,
        "  {what:<30} {} acknowledged of {} sent ({} not), all visible in {} checks unless listed below",
        figures.acknowledged, figures.attempted, figures.unacknowledged, figures.verified
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plugboard harness: {}", self.binary.display())?;
        match &self.cluster {
            Some(url) => writeln!(f, "  store: cluster node over NATS JetStream at {url}")?,
            None => writeln!(f, "  store: embedded")?,
        }
        writeln!(
            f,
            "  {} senders x {} records per delivery, {} kill/restart cycles (seed {}), load {:.1} s ({:.1} s down)",
            self.senders,
            self.records_per_delivery,
            self.cycles,
            self.seed,
            self.load.as_secs_f64(),
            self.downtime.as_secs_f64()
        )?;
        writeln!(f, "records")?;
        writeln!(
            f,
            "  acknowledged (to reach sink)   {} (+{} the filter drops)",
            self.acknowledged, self.acknowledged_dropped
        )?;
        writeln!(f, "  delivered                      {}", self.delivered)?;
        writeln!(f, "  lost                           {}", self.lost)?;
        writeln!(f, "  duplicates                     {}", self.duplicates)?;
        writeln!(f, "  filtered-out seen at sink      {}", self.filtered_seen)?;
        writeln!(f, "  unknown seen at sink           {}", self.unknown_seen)?;
        writeln!(f, "deliveries")?;
        writeln!(
            f,
            "  answered                       {} accepted, {} duplicate, {} x 429, {} x 408/5xx, {} no answer, {} given up",
            self.deliveries_accepted,
            self.deliveries_duplicate,
            self.overloaded,
            self.server_errors,
            self.no_answer,
            self.given_up
        )?;
        writeln!(
            f,
            "  accepted deliveries/s          {:.1} (load phase, downtime excluded)",
            self.deliveries_per_sec()
        )?;
        writeln!(
            f,
            "  end-to-end records/s           {} (first send to last acknowledged record at the sink, downtime included)",
            self.end_to_end_per_sec().map_or_else(|| "n/a".into(), |r| format!("{r:.1}"))
        )?;
        writeln!(f, "  drain after load               {:.3} s", self.drain.as_secs_f64())?;
        writeln!(
            f,
            "  longest sink gap (work owed)   {:.3} s{}",
            self.longest_gap.as_secs_f64(),
            self.longest_gap_at
                .map_or_else(String::new, |at| format!(" (ended {:.1} s after the load started)", at.as_secs_f64()))
        )?;
        writeln!(f, "server")?;
        writeln!(f, "  first start to ready (--demo)  {}", secs(Some(self.first_start)))?;
        writeln!(
            f,
            "  restart to ready               p50 {}, p99 {}, max {}",
            secs(self.restart_p50()),
            secs(self.restart_p99()),
            secs(self.restarts.iter().max().copied())
        )?;
        writeln!(f, "  max RSS                        {:.1} MiB", self.max_rss_bytes as f64 / f64::from(1 << 20))?;
        writeln!(
            f,
            "  SIGTERM to exit                {:.3} s ({})",
            self.termination.elapsed.as_secs_f64(),
            self.termination.status.as_deref().unwrap_or("did not exit: killed")
        )?;
        match (self.fsyncs_per_ack(), self.fsyncs, self.commits) {
            (Some(ratio), Some(fsyncs), Some(commits)) => writeln!(
                f,
                "  fsyncs per ack                 {ratio:.3} ({fsyncs} fsyncs / {commits} commits, last process only)"
            )?,
            _ => writeln!(
                f,
                "  fsyncs per ack                 n/a (plugboard_store_fsyncs_total/_commits_total not exported)"
            )?,
        }
        writeln!(f, "writes")?;
        writes(f, "aggregate config", &self.config)?;
        writes(f, "aggregate grants", &self.grant)?;
        match &self.uploads {
            Ok(figures) => writes(f, "harness-mapper uploads", figures)?,
            Err(reason) => writeln!(f, "  harness-mapper uploads         skipped: {reason}")?,
        }
        if let Some(dir) = &self.work_dir {
            writeln!(f, "work directory (kept): {}", dir.display())?;
        }
        match self.check() {
            Ok(()) => writeln!(f, "all invariants hold"),
            Err(violations) => {
                writeln!(f, "VIOLATIONS ({})", violations.len())?;
                for violation in &violations {
                    writeln!(f, "  - {violation}")?;
                }
                match self.server_log_tail.trim() {
                    "" => writeln!(f, "server log (RUST_LOG=warn): empty"),
                    tail => writeln!(f, "server log (RUST_LOG=warn, end):\n{tail}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_over_labels_and_absent_ones_are_none() {
        let text = "# HELP plugboard_store_fsyncs_total fsyncs\n# TYPE plugboard_store_fsyncs_total counter\n\
                    plugboard_store_fsyncs_total 12\nplugboard_store_commits_total{tree=\"a\"} 30\n\
                    plugboard_store_commits_total{tree=\"b\"} 6\nplugboard_store_fsyncs_total_other 99\n";
        assert_eq!(metric(text, "plugboard_store_fsyncs_total"), Some(12.0));
        assert_eq!(metric(text, "plugboard_store_commits_total"), Some(36.0));
        assert_eq!(metric(text, "plugboard_invocations_total"), None);
    }

    fn clean() -> Report {
        Report {
            binary: PathBuf::from("plugboard"),
            cluster: None,
            senders: 8,
            records_per_delivery: 5,
            cycles: 3,
            seed: 1,
            acknowledged: 100,
            acknowledged_dropped: 30,
            delivered: 100,
            lost: 0,
            duplicates: 4,
            filtered_seen: 0,
            unknown_seen: 0,
            deliveries_accepted: 26,
            deliveries_duplicate: 1,
            overloaded: 2,
            server_errors: 0,
            no_answer: 3,
            given_up: 0,
            refused: 0,
            refusals: Vec::new(),
            first_start: Duration::from_secs(2),
            restarts: vec![Duration::from_millis(80); 3],
            load: Duration::from_secs(10),
            downtime: Duration::from_secs(1),
            end_to_end: Some(Duration::from_secs(10)),
            drain: Duration::ZERO,
            longest_gap: Duration::from_millis(300),
            longest_gap_at: None,
            max_rss_bytes: 80 << 20,
            termination: Termination {
                elapsed: Duration::from_millis(20),
                status: Some("exit status: 0".into()),
                success: true,
            },
            fsyncs: Some(5.0),
            commits: Some(10.0),
            config: WriteFigures::default(),
            grant: WriteFigures::default(),
            uploads: Err("no component".into()),
            write_violations: Vec::new(),
            limits: Limits {
                stall: Duration::from_secs(10),
                max_rss_bytes: 1 << 30,
                shutdown_deadline: Duration::from_secs(30),
            },
            server_log_tail: String::new(),
            work_dir: None,
        }
    }

    #[test]
    fn check_lists_every_broken_promise_and_nothing_else() {
        let report = clean();
        assert_eq!(report.check(), Ok(()));
        assert_eq!(report.fsyncs_per_ack(), Some(0.5));
        assert!((report.deliveries_per_sec() - 3.0).abs() < 1e-9, "27 deliveries in 9 s up");
        assert!(report.to_string().contains("all invariants hold"));

        let broken = Report {
            lost: 3,
            filtered_seen: 1,
            longest_gap: Duration::from_secs(11),
            max_rss_bytes: 2 << 30,
            termination: Termination { elapsed: Duration::from_secs(35), status: None, success: false },
            write_violations: vec![
                "after restart 2: aggregate config shows write 3, but write 5 was acknowledged".into(),
            ],
            refused: 7,
            refusals: vec!["webhook delivery: 401 {}".into()],
            ..clean()
        };
        let violations = broken.check().unwrap_err();
        assert_eq!(violations.len(), 7, "{violations:#?}");
        assert!(broken.to_string().contains("VIOLATIONS (7)"));
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&values, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(quantile(&values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&values[..3], 0.99), Some(Duration::from_millis(3)));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
