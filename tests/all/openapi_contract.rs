//! The API document as a contract, proven by a tool no one here wrote (issue 28, point 1):
//! schemathesis (pinned in `tests/senders/requirements.txt`, configured by
//! `tests/senders/schemathesis.toml`) drives the real `plugboard serve --demo` binary over every
//! operation of its own `/openapi.json` with the admin token — generated valid and invalid
//! parameters and bodies from the documented schemas, then stateful sequences — and fails on any
//! 5xx, any status the document does not list, any content type it does not name, and any body
//! its schema does not describe. A handler whose answer drifts from its type's schema, or a
//! route whose body is not the one documented, fails here.

use crate::support::common::plugboard_binary;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "contract-admin-token-0123456789abcdef0123456789";

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Command::new(plugboard_binary())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .env("PLUGBOARD_ADMIN_TOKEN", TOKEN)
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
    let base = loop {
        let line = printed.recv_timeout(Duration::from_secs(180)).expect("serve --demo says where it listens");
        if let Some(rest) = line.strip_prefix("plugboard listening on ") {
            break rest.split_whitespace().next().unwrap_or_default().to_string();
        }
    };
    // The demo is ready once it has printed its commands (its samples are installed).
    while printed.recv_timeout(Duration::from_secs(180)).is_ok_and(|line| !line.contains("Try:")) {}

    let senders = Path::new(plugboard_tests::SENDERS_DIR);
    let schemathesis = Path::new(plugboard_tests::SENDERS_PYTHON).with_file_name("schemathesis");
    let work = dir.path().join("schemathesis");
    std::fs::create_dir_all(&work).expect("work dir");
    let output = Command::new(schemathesis)
        .arg("--config-file")
        .arg(senders.join("schemathesis.toml"))
        .args(["--no-color", "run"])
        .arg(format!("{base}/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(work.join("junit.xml"))
        .current_dir(&work)
        .env("SCHEMATHESIS_HOOKS", senders.join("schemathesis_hooks.py"))
        .env("HYPOTHESIS_STORAGE_DIRECTORY", work.join("hypothesis"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run schemathesis");
    let _ = server.kill();
    let _ = server.wait();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "schemathesis failed:\n{report}\n{}", String::from_utf8_lossy(&output.stderr));
    // It really ran: every operation but the document itself, and requests answered.
    assert!(report.contains("passed"), "{report}");
}
