//! Running a parsed `plugboard` command line: [`execute`] dispatches a [`Cli`], prints to the
//! writers it is given, and answers an [`Outcome`] with the exit status.
//!
//! It lives in the library, not in `main.rs`, so tests run real argument lists end to end and
//! check the exit status and the printed text. The rules every command follows:
//!
//! - **Exit status**: 0 on success; 1 when the command fails (bad input, an API error) *or when what
//!   it ran failed* (a flow run whose execution failed, a failed invocation); 2 when `verify`
//!   rejects a file.
//! - **`--json`** prints the server's JSON to stdout, its error body too, so scripts read one
//!   shape; the error line still goes to stderr and the status is still 1.
//! - **Errors** print once, as `error: CODE: MESSAGE` on stderr.
//! - **`serve`** is here too: its setup is CLI work (flags over the config file, the first-start
//!   messages), not server work.
//! - **A closed stdout** (`plugboard audit | head`) ends the command quietly with status 0: the
//!   reader has what it wanted, and `println!` would have panicked.

use crate::cli::{Cli, Command, Connection, NoToken, SamplesCommand};
use crate::client::{ApiClient, ClientError};
use crate::{admin_commands, flow_commands, plugin_commands, render, server};
use serde_json::Value;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;

/// How a command ended, as the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It did what was asked: 0.
    Success,
    /// It failed, or what it ran failed: 1.
    Failure,
    /// `verify` rejected the file: 2.
    Rejected,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Rejected => 2,
        }
    }
}

/// What [`execute`] answers: the exit status and, for client commands, the server's JSON (the
/// error body on an API error) as printed with `--json`.
#[derive(Debug)]
pub struct Outcome {
    /// The exit status.
    pub exit: Exit,
    /// The server's answer, when the command talked to a server and got one.
    pub answer: Option<Value>,
}

/// Where a command prints: stdout and stderr in the binary, buffers in tests.
pub struct Io<'a> {
    /// Results.
    pub out: &'a mut dyn Write,
    /// Errors, logs and usage.
    pub err: &'a mut dyn Write,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The server refused (with its stable `code`) or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// No API token.
    #[error(transparent)]
    NoToken(#[from] NoToken),
    /// A local input (file, argument) is unreadable or malformed; nothing was sent.
    #[error("{what}: {reason}")]
    Input {
        /// Which file or argument.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The command ran, but what it ran failed (a flow execution, an invocation); the details
    /// were printed with its output.
    #[error("{0}")]
    Failed(String),
    /// A local command (serve, sign, run, …) failed.
    #[error("{0:#}")]
    Local(#[from] anyhow::Error),
    /// Printing failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl CommandError {
    /// An [`CommandError::Input`] error about `what`.
    pub fn input(what: impl std::fmt::Display, reason: impl Into<String>) -> CommandError {
        CommandError::Input { what: what.to_string(), reason: reason.into() }
    }
}

/// A client command's result: the server's answer, the text to print for it, and whether what
/// it ran failed (then the status is 1 although the API call succeeded).
#[derive(Debug)]
pub struct Reply {
    /// The server's JSON.
    pub answer: Value,
    /// The answer as text (printed without `--json`).
    pub text: String,
    /// Set when what the command ran failed: the one-line summary for stderr.
    pub failure: Option<String>,
}

impl Reply {
    /// `answer` printed through `render` (and as its JSON with `--json`).
    pub fn new<T: serde::Serialize>(answer: T, render: impl FnOnce(&T) -> String) -> Reply {
        let text = render(&answer);
        Reply::text(answer, text)
    }

    /// `answer` printed as `text`.
    pub fn text(answer: impl serde::Serialize, text: String) -> Reply {
        Reply { answer: serde_json::to_value(answer).unwrap_or_default(), text, failure: None }
    }
}

/// Runs `cli`, printing to `io`.
pub async fn execute(cli: Cli, io: &mut Io<'_>) -> Outcome {
    use plugin_commands as plugin;
    match cli.command {
        Command::Push { file, activate, connection: c } => {
            remote(&c, io, async |api| plugin::push(api, &file, activate).await).await
        }
        Command::Ls { connection: c } => remote(&c, io, async |api| plugin::list(api).await).await,
        Command::Show { name, connection: c } => remote(&c, io, async |api| plugin::show(api, &name).await).await,
        Command::Health { name, connection: c } => remote(&c, io, async |api| plugin::health(api, &name).await).await,
        Command::Activate { name, version, allow_rollback, connection: c } => {
            remote(&c, io, async |api| plugin::activate(api, &name, &version, allow_rollback).await).await
        }
        Command::Deactivate { name, connection: c } => {
            remote(&c, io, async |api| plugin::deactivate(api, &name).await).await
        }
        Command::Delete { name, version, connection: c } => {
            remote(&c, io, async |api| plugin::delete(api, &name, version.as_deref()).await).await
        }
        Command::Grant { name, allow_hosts, buckets, connections, allow_private, budget, connection: c } => {
            let hosts = plugin::HostGrant { patterns: allow_hosts, allow_private };
            remote(&c, io, async |api| plugin::grant(api, &name, hosts, buckets, connections, &budget).await).await
        }
        Command::Config { command, connection: c } => {
            remote(&c, io, async |api| plugin::config(api, &command).await).await
        }
        Command::Invoke { name, input, cursor, max_records, connection: c } => {
            remote(&c, io, async |api| {
                plugin::invoke(api, &name, input.as_deref(), cursor.as_deref(), max_records).await
            })
            .await
        }
        Command::Flow { command, connection: c } => {
            remote(&c, io, async |api| flow_commands::flow(api, &command).await).await
        }
        Command::Dlq { command, connection: c } => {
            remote(&c, io, async |api| flow_commands::dlq(api, &command).await).await
        }
        Command::Keys { command, connection: c } => {
            remote(&c, io, async |api| admin_commands::keys(api, &command).await).await
        }
        Command::Connections { command, connection: c } => {
            remote(&c, io, async |api| crate::connection_commands::connection(api, &command).await).await
        }
        Command::Tokens { command, connection: c } => {
            remote(&c, io, async |api| admin_commands::tokens(api, &command).await).await
        }
        Command::Audit { limit, cursor, connection: c } => {
            remote(&c, io, async |api| admin_commands::audit(api, limit, cursor).await).await
        }
        Command::Whoami { connection: c } => remote(&c, io, async |api| admin_commands::whoami(api).await).await,
        Command::Metrics { last, connection: c } => {
            remote(&c, io, async |api| admin_commands::metrics(api, last).await).await
        }
        Command::Samples { command: SamplesCommand::Ls } => local(admin_commands::list(io.out).map_err(Into::into), io),
        Command::Samples { command: SamplesCommand::Install(install) } => {
            let c = install.connection.clone();
            remote(&c, io, async |api| admin_commands::install(api, &install).await).await
        }
        Command::Verify { pubkey, file } => match crate::sign::verify(&pubkey, &file, io.out) {
            Ok(Ok(())) => local(Ok(()), io),
            Ok(Err(rejection)) => {
                let _ = writeln!(io.err, "rejected: {rejection}");
                Outcome { exit: Exit::Rejected, answer: None }
            }
            Err(err) => local(Err(err.into()), io),
        },
        Command::Run(args) => {
            let result = crate::run::run(&args, io).await;
            local(result, io)
        }
        Command::Serve { data, listen, config, demo, allow_unsigned, cluster } => {
            {
                // What serve prints is advice: a closed stdout must not stop the server.
                let flags = ServeFlags { data, listen, config, demo, allow_unsigned, cluster };
                let result = serve(flags, io.out).await;
                local(result.map_err(Into::into), io)
            }
        }
        Command::Demo => {
            let result = crate::demo::run(io.out).await;
            local(result.map_err(Into::into), io)
        }
        Command::Keygen { out } => {
            let result = crate::sign::keygen(&out, io.out);
            local(result.map_err(Into::into), io)
        }
        Command::Sign { key, manifest, input, out } => {
            let result = crate::sign::sign(&key, &manifest, &input, &out, io.out);
            local(result.map_err(Into::into), io)
        }
        Command::Inspect { file, json } => {
            let result = crate::sign::inspect(&file, json, io.out);
            local(result.map_err(Into::into), io)
        }
        Command::New { name, kind, lang, dir, sdk } => {
            let lang = crate::scaffold::Lang::from(lang);
            let sdk = sdk.unwrap_or_else(|| lang.default_sdk());
            let result = crate::scaffold::create(&dir, &name, kind.into(), lang, &sdk).and_then(|created| {
                writeln!(io.out, "created {} ({})", created.dir.display(), created.files.join(", "))?;
                let readme = created.dir.join("README.md");
                writeln!(io.out, "build and try it: see {}", readme.display())?;
                Ok(())
            });
            local(result, io)
        }
    }
}

/// Runs a client command against `connection`'s server and prints its reply.
async fn remote(
    connection: &Connection,
    io: &mut Io<'_>,
    call: impl AsyncFnOnce(&ApiClient) -> Result<Reply, CommandError>,
) -> Outcome {
    let result = match connection.client() {
        Ok(client) => call(&client).await,
        Err(err) => Err(err.into()),
    };
    let reply = match result {
        Ok(reply) => reply,
        Err(err) => return report(err, connection.json, io),
    };
    let printed = if connection.json {
        writeln!(io.out, "{}", serde_json::to_string_pretty(&reply.answer).unwrap_or_default())
    } else if reply.text.is_empty() {
        Ok(())
    } else {
        writeln!(io.out, "{}", reply.text)
    };
    if let Err(err) = printed {
        let outcome = report(err.into(), connection.json, io);
        // A closed stdout ends the printing quietly, not the failure of what ran.
        return match &reply.failure {
            Some(failure) => {
                let _ = writeln!(io.err, "error: {failure}");
                Outcome { exit: Exit::Failure, answer: Some(reply.answer) }
            }
            None => outcome,
        };
    }
    let exit = match &reply.failure {
        None => Exit::Success,
        Some(failure) => {
            let _ = writeln!(io.err, "error: {failure}");
            Exit::Failure
        }
    };
    Outcome { exit, answer: Some(reply.answer) }
}

/// The outcome of a local command.
fn local(result: Result<(), CommandError>, io: &mut Io<'_>) -> Outcome {
    match result {
        Ok(()) => Outcome { exit: Exit::Success, answer: None },
        Err(err) => report(err, false, io),
    }
}

/// Prints `err` (and with `json`, the server's error body to stdout); a closed stdout is a quiet
/// success.
fn report(err: CommandError, json: bool, io: &mut Io<'_>) -> Outcome {
    let broken_pipe = match &err {
        CommandError::Output(io_error) => io_error.kind() == ErrorKind::BrokenPipe,
        // Printing to stdout (`writeln!(out, …)?`) gives a bare I/O error; a local command's own
        // file writes carry a context ("cannot write …") and stay errors even on a broken pipe.
        CommandError::Local(error) => {
            error.chain().count() == 1
                && error.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == ErrorKind::BrokenPipe)
        }
        _ => false,
    };
    if broken_pipe {
        return Outcome { exit: Exit::Success, answer: None };
    }
    let answer = match &err {
        CommandError::Client(ClientError::Api { body, .. }) => Some(body.clone()),
        _ => None,
    };
    if json && let Some(body) = &answer {
        let _ = writeln!(io.out, "{}", serde_json::to_string_pretty(body).unwrap_or_default());
    }
    let _ = writeln!(io.err, "error: {err}");
    if !json && let Some(body) = &answer {
        let frames = render::backtrace(&body["backtrace"]);
        if !frames.is_empty() {
            let _ = writeln!(io.err, "backtrace:\n{}", frames.join("\n"));
        }
        let lines = render::logs(&body["logs"]);
        if !lines.is_empty() {
            let _ = writeln!(io.err, "logs:\n{}", lines.join("\n"));
        }
    }
    Outcome { exit: Exit::Failure, answer }
}

/// `plugboard serve`'s flags.
pub struct ServeFlags {
    /// `--data`.
    pub data: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<std::net::SocketAddr>,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--demo`.
    pub demo: bool,
    /// `--allow-unsigned`.
    pub allow_unsigned: bool,
    /// `--cluster URL`.
    pub cluster: Option<String>,
}

/// Serves the control plane until Ctrl-C or SIGTERM: `--data`, `--listen` and `--allow-unsigned`
/// override the config file's settings.
///
/// # Errors
/// A bad config file, a data directory or listen address that cannot be used, demo setup failures.
pub async fn serve(flags: ServeFlags, out: &mut dyn Write) -> anyhow::Result<()> {
    let ServeFlags { data, listen, config, demo, allow_unsigned, cluster } = flags;
    let mut settings = match config {
        Some(path) => server::ServeConfig::from_file(&path)?,
        None => server::ServeConfig::default(),
    };
    settings.data = data.or(settings.data);
    settings.listen = listen.or(settings.listen);
    settings.allow_unsigned |= allow_unsigned;
    if let Some(url) = cluster {
        let mut cluster =
            settings.cluster.take().unwrap_or_else(|| crate::store::cluster::ClusterSettings::new(String::new()));
        cluster.url = url;
        settings.cluster = Some(cluster);
    }
    let server = server::start(&settings, Default::default()).await?;
    let data_dir = settings.data_dir();
    if demo {
        crate::demo::install_samples(&server.state, &data_dir).await?;
    }
    let base = format!("http://{}", server.addr);
    let _ = writeln!(out, "plugboard listening on {base} (data: {})", data_dir.display());
    if let Some(path) = &server.created_token_file {
        let _ =
            writeln!(out, "created an admin token: {} (keep it private; shown only on first start)", path.display());
    }
    let _ = writeln!(out, "dashboard: {base}/ui (sign in with an API token)");
    if demo {
        // Where the admin token is: the environment that set it, else the file written on a
        // first start (a token set in the config file is the operator's to paste).
        let from_environment = std::env::var("PLUGBOARD_ADMIN_TOKEN").is_ok_and(|token| !token.trim().is_empty());
        let token = if from_environment && server.created_token_file.is_none() {
            "\"$PLUGBOARD_ADMIN_TOKEN\"".to_string()
        } else {
            format!("$(cat {})", shell_word(&data_dir.join("admin-token").display().to_string()))
        };
        // The binary as it runs now: someone who started it with `cargo run` has no `plugboard`
        // on their PATH, and the commands must run as printed.
        let exe =
            std::env::current_exe().map_or_else(|_| "plugboard".to_string(), |p| shell_word(&p.display().to_string()));
        let _ = writeln!(out, "\nsample plugins are installed and active. Try:\n");
        let _ = writeln!(out, "  export PLUGBOARD_SERVER={base} PLUGBOARD_TOKEN={token}");
        let _ = writeln!(out, "  {exe} ls");
        let _ = writeln!(
            out,
            "  echo '[{{\"orderId\": \"A1\", \"customerId\": 7, \"orderTotal\": 1250}}]' | {exe} invoke json-mapper --input -"
        );
        let _ = writeln!(out, "  echo '[{{\"total\": 50}}, {{\"total\": 500}}]' | {exe} invoke filter --input -");
        let _ = writeln!(out, "  {exe} audit");
        let _ = writeln!(out, "  curl -s {base}/metrics | grep plugboard_\n");
    }
    server.run(server::shutdown_signal()).await
}

/// `text` as one word of a POSIX shell command: as it is when it needs no quoting, else in
/// single quotes.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c));
    if plain { text.to_string() } else { format!("'{}'", text.replace('\'', "'\\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    /// A stdout whose reader has gone (`plugboard samples ls | head -0`).
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_closed_stdout_ends_quietly() {
        let cli = Cli::try_parse_from(["plugboard", "samples", "ls"]).expect("parses");
        let mut err = Vec::new();
        let outcome = execute(cli, &mut Io { out: &mut ClosedPipe, err: &mut err }).await;
        assert_eq!(outcome.exit, Exit::Success);
        assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
    }

    #[test]
    fn a_broken_pipe_while_printing_a_reply_is_not_an_error() {
        let mut err = Vec::new();
        let outcome = report(
            CommandError::Output(ErrorKind::BrokenPipe.into()),
            false,
            &mut Io { out: &mut ClosedPipe, err: &mut err },
        );
        assert_eq!((outcome.exit, err.len()), (Exit::Success, 0));
    }
}
