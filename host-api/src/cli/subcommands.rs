//! The nested `plugboard` commands (`keys …`, `tokens …`, `config …`, `samples …`, `flow …`,
//! `dlq …`), one enum each, kept apart from the top-level [`super::Command`] so each stays short.

use super::Connection;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `plugboard keys …`.
#[derive(Subcommand, Debug, Clone)]
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

/// `plugboard tokens …`.
#[derive(Subcommand, Debug, Clone)]
pub enum TokensCommand {
    /// Creates an API token; its value is printed once and never again.
    Create {
        /// A name for the token (shown in the audit log).
        name: String,
        /// What it may do: `admin`, `publisher` (upload) or `invoker` (invoke and read).
        #[arg(long, default_value = "invoker", value_parser = ["admin", "publisher", "invoker"])]
        role: String,
        /// Limits the token to this plugin (repeatable): an invoker invokes and reads only these,
        /// a publisher uploads only these.
        #[arg(long = "plugin", value_name = "NAME")]
        plugins: Vec<String>,
        /// Limits the token to this flow (repeatable): it runs and reads only these flows, their
        /// executions and dead letters.
        #[arg(long = "flow", value_name = "NAME")]
        flows: Vec<String>,
    },
    /// Lists API tokens: names, roles and scopes, never values.
    Ls,
    /// Revokes an API token (not the server's admin token).
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// `plugboard connection …`.
#[derive(Subcommand, Debug, Clone)]
pub enum ConnectionCommand {
    /// Lists connections (never their secrets) and the plugins using each.
    Ls,
    /// Shows one connection.
    Show {
        /// Connection name.
        name: String,
    },
    /// Creates or replaces a connection from a JSON or YAML file (`kind`, `hosts`, `secret`, …;
    /// without `secret` a replacement keeps the stored one).
    Put {
        /// Connection name.
        name: String,
        /// The definition.
        #[arg(long)]
        file: PathBuf,
    },
    /// Deletes a connection.
    Rm {
        /// Connection name.
        name: String,
    },
    /// Tries a connection: fetches a token (OAuth) and calls its `probe_url`.
    Test {
        /// Connection name.
        name: String,
    },
}

/// `plugboard config …`.
#[derive(Subcommand, Debug, Clone)]
pub enum ConfigCommand {
    /// Sets a plugin's config values and secrets, replacing all earlier ones (secrets cannot be
    /// read back, so nothing is merged: give every value the plugin needs).
    Set {
        /// Plugin name.
        name: String,
        /// Config values, `KEY=VALUE`.
        #[arg(value_name = "KEY=VALUE")]
        values: Vec<String>,
        /// A write-only secret, `KEY=VALUE` (repeatable); `KEY=@FILE` reads the value from a file
        /// (`@-` from stdin) so it stays out of the shell history.
        #[arg(long = "secret", value_name = "KEY=VALUE")]
        secrets: Vec<String>,
    },
}

/// `plugboard samples …`.
#[derive(Subcommand, Debug, Clone)]
pub enum SamplesCommand {
    /// Lists the sample plugins built into this binary.
    Ls,
    /// Signs the built-in sample plugins and installs, configures and activates them on a server.
    Install(SamplesInstall),
}

/// `plugboard samples install`.
#[derive(Args, Debug, Clone)]
pub struct SamplesInstall {
    /// The publisher secret key to sign with; generated there when the file does not exist.
    /// Without it a one-off key is generated (and trusted), so repeat installs should pass one.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Trust the key on the server (`POST /v1/keys`) when it does not yet; a generated key is
    /// always trusted.
    #[arg(long)]
    pub trust: bool,
    /// Leave the plugins' config alone instead of setting the demo config (which replaces any
    /// config they had).
    #[arg(long)]
    pub no_config: bool,
    /// Install only these samples (repeatable); all when none are given.
    #[arg(long = "only", value_name = "NAME")]
    pub only: Vec<String>,
    #[command(flatten)]
    pub connection: Connection,
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
    /// Shows a flow's definition (as JSON).
    Show {
        /// Flow name.
        name: String,
    },
    /// Deletes a flow (its executions and dead letters stay).
    Delete {
        /// Flow name.
        name: String,
    },
    /// Runs a flow now, on records from a file or on none (a flow with a source reads its own).
    Run {
        /// Flow name.
        name: String,
        /// A JSON (or YAML) array of records, or `{"records": [...]}`; `-` reads stdin.
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Lists a flow's executions, oldest first.
    Executions {
        /// Flow name.
        name: String,
    },
    /// Shows one execution with its steps and errors.
    Execution {
        /// Execution id.
        id: u64,
    },
    /// Follows a webhook delivery by the `queued` id its 202 answered: queued, or the execution
    /// that ran it.
    Delivery {
        /// Flow name.
        name: String,
        /// The `queued` id.
        id: u64,
    },
    /// Sets the secret webhook senders sign with (write-only), as the sender hands it out.
    WebhookSecret {
        /// Flow name.
        name: String,
        /// A file holding the secret (trailing newline ignored); `-` reads stdin.
        #[arg(long)]
        secret_file: PathBuf,
        /// Rotate: keep accepting the secret this one replaces for this many seconds.
        #[arg(long, default_value_t = 0)]
        keep_previous_secs: u64,
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
    /// Deletes one dead letter.
    Delete {
        /// Flow name.
        flow: String,
        /// Dead-letter id.
        id: u64,
    },
}
