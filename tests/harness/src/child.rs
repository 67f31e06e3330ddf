//! The server under test as a child process: where its binary is, how it starts on a data
//! directory, when it is ready, how it is killed or asked to stop, and where everybody finds it.
//!
//! The harness runs the real `plugboard` binary rather than an in-process server so that SIGKILL is
//! a real crash (no destructors, no final flush; the kernel releases the database lock), SIGTERM
//! goes through the binary's own signal handling, and memory is that of the process an operator
//! runs. It uses no Plugboard crate, only what an operator sees: the command line, the
//! `plugboard listening on http://ADDR (data: …)` line, `DATA/admin-token` and HTTP.
//!
//! Only the first start passes `--demo`. The demo setup re-applies the sample plugins' demo config
//! on every start it runs, which would overwrite the config the harness writes and then checks;
//! the samples it installed are stored, so later starts do not need it.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

/// How long a start may take until `/readyz` answers 200 (the first start compiles every sample).
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// The Cargo workspace this crate belongs to.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `plugboard` binary: `explicit`, else `PLUGBOARD_BIN`, else the newer of
/// `<workspace>/target/release/plugboard` and `<workspace>/target/debug/plugboard`.
///
/// # Errors
/// When the named binary does not exist, or none is found.
pub fn locate_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let named = explicit.map(Path::to_path_buf).or_else(|| std::env::var_os("PLUGBOARD_BIN").map(PathBuf::from));
    if let Some(path) = named {
        if !path.is_file() {
            bail!("the plugboard binary {} does not exist", path.display());
        }
        return Ok(path);
    }
    let target = workspace().join("target");
    let candidates = [target.join("release/plugboard"), target.join("debug/plugboard")];
    candidates
        .iter()
        .filter_map(|path| Some((std::fs::metadata(path).ok()?.modified().ok()?, path)))
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, path)| path.clone())
        .with_context(|| {
            format!(
                "no plugboard binary: build it (`cargo build -p plugboard-host-api`), or pass --bin PATH or set \
                 PLUGBOARD_BIN (looked for {} and {})",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// Where the running server is: its base URL and process id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The child's process id.
    pub pid: u32,
}

/// The current [`Endpoint`], `None` while the server is down (from just before a kill until the
/// restarted server is ready): senders and writers wait on it and pick up each new port.
#[derive(Debug, Clone)]
pub struct Live {
    tx: std::sync::Arc<watch::Sender<Option<Endpoint>>>,
}

impl Live {
    /// Down, until [`Live::set`].
    pub fn new() -> Live {
        Live { tx: std::sync::Arc::new(watch::Sender::new(None)) }
    }

    /// Publishes where the server is, or that it is down.
    pub fn set(&self, endpoint: Option<Endpoint>) {
        self.tx.send_replace(endpoint);
    }

    /// Where the server is now, if it is up.
    pub fn current(&self) -> Option<Endpoint> {
        self.tx.borrow().clone()
    }

    /// Waits until the server is up, at most `limit`.
    pub async fn wait_up(&self, limit: Duration) -> Option<Endpoint> {
        let mut rx = self.tx.subscribe();
        let up = tokio::time::timeout(limit, rx.wait_for(Option::is_some)).await.ok()?.ok()?;
        up.clone()
    }
}

impl Default for Live {
    fn default() -> Live {
        Live::new()
    }
}

/// A running `plugboard serve`; killed if dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: tokio::process::Child,
    endpoint: Endpoint,
}

/// How a SIGTERM ended.
#[derive(Debug, Clone)]
pub struct Termination {
    /// Time from SIGTERM until the process exited, or until it was killed.
    pub elapsed: Duration,
    /// Its exit status as text, or `None` when it did not exit in time and was killed.
    pub status: Option<String>,
    /// Whether it exited successfully.
    pub success: bool,
}

impl ServerProcess {
    /// Starts `binary serve --data DATA --listen 127.0.0.1:0` (with `--demo` when `demo`, as a
    /// cluster node over NATS at `cluster` when given), stderr
    /// appended to `log`, and waits until `/readyz` answers 200. Returns the server and the time
    /// from spawning to that first 200.
    ///
    /// # Errors
    /// When it cannot be spawned, exits, or is not ready in time (the log's tail is included).
    pub async fn start(
        binary: &Path,
        data: &Path,
        log: &Path,
        demo: bool,
        cluster: Option<&str>,
        client: &reqwest::Client,
    ) -> anyhow::Result<(ServerProcess, Duration)> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let spawned = Instant::now();
        let mut command = tokio::process::Command::new(binary);
        command.arg("serve");
        if demo {
            command.arg("--demo");
        }
        if let Some(url) = cluster {
            command.args(["--cluster", url]);
        }
        let mut child = command
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            // The log is a file read by people and failure messages: no colour codes.
            .env("NO_COLOR", "1")
            // The admin token must be the one in DATA/admin-token.
            .env_remove("PLUGBOARD_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            let mut lines = BufReader::new(stdout).lines();
            let base = loop {
                match lines.next_line().await? {
                    Some(line) => {
                        if let Some(base) = listening_address(&line) {
                            break base;
                        }
                    }
                    None => bail!("the server closed its output before listening"),
                }
            };
            // Keep reading, so that later output never fills the pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!("the server exited ({status})");
                }
                let answer = client.get(format!("{base}/readyz")).timeout(Duration::from_secs(2)).send().await;
                if answer.is_ok_and(|a| a.status() == reqwest::StatusCode::OK) {
                    return Ok(base);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        let base = match ready {
            Ok(Ok(base)) => base,
            Ok(Err(err)) => bail!("{err:#}; server log:\n{}", log_tail(log, 30)),
            Err(_) => bail!("the server was not ready within {START_TIMEOUT:?}; server log:\n{}", log_tail(log, 30)),
        };
        let elapsed = spawned.elapsed();
        Ok((ServerProcess { child, endpoint: Endpoint { base, pid } }, elapsed))
    }

    /// Where it listens.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// SIGKILL: no shutdown, no flush. Returns once the process is reaped.
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("SIGKILL")
    }

    /// SIGTERM (through `kill -TERM`), then waits at most `limit` for the process to exit; kills it
    /// when it does not.
    ///
    /// # Errors
    /// When `kill` cannot be run.
    pub async fn terminate(mut self, limit: Duration) -> anyhow::Result<Termination> {
        let signalled = Instant::now();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.endpoint.pid.to_string()])
            .status()
            .context("cannot run `kill -TERM`")?;
        if !sent.success() {
            bail!("`kill -TERM {}` failed ({sent})", self.endpoint.pid);
        }
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => {
                let status = status.context("waiting for the server")?;
                Ok(Termination {
                    elapsed: signalled.elapsed(),
                    status: Some(status.to_string()),
                    success: status.success(),
                })
            }
            Err(_) => {
                let elapsed = signalled.elapsed();
                self.child.kill().await.context("SIGKILL after SIGTERM")?;
                Ok(Termination { elapsed, status: None, success: false })
            }
        }
    }
}

/// `http://ADDR` from `plugboard listening on http://ADDR (data: …)`.
pub fn listening_address(line: &str) -> Option<String> {
    let rest = line.strip_prefix("plugboard listening on ")?;
    let base = rest.split_whitespace().next()?;
    base.starts_with("http://").then(|| base.to_string())
}

/// The resident set size of process `pid` (`VmRSS` in `/proc/PID/status`), in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The last `lines` lines of the server log.
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_base_url() {
        assert_eq!(
            listening_address("plugboard listening on http://127.0.0.1:40123 (data: /tmp/x/data)").as_deref(),
            Some("http://127.0.0.1:40123")
        );
        assert_eq!(listening_address("created an admin token: /tmp/x"), None);
    }

    #[test]
    fn our_own_rss_is_readable() {
        assert!(rss_bytes(std::process::id()).is_some_and(|bytes| bytes > 0));
    }
}
