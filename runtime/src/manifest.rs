//! The plugin manifest: what a plugin is and what it asks for.
//!
//! Authored as `plugin.toml` beside the plugin's `Cargo.toml`. Unknown fields are rejected so a
//! typo never silently drops a capability or a limit.

use crate::budget::BudgetLimits;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The current version of Plugboard's WIT package; worlds are `plugboard:plugin/<kind>@<this>`.
pub const WIT_PACKAGE_VERSION: &str = "0.1.0";

/// Which of the three worlds a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// The fully qualified world name, e.g. `plugboard:plugin/transformer@0.1.0`.
    pub fn world(self) -> String {
        format!("plugboard:plugin/{}@{WIT_PACKAGE_VERSION}", self.as_str())
    }

    /// The interface this kind exports, e.g. `plugboard:plugin/transform@0.1.0`.
    pub fn export(self) -> String {
        let interface = match self {
            Kind::Transformer => "transform",
            Kind::Source => "reader",
            Kind::Sink => "writer",
        };
        format!("plugboard:plugin/{interface}@{WIT_PACKAGE_VERSION}")
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Lower-case letters, digits and dashes; 1 to 64 characters.
    pub name: String,
    /// Semantic version.
    pub version: semver::Version,
    /// Which world the component implements.
    pub kind: Kind,
    /// The full world name; defaults to the kind's world at the current WIT version.
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
            && *world != self.kind.world()
        {
            return Err(Error::manifest(format!(
                "world `{world}` does not match kind `{}` (expected `{}`)",
                self.kind.as_str(),
                self.kind.world()
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
        assert_eq!(manifest.world(), "plugboard:plugin/sink@0.1.0");
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
