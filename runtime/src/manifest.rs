//! The plugin manifest: what a plugin is and what it asks for.
//!
//! Authored as `plugin.toml` beside the plugin's `Cargo.toml`. Unknown fields are rejected so a
//! typo never silently drops a capability or a limit.

use crate::budget::BudgetLimits;
use crate::error::{Error, Result};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The current version of Plugboard's WIT package; worlds are `plugboard:plugin/<kind>@<this>`.
pub const WIT_PACKAGE_VERSION: &str = Contract::CURRENT.as_str();

/// A version of Plugboard's WIT package (`wit/`) that this host loads. New plugins are built
/// against [`Contract::CURRENT`]; components built against an earlier version keep loading and
/// running unchanged (their copy of the WIT stays in `wit/earlier/`), as Spin and wasmCloud keep
/// their old worlds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Contract {
    /// `plugboard:plugin@0.1.0`, the first contract.
    V0_1,
    /// `plugboard:plugin@0.2.0`: adds `plugin-error.retry-after`.
    V0_2,
}

impl Contract {
    /// The version new plugins are built against.
    pub const CURRENT: Contract = Contract::V0_2;

    /// Every version this host loads, newest first.
    pub const ALL: [Contract; 2] = [Contract::V0_2, Contract::V0_1];

    /// The semantic version, e.g. `0.2.0`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }
}

impl Serialize for Contract {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// As serialized: the version string, one of [`Contract::ALL`].
impl JsonSchema for Contract {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Contract")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "enum": Contract::ALL.map(Contract::as_str)})
    }
}

/// Which of the three worlds a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Exports `plugboard:plugin/transform`.
    Transformer,
    /// Exports `plugboard:plugin/reader`.
    Source,
    /// Exports `plugboard:plugin/writer`.
    Sink,
}

impl Kind {
    /// The fully qualified world name at the current contract, e.g.
    /// `plugboard:plugin/transformer@0.2.0`.
    pub fn world(self) -> String {
        self.world_at(Contract::CURRENT)
    }

    /// The fully qualified world name at `contract`.
    pub fn world_at(self, contract: Contract) -> String {
        format!("plugboard:plugin/{}@{}", self.as_str(), contract.as_str())
    }

    /// The interface this kind exports at `contract`, e.g. `plugboard:plugin/transform@0.2.0`.
    pub fn export_at(self, contract: Contract) -> String {
        format!("plugboard:plugin/{}@{}", self.interface(), contract.as_str())
    }

    /// The name of the interface this kind exports: `transform`, `reader` or `writer`.
    pub fn interface(self) -> &'static str {
        match self {
            Kind::Transformer => "transform",
            Kind::Source => "reader",
            Kind::Sink => "writer",
        }
    }

    /// The function of that interface: `transform`, `read` or `write`.
    pub fn function(self) -> &'static str {
        match self {
            Kind::Transformer => "transform",
            Kind::Source => "read",
            Kind::Sink => "write",
        }
    }

    /// `transformer`, `source` or `sink`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Transformer => "transformer",
            Kind::Source => "source",
            Kind::Sink => "sink",
        }
    }

    /// All kinds.
    pub const ALL: [Kind; 3] = [Kind::Transformer, Kind::Source, Kind::Sink];
}

/// Capabilities a plugin requests; the operator grants a subset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Hosts the plugin may call over HTTP: `host`, `host:port`, `*.domain`, optionally with an
    /// `http://` or `https://` scheme. Loopback and private addresses must be named exactly.
    #[serde(default)]
    pub outbound_hosts: Vec<String>,
    /// Plain configuration keys the plugin reads.
    #[serde(default)]
    pub config_keys: Vec<String>,
    /// Secret configuration keys (never echoed back by the host).
    #[serde(default)]
    pub secret_keys: Vec<String>,
    /// Key-value buckets the plugin uses through `wasi:keyvalue/store`.
    #[serde(default)]
    pub key_value: Vec<String>,
    /// Connections (operator-held credentials) whose hosts the plugin calls: the host adds the
    /// credential to those requests, and the plugin never sees it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<String>,
}

/// A plugin's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Manifest")]
pub struct Manifest {
    /// Lower-case letters, digits and dashes; 1 to 64 characters.
    pub name: String,
    /// Semantic version.
    #[schemars(with = "String")]
    pub version: semver::Version,
    /// Which world the component implements.
    pub kind: Kind,
    /// The full world name; defaults to the kind's world at the current WIT version. Naming an
    /// earlier contract's world is allowed (a plugin built against it says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
    /// One line on what the plugin does.
    #[serde(default)]
    pub description: String,
    /// Who wrote it.
    #[serde(default)]
    pub author: String,
    /// What it asks to use.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// The budget it asks for; the host and the operator may lower it.
    #[serde(default)]
    pub budget: BudgetLimits,
}

impl Manifest {
    /// Parses and validates a TOML manifest.
    ///
    /// # Errors
    /// [`Error::ManifestInvalid`] naming the offending field.
    pub fn from_toml(text: &str) -> Result<Manifest> {
        let manifest: Manifest = toml::from_str(text).map_err(|err| Error::manifest(err.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The world this manifest declares.
    pub fn world(&self) -> String {
        self.world.clone().unwrap_or_else(|| self.kind.world())
    }

    /// The contract of the world the manifest names (the current one when it names none); `None`
    /// when the named world is no world of its kind at any contract this host loads.
    pub fn contract(&self) -> Option<Contract> {
        let Some(world) = &self.world else { return Some(Contract::CURRENT) };
        Contract::ALL.into_iter().find(|contract| *world == self.kind.world_at(*contract))
    }

    /// Checks the fields serde cannot: name syntax, world/kind agreement, key names.
    ///
    /// # Errors
    /// [`Error::ManifestInvalid`] naming the offending field.
    pub fn validate(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !self.name.starts_with('-');
        if !name_ok {
            return Err(Error::manifest(format!(
                "name `{}` must be 1-64 lower-case letters, digits or dashes",
                self.name
            )));
        }
        if let Some(world) = &self.world
            && self.contract().is_none()
        {
            return Err(Error::manifest(format!(
                "world `{world}` does not match kind `{}` (expected `{}`{})",
                self.kind.as_str(),
                self.kind.world(),
                Contract::ALL[1..]
                    .iter()
                    .map(|earlier| format!(
                        " or, built against an earlier contract, `{}`",
                        self.kind.world_at(*earlier)
                    ))
                    .collect::<String>()
            )));
        }
        let caps = &self.capabilities;
        for key in caps.config_keys.iter().chain(&caps.secret_keys) {
            if key.is_empty() || key.chars().any(char::is_whitespace) {
                return Err(Error::manifest(format!("config key `{key}` is empty or has white space")));
            }
        }
        if let Some(key) = caps.config_keys.iter().find(|key| caps.secret_keys.contains(key)) {
            return Err(Error::manifest(format!("key `{key}` is both a config key and a secret key")));
        }
        for bucket in &caps.key_value {
            if let Some(problem) = crate::host::keyvalue::bucket_name_problem(bucket) {
                return Err(Error::manifest(format!("key-value bucket {bucket:?}: {problem}")));
            }
        }
        for host in &caps.outbound_hosts {
            crate::host::outbound::HostPattern::parse(host)
                .map_err(|reason| Error::manifest(format!("outbound host `{host}`: {reason}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_manifest() {
        let manifest = Manifest::from_toml(
            r#"
            name = "http-sink"
            version = "1.2.3"
            kind = "sink"
            description = "POSTs batches"
            author = "Plugboard"
            [capabilities]
            outbound_hosts = ["https://api.example.com", "127.0.0.1:8080"]
            config_keys = ["url"]
            secret_keys = ["token"]
            [budget]
            fuel = 1000
            timeout_ms = 250
            "#,
        )
        .expect("valid manifest");
        assert_eq!(manifest.world(), "plugboard:plugin/sink@0.2.0");
        let earlier = Manifest::from_toml(
            "name = \"x\"\nversion = \"1.0.0\"\nkind = \"sink\"\nworld = \"plugboard:plugin/sink@0.1.0\"",
        )
        .expect("an earlier contract's world");
        assert_eq!(earlier.contract(), Some(Contract::V0_1));
        assert_eq!(manifest.budget.timeout_ms, Some(250));
        assert_eq!(manifest.capabilities.secret_keys, vec!["token".to_string()]);
    }

    #[test]
    fn rejects_bad_manifests_with_the_reason() {
        let cases = [
            ("name = \"x\"\nversion = \"1.0.0\"\nkind = \"transformer\"\nsurprise = 1", "unknown field `surprise`"),
            ("name = \"Bad Name\"\nversion = \"1.0.0\"\nkind = \"transformer\"", "name `Bad Name`"),
            ("name = \"x\"\nversion = \"one\"\nkind = \"transformer\"", "version"),
            ("name = \"x\"\nversion = \"1.0.0\"\nkind = \"mapper\"", "unknown variant `mapper`"),
            (
                "name = \"x\"\nversion = \"1.0.0\"\nkind = \"sink\"\nworld = \"plugboard:plugin/transformer@0.1.0\"",
                "does not match kind",
            ),
            (
                "name = \"x\"\nversion = \"1.0.0\"\nkind = \"sink\"\n[capabilities]\nconfig_keys = [\"a\"]\nsecret_keys = [\"a\"]",
                "both a config key and a secret key",
            ),
            (
                "name = \"x\"\nversion = \"1.0.0\"\nkind = \"sink\"\n[capabilities]\noutbound_hosts = [\"ftp://x\"]",
                "outbound host `ftp://x`",
            ),
            (
                "name = \"x\"\nversion = \"1.0.0\"\nkind = \"sink\"\n[capabilities]\nkey_value = [\"\"]",
                "must not be empty",
            ),
        ];
        for (text, expected) in cases {
            match Manifest::from_toml(text) {
                Err(Error::ManifestInvalid { reason }) => {
                    assert!(reason.contains(expected), "{reason:?} should mention {expected:?}")
                }
                other => panic!("expected manifest-invalid for {text:?}, got {other:?}"),
            }
        }
    }
}
