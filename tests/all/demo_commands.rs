//! `plugboard serve --demo` prints commands to try; they must run as printed for someone who
//! started the server with `cargo run`, with no `plugboard` on their PATH (issue 28, point 4):
//! the test starts the real binary, takes the printed lines and runs them with `sh`, under a PATH
//! without the binary's directory.

use crate::support::common::plugboard_binary;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_commands_serve_demo_prints_run_as_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Command::new(plugboard_binary())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .env_remove("PLUGBOARD_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn plugboard serve --demo");
    let stdout = server.stdout.take().expect("stdout");
    let (lines, printed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let started = Instant::now();
    let mut commands = Vec::new();
    let mut trying = false;
    loop {
        let line = printed.recv_timeout(Duration::from_secs(120)).expect("serve --demo prints its commands");
        if line.contains("Try:") {
            trying = true;
        } else if trying && line.trim().is_empty() && !commands.is_empty() {
            break;
        } else if trying && !line.trim().is_empty() {
            commands.push(line.trim().to_string());
        }
        assert!(started.elapsed() < Duration::from_secs(120), "serve --demo did not print its commands");
    }
    assert!(commands.len() >= 5, "{commands:?}");
    assert!(
        !commands.iter().any(|c| c.starts_with("plugboard ")),
        "a command needs plugboard on the PATH: {commands:?}"
    );

    let script = format!("set -e\n{}\n", commands.join("\n"));
    let output = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env_remove("PLUGBOARD_SERVER")
        .env_remove("PLUGBOARD_TOKEN")
        .output()
        .expect("run sh");
    let _ = server.kill();
    let _ = server.wait();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the printed commands failed:\n{script}\n{stdout}\n{stderr}");
    for expected in ["json-mapper", "filter", "A1", "500", "plugboard_"] {
        assert!(stdout.contains(expected), "`{expected}` not in what the commands printed:\n{stdout}");
    }
}
