//! The `plugboard` command line as clap types, in the library so tests parse real argument lists.
//!
//! [`Command`] holds the top-level commands; the nested ones (`keys`, `tokens`, `config`,
//! `samples`, `flow`, `dlq`) are in [`subcommands`]. Running a parsed [`Cli`] is
//! `crate::commands::execute`.

mod subcommands;

pub use subcommands::{
    ConfigCommand, ConnectionCommand, DlqCommand, FlowCommand, KeysCommand, SamplesCommand, SamplesInstall,
    TokensCommand,
};

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

/// No API token was given and `./plugboard-data/admin-token` does not exist.
#[derive(Debug, thiserror::Error)]
#[error("no token: pass --token or set PLUGBOARD_TOKEN")]
pub struct NoToken;

/// Where the client commands connect.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Server URL.
    #[arg(long, global = true, env = "PLUGBOARD_SERVER", default_value = "http://127.0.0.1:8686")]
    pub server: String,
    /// API token; defaults to ./plugboard-data/admin-token when that file exists.
    #[arg(long, global = true, env = "PLUGBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the server's JSON (its error body too, on an error) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Connection {
    /// A client for this server and token.
    ///
    /// # Errors
    /// [`NoToken`] when no token is given and there is no local admin token file.
    pub fn client(&self) -> Result<ApiClient, NoToken> {
        let token = match &self.token {
            Some(token) => token.clone(),
            None => std::fs::read_to_string("plugboard-data/admin-token")
                .map(|t| t.trim().to_string())
                .map_err(|_| NoToken)?,
        };
        Ok(ApiClient::new(&self.server, &token))
    }
}

/// Budget limits for `plugboard grant`; unset ones take the server's defaults.
#[derive(Args, Debug, Clone, Default)]
pub struct BudgetArgs {
    /// Fuel units per invocation.
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Deadline per invocation, in milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Memory, in bytes, over all of the plugin's memories.
    #[arg(long)]
    pub memory_bytes: Option<u64>,
    /// Input bytes per invocation.
    #[arg(long)]
    pub max_input_bytes: Option<u64>,
    /// Output bytes per invocation.
    #[arg(long)]
    pub max_output_bytes: Option<u64>,
    /// Records per batch, in or out.
    #[arg(long)]
    pub max_records: Option<u64>,
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
    /// Lists, replays and deletes a flow's dead letters.
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
    /// Shows one plugin: versions, grants (secret keys, never values), health and usage.
    Show {
        /// Plugin name.
        name: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Shows whether a plugin's active version is loaded.
    Health {
        /// Plugin name.
        name: String,
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
    /// Deactivates a plugin; invocations in flight finish.
    Deactivate {
        /// Plugin name.
        name: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Deletes an inactive plugin (every version), or one inactive version.
    Delete {
        /// Plugin name.
        name: String,
        /// Delete only this version.
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Sets what a plugin may use: outbound hosts, key-value buckets and budget. Replaces the
    /// plugin's earlier grants: anything not given is no longer granted.
    Grant {
        /// Plugin name.
        name: String,
        /// An outbound host pattern to grant (repeatable), e.g. `api.example.com` or `*.example.com`.
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_hosts: Vec<String>,
        /// A key-value bucket to grant (repeatable).
        #[arg(long = "bucket", value_name = "BUCKET")]
        buckets: Vec<String>,
        /// A connection to bind (repeatable), `NAME` (the manifest's name and the connection's)
        /// or `MANIFEST_NAME=CONNECTION`: the host adds its credential to the plugin's requests to
        /// its hosts.
        #[arg(long = "use-connection", value_name = "CONNECTION")]
        connections: Vec<String>,
        /// Let the granted host *names* resolve to private or loopback addresses (an internal
        /// service reached by name); IP literals reach what they name either way.
        #[arg(long)]
        allow_private: bool,
        #[command(flatten)]
        budget: BudgetArgs,
        #[command(flatten)]
        connection: Connection,
    },
    /// Sets a plugin's config values and secrets.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Invokes a plugin on a server: records for transformers and sinks, a cursor for sources.
    Invoke {
        /// Plugin name.
        name: String,
        /// File with a JSON array of records; `-` reads stdin. Sources take none.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Where a source starts reading (the `next_cursor` of an earlier page).
        #[arg(long)]
        cursor: Option<String>,
        /// Most records a source reads.
        #[arg(long)]
        max_records: Option<u32>,
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
    /// Defines, lists, tries and deletes a server's connections (credentials the host adds to
    /// plugins' requests).
    #[command(name = "connection")]
    Connections {
        #[command(subcommand)]
        command: ConnectionCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Creates, lists and revokes a server's API tokens.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Shows a server's audit log, a page at a time, oldest first.
    Audit {
        /// Most entries (default 100, at most 1000).
        #[arg(long)]
        limit: Option<usize>,
        /// Start after this entry (the `--cursor` printed under the previous page).
        #[arg(long)]
        cursor: Option<u64>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Shows which token the CLI uses on a server: its name and role.
    Whoami {
        #[command(flatten)]
        connection: Connection,
    },
    /// Shows a server's recent metrics: invocations, errors by code, latency, queue depth and dead
    /// letters per 5-second sample (the history the dashboard charts).
    Metrics {
        /// How many of the latest samples (the server keeps the last hour).
        #[arg(long, default_value_t = 12)]
        last: usize,
        #[command(flatten)]
        connection: Connection,
    },
    /// Lists the built-in sample plugins, or installs them on a server.
    Samples {
        #[command(subcommand)]
        command: SamplesCommand,
    },
    /// Serves the HTTP control plane (defaults: 127.0.0.1:8686, ./plugboard-data).
    Serve {
        /// Data directory (database, compiled artifacts, admin token).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// A TOML config file (`data`, `listen`, `admin_token`, `allow_unsigned`, `cache_dir`,
        /// `[caps]`, `[queue]`, …; see docs/cli.md).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Install the sample plugins, signed by a local demo publisher key, and print examples.
        #[arg(long)]
        demo: bool,
        /// Accept unsigned plugins. Development only: every such load logs a warning.
        #[arg(long)]
        allow_unsigned: bool,
        /// Run as one node of a cluster: keep all shared state in NATS JetStream at this URL
        /// (`nats://HOST:PORT`) instead of the embedded database. Every node needs the same
        /// secrets key file (`secrets_key_file`); see docs/cluster.md.
        #[arg(long, value_name = "URL", env = "PLUGBOARD_CLUSTER")]
        cluster: Option<String>,
    },
    /// Runs the built-in sample plugins as a pipeline on sample data.
    Demo,
    /// Runs a plugin component once on JSON input and prints the output, usage and logs.
    Run(RunArgs),
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
    /// Creates a plugin project that builds and runs as it is: code, `plugin.toml`, a test input.
    New {
        /// The plugin's name (lower-case letters, digits and dashes); also its directory.
        name: String,
        /// What it is.
        #[arg(long, value_enum)]
        kind: NewKind,
        /// Its language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: NewLang,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The language's plugin SDK (default: the one of the checkout this binary was built from:
        /// `plugin-sdk`, `plugin-sdk/python` or `plugin-sdk/js`).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

/// `plugboard new --kind`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKind {
    /// Batch in, batch out.
    Transformer,
    /// Reads pages from an outside system.
    Source,
    /// Delivers records to an outside system.
    Sink,
}

impl From<NewKind> for plugboard_runtime::Kind {
    fn from(kind: NewKind) -> plugboard_runtime::Kind {
        match kind {
            NewKind::Transformer => plugboard_runtime::Kind::Transformer,
            NewKind::Source => plugboard_runtime::Kind::Source,
            NewKind::Sink => plugboard_runtime::Kind::Sink,
        }
    }
}

/// `plugboard new --lang`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewLang {
    /// Rust, with `plugboard-plugin-sdk`, built by `cargo build --target wasm32-wasip2`.
    Rust,
    /// Python, with `plugboard_sdk`, built by componentize-py (`./build.sh`).
    Python,
    /// JavaScript, with `@plugboard/sdk`, built by jco (`npm run build`).
    Js,
    /// TypeScript, with `@plugboard/sdk`, built by jco (`npm run build`).
    Ts,
}

impl From<NewLang> for crate::scaffold::Lang {
    fn from(lang: NewLang) -> crate::scaffold::Lang {
        match lang {
            NewLang::Rust => crate::scaffold::Lang::Rust,
            NewLang::Python => crate::scaffold::Lang::Python,
            NewLang::Js => crate::scaffold::Lang::JavaScript,
            NewLang::Ts => crate::scaffold::Lang::TypeScript,
        }
    }
}

/// `plugboard run`: one local invocation, with the grants given here only.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The component (`.wasm`): built with `cargo build --target wasm32-wasip2`, componentize-py
    /// or jco.
    pub component: PathBuf,
    /// Its manifest (`plugin.toml`).
    #[arg(long)]
    pub manifest: PathBuf,
    /// A config value to grant, `KEY=VALUE` (repeatable); keys the manifest lists as secrets
    /// become secrets.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// An outbound host to grant (repeatable).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// A key-value bucket to grant (repeatable). Buckets live in memory for this one run.
    #[arg(long = "allow-bucket", value_name = "BUCKET")]
    pub allow_buckets: Vec<String>,
    /// A JSON array of records (transformers, sinks) or nothing (sources); `-` reads stdin.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Where a source starts reading.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Most records a source reads.
    #[arg(long, default_value_t = 100)]
    pub max_records: u32,
    /// Where compiled components are kept between runs (default `$XDG_CACHE_HOME/plugboard` or
    /// `~/.cache/plugboard`): a Python or JavaScript component compiles for many seconds, once.
    #[arg(long, env = "PLUGBOARD_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every run, keeping nothing.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}
