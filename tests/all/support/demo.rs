//! `plugboard serve --demo` as users start it: the real binary as a child process on
//! `127.0.0.1:0`, read from its stdout until it has said where it listens and printed the
//! commands to try (its sample plugins are installed by then). Killed when dropped.

use super::common::plugboard_binary;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running demo server.
pub struct Demo {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The commands it printed to try, one per line.
    pub commands: Vec<String>,
}

impl Demo {
    /// Starts it on `data` with the admin token `token`, or, with none, the token it writes on a
    /// first start (and no `PLUGBOARD_ADMIN_TOKEN` inherited).
    pub fn start(data: &Path, token: Option<&str>) -> Demo {
        let mut command = Command::new(plugboard_binary());
        command.args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data"]).arg(data);
        match token {
            Some(token) => command.env("PLUGBOARD_ADMIN_TOKEN", token),
            None => command.env_remove("PLUGBOARD_ADMIN_TOKEN"),
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn plugboard serve --demo");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, printed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let next = || printed.recv_timeout(Duration::from_secs(180)).expect("serve --demo prints its commands");
        let mut base = String::new();
        let mut commands = Vec::new();
        let mut trying = false;
        loop {
            let line = next();
            if let Some(rest) = line.strip_prefix("plugboard listening on ") {
                base = rest.split_whitespace().next().unwrap_or_default().to_string();
            } else if line.contains("Try:") {
                trying = true;
            } else if trying && line.trim().is_empty() && !commands.is_empty() {
                break;
            } else if trying && !line.trim().is_empty() {
                commands.push(line.trim().to_string());
            }
        }
        assert!(base.starts_with("http://127.0.0.1:"), "serve --demo did not say where it listens");
        Demo { child, base, commands }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
