//! The `plugboard` binary itself, as users run it. Most behaviour is tested through the library in
//! the workspace's `tests/` crate; this file checks what only the built binary shows (argument
//! parsing, exit status, config errors) and, being an integration test of this package, makes
//! `cargo test --workspace` build `target/<profile>/plugboard`, which the load-and-fault harness
//! (`tests/harness`) runs as a child process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn plugboard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_plugboard"))
}

#[test]
fn help_lists_the_commands() {
    let output = plugboard().arg("--help").output().expect("run plugboard");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "sign", "verify", "push", "flow"] {
        assert!(text.contains(command), "{command} missing from:\n{text}");
    }
}

#[test]
fn serve_refuses_a_config_file_with_unknown_keys() {
    let dir = std::env::temp_dir().join(format!("plugboard-binary-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("plugboard.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nno_such_setting = true\n").unwrap();
    let output = plugboard().args(["serve", "--config"]).arg(&config).output().expect("run plugboard");
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("invalid config"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let dir = std::env::temp_dir().join(format!("plugboard-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = dir.join("key");
    let key_arg = key.to_str().expect("utf-8 path");
    // A local command that prints a table, one that writes files and prints what it did, and one
    // that runs the sample pipeline and prints as it goes.
    for args in [vec!["samples", "ls"], vec!["keygen", "--out", key_arg], vec!["demo"]] {
        let mut child =
            plugboard().args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run plugboard");
        // Close the reading end before the command prints, as `plugboard … | head -0` does.
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert!(key.exists(), "keygen did its work before the closed pipe");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn samples_ls_lists_the_built_in_samples() {
    let output = plugboard().args(["samples", "ls"]).output().expect("run plugboard");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("NAME") && text.contains("json-mapper") && text.contains("http-source"), "{text}");
}
