//! Grants: what the operator allows an installation, and the effective capabilities that result.
//!
//! A plugin gets exactly the intersection of what its manifest requests and what the operator
//! grants. Anything outside it is denied *inside* the plugin call (a typed error the guest sees),
//! never a host failure.

use crate::budget::{Budget, BudgetLimits, BudgetSources};
use crate::host::outbound::HostPattern;
use crate::manifest::Manifest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the operator allows one installation, and its configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Outbound host patterns allowed; each must also be requested by the manifest.
    #[serde(default)]
    pub outbound_hosts: Vec<String>,
    /// Values of plain config keys.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Values of secret keys.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Key-value buckets allowed; each must also be requested by the manifest.
    #[serde(default)]
    pub key_value: Vec<String>,
    /// Connections bound: the manifest's name for each (which it must request) to the
    /// operator's connection that serves it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connections: BTreeMap<String, String>,
    /// Whether an exactly granted host *name* may resolve to a private or loopback address (an
    /// internal service reached by name). Off by default: a name is only as trustworthy as its
    /// DNS. IP literals reach what they name either way; link-local addresses never.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_private: bool,
    /// The operator's budget limits.
    #[serde(default)]
    pub budget: BudgetLimits,
}

/// The capabilities and budget an installation actually runs with.
#[derive(Debug, Clone)]
pub struct Effective {
    /// Outbound hosts both requested and granted (shared by every invocation).
    pub outbound_hosts: std::sync::Arc<[HostPattern]>,
    /// Outbound hosts the manifest requests, granted or not: a denial says which party lacks it.
    pub requested_hosts: std::sync::Arc<[HostPattern]>,
    /// Config and secret values both requested and granted, by key.
    pub config: BTreeMap<String, String>,
    /// Keys the manifest requests (config and secret), granted a value or not.
    pub requested_keys: Vec<String>,
    /// Key-value buckets both requested and granted.
    pub key_value: Vec<String>,
    /// Key-value buckets the manifest requests, granted or not.
    pub requested_buckets: Vec<String>,
    /// The operator's connections bound to names the manifest requests.
    pub connections: std::sync::Arc<[String]>,
    /// The grant's `allow_private`.
    pub allow_private: bool,
    /// The key-value namespace: the plugin's name.
    pub namespace: String,
    /// min(host cap, manifest request, grant).
    pub budget: Budget,
    /// Which of the three set each limit of `budget` (named in budget errors).
    pub budget_sources: BudgetSources,
}

impl Effective {
    /// Intersects `manifest`'s requests with `grant` under the host's `caps`.
    ///
    /// Grants for capabilities the manifest does not request are dropped (and logged): a
    /// grant can narrow what a signed manifest asks for, never widen it.
    pub fn new(manifest: &Manifest, grant: &Grant, caps: Budget) -> Effective {
        let requested = &manifest.capabilities;
        let outbound_hosts = grant
            .outbound_hosts
            .iter()
            .filter(|host| {
                let ok = requested.outbound_hosts.contains(host);
                if !ok {
                    tracing::warn!(plugin = %manifest.name, %host, "grant names an outbound host the manifest does not request; ignored");
                }
                ok
            })
            .filter_map(|host| HostPattern::parse(host).ok())
            .collect();
        let mut config = BTreeMap::new();
        for (key, value) in &grant.config {
            if requested.config_keys.contains(key) {
                config.insert(key.clone(), value.clone());
            } else {
                tracing::warn!(plugin = %manifest.name, %key, "grant sets a config key the manifest does not request; ignored");
            }
        }
        for (key, value) in &grant.secrets {
            if requested.secret_keys.contains(key) {
                config.insert(key.clone(), value.clone());
            } else {
                tracing::warn!(plugin = %manifest.name, "grant sets a secret the manifest does not request; ignored");
            }
        }
        let requested_keys = requested.config_keys.iter().chain(&requested.secret_keys).cloned().collect();
        let key_value = grant
            .key_value
            .iter()
            .filter(|bucket| {
                let ok = requested.key_value.contains(bucket);
                if !ok {
                    tracing::warn!(plugin = %manifest.name, %bucket, "grant names a key-value bucket the manifest does not request; ignored");
                }
                ok
            })
            .cloned()
            .collect();
        let connections = grant
            .connections
            .iter()
            .filter(|(wanted, _)| {
                let ok = requested.connections.contains(wanted);
                if !ok {
                    tracing::warn!(plugin = %manifest.name, connection = %wanted, "grant binds a connection the manifest does not request; ignored");
                }
                ok
            })
            .map(|(_, connection)| connection.clone())
            .collect();
        Effective {
            outbound_hosts,
            connections,
            allow_private: grant.allow_private,
            requested_hosts: requested.outbound_hosts.iter().filter_map(|host| HostPattern::parse(host).ok()).collect(),
            config,
            requested_keys,
            key_value,
            requested_buckets: requested.key_value.clone(),
            namespace: manifest.name.clone(),
            budget: caps.constrained_by(&[manifest.budget, grant.budget]),
            budget_sources: caps.sources(&manifest.budget, &grant.budget),
        }
    }
}
