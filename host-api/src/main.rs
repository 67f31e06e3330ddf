//! `plugboard`: Plugboard's command-line entry point.
//!
//! - `plugboard serve [--demo]` serves the HTTP control plane;
//! - `plugboard demo` runs the embedded sample plugins as a pipeline on sample data;
//! - `plugboard run` invokes one plugin locally, as a plugin author tries a build;
//! - `plugboard new` creates a plugin project that builds and runs as it is;
//! - `plugboard keygen | sign | verify | inspect` manage publisher keys and signed plugin files;
//! - `plugboard push | ls | show | health | activate | deactivate | delete | grant | config |
//!   invoke | keys | tokens | audit | samples | flow | dlq` talk to a server.
//!
//! Everything but process setup is in the library (`plugboard_host_api::commands`), so tests run
//! the same code on real argument lists. Exit status: 0 on success, 1 when the command fails or
//! what it ran failed (a failed flow execution or invocation), 2 when `verify` rejects a file.

use clap::Parser;
use plugboard_host_api::cli::Cli;
use plugboard_host_api::commands::{self, Io};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // `plugboard run` prints the invocation's captured log itself, host warnings included: the
    // runtime's own copies of those warnings would say everything twice.
    let default_filter = match cli.command {
        plugboard_host_api::cli::Command::Run(_) => "info,plugboard_runtime=error",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let outcome = commands::execute(cli, &mut Io { out: &mut out, err: &mut err }).await;
    let code = outcome.exit.code();
    if code != 0 {
        // A command that failed may have started background work (a server whose start failed
        // after its store and workers opened — a port in use): nothing was acknowledged, so exit
        // now rather than wait for that work in the runtime's shutdown.
        use std::io::Write as _;
        let _ = out.flush();
        std::process::exit(i32::from(code));
    }
    ExitCode::from(code)
}
