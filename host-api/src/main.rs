//! `plugboard`: Plugboard's command-line entry point.
//!
//! - `plugboard demo` runs the embedded sample plugins as a pipeline on sample data;
//! - `plugboard run` invokes one plugin locally, as a plugin author tries a build;
//! - `plugboard keygen | sign | verify | inspect` manage publisher keys and signed plugin files.
//!
//! Exit status: 0 on success, 1 when the command fails, 2 when `verify` rejects a file.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use plugboard_host_api::{demo, run, sign};

#[derive(Parser)]
#[command(name = "plugboard", version, about = "A WebAssembly-sandboxed plugin runtime for integrations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the built-in sample plugins as a pipeline on sample data.
    Demo,
    /// Runs a plugin component once on JSON input and prints the output, usage and logs.
    Run {
        /// The component (`.wasm`) built with `cargo build --target wasm32-wasip2`.
        component: PathBuf,
        /// Its manifest (`plugin.toml`).
        #[arg(long)]
        manifest: PathBuf,
        /// A config value to grant, `KEY=VALUE` (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// An outbound host to grant (repeatable).
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_hosts: Vec<String>,
        /// A JSON array of records (transformers, sinks) or nothing (sources); `-` reads stdin.
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Writes a new publisher key pair: KEY (secret, mode 0600) and KEY.pub.
    Keygen {
        /// Where to write the secret key; the public key goes to the same path plus `.pub`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Embeds a manifest in a component and signs the result.
    Sign {
        /// The secret key file from `plugboard keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The plugin's `plugin.toml`.
        #[arg(long)]
        manifest: PathBuf,
        /// The component to sign.
        input: PathBuf,
        /// Where to write the signed plugin.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Verifies a signed plugin against one public key.
    Verify {
        /// The publisher's public key file (`KEY.pub`).
        #[arg(long)]
        pubkey: PathBuf,
        /// The signed plugin.
        file: PathBuf,
    },
    /// Shows a plugin file's manifest, digest, signer key id, world, imports and exports.
    Inspect {
        /// The plugin file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Demo => demo::run().await,
        Command::Run { component, manifest, config, allow_hosts, input } => {
            run::run(component, manifest, config, allow_hosts, input).await
        }
        Command::Keygen { out } => sign::keygen(&out),
        Command::Sign { key, manifest, input, out } => sign::sign(&key, &manifest, &input, &out),
        Command::Verify { pubkey, file } => match sign::verify(&pubkey, &file) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(rejection)) => {
                eprintln!("rejected: {rejection}");
                return ExitCode::from(2);
            }
            Err(err) => Err(err),
        },
        Command::Inspect { file, json } => sign::inspect(&file, json),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
