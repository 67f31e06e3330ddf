//! The `plugboard` command line as clap types, in the library so tests parse real argument lists.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::client::ApiClient;

#[derive(Parser, Debug)]
#[command(name = "plugboard", version, about = "A WebAssembly-sandboxed plugin runtime for integrations")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the client commands connect.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Server URL.
    #[arg(long, global = true, env = "PLUGBOARD_SERVER", default_value = "http://127.0.0.1:8686")]
    pub server: String,
    /// API token; defaults to ./plugboard-data/admin-token when that file exists.
    #[arg(long, global = true, env = "PLUGBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Connection {
    /// A client for this server and token.
    pub fn client(&self) -> anyhow::Result<ApiClient> {
        let token = match &self.token {
            Some(token) => token.clone(),
            None => std::fs::read_to_string("plugboard-data/admin-token")
                .map(|t| t.trim().to_string())
                .map_err(|_| anyhow::anyhow!("no token: pass --token or set PLUGBOARD_TOKEN"))?,
        };
        Ok(ApiClient::new(&self.server, &token))
    }

    /// Prints an answer as JSON (`--json`) or through `render`.
    pub fn print(&self, answer: &serde_json::Value, render: fn(&serde_json::Value) -> String) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(answer)?);
        } else {
            println!("{}", render(answer));
        }
        Ok(())
    }
}

/// `plugboard keys …`.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Trusts a publisher's public key file.
    Add {
        /// The `.pub` file from `plugboard keygen`.
        public_key: PathBuf,
        /// A name for the key.
        #[arg(long, default_value = "publisher")]
        name: String,
    },
    /// Lists trusted and revoked keys.
    Ls,
    /// Revokes a key (unloads every active plugin it signed).
    Revoke {
        /// The key id.
        id: String,
    },
}

/// `plugboard flow …`.
#[derive(Subcommand, Debug, Clone)]
pub enum FlowCommand {
    /// Creates or replaces a flow from a definition file (JSON, or YAML for `.yaml`/`.yml`).
    Apply {
        /// The definition file; `-` reads JSON or YAML from stdin.
        file: PathBuf,
    },
    /// Lists flows.
    Ls,
    /// Runs a flow now, on records from a file or on none (a flow with a source reads its own).
    Run {
        /// Flow name.
        name: String,
        /// A JSON (or YAML) array of records, or `{"records": [...]}`; `-` reads stdin.
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Lists a flow's executions, newest last.
    Executions {
        /// Flow name.
        name: String,
    },
}

/// `plugboard dlq …`.
#[derive(Subcommand, Debug, Clone)]
pub enum DlqCommand {
    /// Lists a flow's dead letters.
    Ls {
        /// Flow name.
        flow: String,
    },
    /// Replays dead letters from the step they failed at: the given ids, or all.
    Replay {
        /// Flow name.
        flow: String,
        /// Dead-letter ids; all when none are given.
        ids: Vec<u64>,
    },
}

/// Every `plugboard` command.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Defines, lists and runs a server's flows.
    Flow {
        #[command(subcommand)]
        command: FlowCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Lists and replays a flow's dead letters.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Uploads a signed plugin to a server.
    Push {
        /// The signed plugin file.
        file: PathBuf,
        /// Make it the active version.
        #[arg(long)]
        activate: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Lists a server's plugins.
    Ls {
        #[command(flatten)]
        connection: Connection,
    },
    /// Activates a plugin version on a server.
    Activate {
        /// Plugin name.
        name: String,
        /// Version to activate.
        version: String,
        /// Activate a version below the highest ever installed (a rollback; audited).
        #[arg(long)]
        allow_rollback: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Invokes a plugin on a server with a JSON array of records.
    Invoke {
        /// Plugin name.
        name: String,
        /// File with a JSON array of records; `-` reads stdin.
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        connection: Connection,
    },
    /// Manages a server's trusted publisher keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Shows a server's audit log.
    Audit {
        #[command(flatten)]
        connection: Connection,
    },
    /// Serves the HTTP control plane (defaults: 127.0.0.1:8686, ./plugboard-data).
    Serve {
        /// Data directory (database, compiled artifacts, admin token).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// A TOML config file (`data`, `listen`, `admin_token`, `allow_unsigned`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Install the sample plugins, signed by a local demo publisher key, and print examples.
        #[arg(long)]
        demo: bool,
        /// Accept unsigned plugins. Development only: every such load logs a warning.
        #[arg(long)]
        allow_unsigned: bool,
    },
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
