//! `plugboard serve --demo` prints commands to try; they must run as printed for someone who
//! started the server with `cargo run`, with no `plugboard` on their PATH (issue 28, point 4):
//! the test starts the real binary, takes the printed lines and runs them with `sh`, under a PATH
//! without the binary's directory.

use crate::support::demo::Demo;
use std::process::Command;

#[test]
fn the_commands_serve_demo_prints_run_as_printed() {
    run_as_printed(None);
}

/// With the admin token in `PLUGBOARD_ADMIN_TOKEN` no token file is written: the printed
/// `export` takes the token from that variable instead.
#[test]
fn the_commands_run_as_printed_when_the_token_comes_from_the_environment() {
    run_as_printed(Some("demo-admin-token-0123456789abcdef0123456789abcdef"));
}

fn run_as_printed(token: Option<&str>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Demo::start(&dir.path().join("data"), token);
    let commands = &demo.commands;
    assert!(commands.len() >= 5, "{commands:?}");
    assert!(
        !commands.iter().any(|c| c.starts_with("plugboard ")),
        "a command needs plugboard on the PATH: {commands:?}"
    );

    let script = format!("set -e\n{}\n", commands.join("\n"));
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(&script).env("PATH", "/usr/local/bin:/usr/bin:/bin");
    sh.env_remove("PLUGBOARD_SERVER").env_remove("PLUGBOARD_TOKEN").env_remove("PLUGBOARD_ADMIN_TOKEN");
    if let Some(token) = token {
        sh.env("PLUGBOARD_ADMIN_TOKEN", token);
    }
    let output = sh.output().expect("run sh");
    drop(demo);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the printed commands failed:\n{script}\n{stdout}\n{stderr}");
    for expected in ["json-mapper", "filter", "A1", "500", "plugboard_"] {
        assert!(stdout.contains(expected), "`{expected}` not in what the commands printed:\n{stdout}");
    }
}
