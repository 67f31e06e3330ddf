//! The `plugboard` binary run as a user runs it: words in, exit status and output back.

use crate::support::server::{ADMIN, Api};
use clap::Parser;
use plugboard_host_api::cli::Cli;
use plugboard_host_api::commands::{self, Exit, Io};
use serde_json::Value;

/// What one command did.
#[derive(Debug)]
pub struct Printed {
    pub exit: Exit,
    /// The server's JSON (its error body on an API error).
    pub answer: Option<Value>,
    pub out: String,
    pub err: String,
}

impl Printed {
    /// Asserts status 0.
    pub fn ok(self) -> Printed {
        assert_eq!(self.exit, Exit::Success, "{self:?}");
        self
    }

    /// Asserts status 1.
    pub fn failed(self) -> Printed {
        assert_eq!(self.exit, Exit::Failure, "{self:?}");
        self
    }

    /// The server's answer.
    pub fn json(&self) -> Value {
        self.answer.clone().unwrap_or_else(|| panic!("no answer: {self:?}"))
    }
}

/// Runs `plugboard WORDS` (without `--server`/`--token`; those are added).
pub async fn run_words(words: &[&str]) -> Printed {
    let mut args = vec!["plugboard"];
    args.extend_from_slice(words);
    let cli = Cli::try_parse_from(&args).unwrap_or_else(|err| panic!("`{}` does not parse: {err}", words.join(" ")));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = commands::execute(cli, &mut Io { out: &mut out, err: &mut err }).await;
    Printed {
        exit: outcome.exit,
        answer: outcome.answer,
        out: String::from_utf8_lossy(&out).into_owned(),
        err: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// Runs `plugboard WORDS` with the admin token.
pub async fn plugboard(api: &Api, words: &[&str]) -> Printed {
    plugboard_as(api, ADMIN, words).await
}

/// Runs `plugboard WORDS --server … --token TOKEN`.
pub async fn plugboard_as(api: &Api, token: &str, words: &[&str]) -> Printed {
    let mut all = words.to_vec();
    all.extend_from_slice(&["--server", &api.base, "--token", token]);
    run_words(&all).await
}
