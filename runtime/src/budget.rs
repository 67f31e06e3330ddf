//! Budgets: how much fuel, time, memory and I/O one invocation may use.
//!
//! Three parties limit an invocation: the host (its caps, [`Budget`] in [`crate::RuntimeConfig`]),
//! the plugin's signed manifest (what it asks for, [`BudgetLimits`]) and the operator's grant
//! (what it allows, also [`BudgetLimits`]). The effective budget is the field-wise minimum of the
//! three, so neither a plugin nor an operator can raise what the host allows.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A concrete budget: every limit has a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Wasm fuel (roughly one unit per instruction).
    pub fuel: u64,
    /// Wall-clock deadline for one invocation, host calls (HTTP) included.
    pub timeout: Duration,
    /// Bytes of linear memory, summed over all of the component's memories.
    pub memory_bytes: u64,
    /// Bytes of input (keys, values and headers of the batch).
    pub max_input_bytes: u64,
    /// Bytes of output (keys, values and headers of the returned batch).
    pub max_output_bytes: u64,
    /// Records in one batch, in or out: with the per-record overhead in the byte budgets, this
    /// bounds what one batch can turn into (dead letters, stored executions).
    #[serde(default = "default_max_records")]
    pub max_records: u64,
}

fn default_max_records() -> u64 {
    10_000
}

impl Default for Budget {
    /// The host caps `plugboard` uses unless configured otherwise.
    fn default() -> Budget {
        Budget {
            fuel: 10_000_000_000,
            timeout: Duration::from_secs(10),
            memory_bytes: 256 << 20,
            max_input_bytes: 16 << 20,
            max_output_bytes: 16 << 20,
            max_records: default_max_records(),
        }
    }
}

/// A partial budget, as a manifest requests it or a grant allows it: unset fields do not limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// Inline in schemas: the API's own `BudgetLimits` (plugboard-api-types) is the named one.
#[schemars(inline)]
pub struct BudgetLimits {
    /// Fuel units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Deadline in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Memory in bytes, over all memories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Input bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_bytes: Option<u64>,
    /// Output bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    /// Records per batch, in or out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records: Option<u64>,
}

/// Bytes a guest may have the host copy out of its memory in one call (the return of an export,
/// or the arguments of one host call): twice the larger byte budget, plus 4 MiB for host calls
/// such as a 1 MiB key-value write. wasmtime charges every byte it copies, so a list whose entries
/// all point at one buffer costs what it would cost unaliased and stops here, before the host has
/// allocated more than this; an output within budget always fits (wasmtime's per-entry charge is at
/// most twice the per-record and per-header overhead counted in [`crate::Record::byte_size`]).
pub fn copy_budget(budget: &Budget) -> u64 {
    budget.max_output_bytes.max(budget.max_input_bytes).saturating_mul(2).saturating_add(4 << 20)
}

impl Budget {
    /// This budget with every limit set in `limits` replaced (raised or lowered): how an operator
    /// configures the host caps.
    pub fn with_overrides(self, limits: &BudgetLimits) -> Budget {
        Budget {
            fuel: limits.fuel.unwrap_or(self.fuel),
            timeout: limits.timeout_ms.map_or(self.timeout, Duration::from_millis),
            memory_bytes: limits.memory_bytes.unwrap_or(self.memory_bytes),
            max_input_bytes: limits.max_input_bytes.unwrap_or(self.max_input_bytes),
            max_output_bytes: limits.max_output_bytes.unwrap_or(self.max_output_bytes),
            max_records: limits.max_records.unwrap_or(self.max_records),
        }
    }

    /// This budget lowered, field by field, to every limit in `limits`.
    pub fn constrained_by(self, limits: &[BudgetLimits]) -> Budget {
        let min = |cap: u64, pick: fn(&BudgetLimits) -> Option<u64>| limits.iter().filter_map(pick).fold(cap, u64::min);
        let cap_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        Budget {
            fuel: min(self.fuel, |l| l.fuel),
            timeout: Duration::from_millis(min(cap_ms, |l| l.timeout_ms)),
            memory_bytes: min(self.memory_bytes, |l| l.memory_bytes),
            max_input_bytes: min(self.max_input_bytes, |l| l.max_input_bytes),
            max_output_bytes: min(self.max_output_bytes, |l| l.max_output_bytes),
            max_records: min(self.max_records, |l| l.max_records),
        }
    }
}

/// Which of the three parties set an effective limit: where to go to raise it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitSource {
    /// The host's cap (`[caps]` in the server's config): the operator of the host raises it.
    #[default]
    Host,
    /// The plugin's signed manifest (`[budget]` in `plugin.toml`): the publisher raises it in a
    /// new version.
    Manifest,
    /// The operator's grant for this installation: raised with `plugboard grant`.
    Grant,
}

impl LimitSource {
    /// Where the limit named `field` (a [`BudgetLimits`] field, e.g. `fuel`) came from and how to
    /// raise it, as one clause of an error message.
    pub fn explain(self, field: &str) -> String {
        match self {
            LimitSource::Host => {
                format!("the limit is the host's cap (`[caps] {field}` in the server's config)")
            }
            LimitSource::Manifest => format!(
                "the limit comes from the plugin's manifest (`[budget] {field}` in plugin.toml: raise it and publish a new version)"
            ),
            LimitSource::Grant => format!(
                "the limit comes from the operator's grant (`budget.{field}`: raise it with `plugboard grant <plugin> --{} N`)",
                field.replace('_', "-")
            ),
        }
    }
}

/// Which party set each limit of an effective [`Budget`] (see [`Budget::sources`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSources {
    /// Of [`Budget::fuel`].
    pub fuel: LimitSource,
    /// Of [`Budget::timeout`].
    pub timeout: LimitSource,
    /// Of [`Budget::memory_bytes`].
    pub memory_bytes: LimitSource,
    /// Of [`Budget::max_input_bytes`].
    pub max_input_bytes: LimitSource,
    /// Of [`Budget::max_output_bytes`].
    pub max_output_bytes: LimitSource,
    /// Of [`Budget::max_records`].
    pub max_records: LimitSource,
}

impl Budget {
    /// Which of `manifest` and `grant` (or, when neither is lower, this cap) sets each field of
    /// `self.constrained_by(&[manifest, grant])`. A limit at the cap is the host's (raising the
    /// others would not help); when the manifest and the grant tie below it, the manifest is named
    /// (raising the grant alone would not help).
    pub fn sources(self, manifest: &BudgetLimits, grant: &BudgetLimits) -> BudgetSources {
        let pick = |cap: u64, field: fn(&BudgetLimits) -> Option<u64>| {
            let effective = [field(manifest), field(grant)].into_iter().flatten().fold(cap, u64::min);
            // At the cap, only the host can raise it, whatever the others asked for.
            if effective == cap {
                LimitSource::Host
            } else if field(manifest) == Some(effective) {
                LimitSource::Manifest
            } else if field(grant) == Some(effective) {
                LimitSource::Grant
            } else {
                LimitSource::Host
            }
        };
        BudgetSources {
            fuel: pick(self.fuel, |l| l.fuel),
            timeout: pick(u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX), |l| l.timeout_ms),
            memory_bytes: pick(self.memory_bytes, |l| l.memory_bytes),
            max_input_bytes: pick(self.max_input_bytes, |l| l.max_input_bytes),
            max_output_bytes: pick(self.max_output_bytes, |l| l.max_output_bytes),
            max_records: pick(self.max_records, |l| l.max_records),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_budget_is_the_fieldwise_minimum() {
        let host = Budget {
            fuel: 1_000,
            timeout: Duration::from_millis(500),
            memory_bytes: 64 << 20,
            max_input_bytes: 1_000,
            max_output_bytes: 2_000,
            max_records: 100,
        };
        let manifest = BudgetLimits { fuel: Some(5_000), timeout_ms: Some(100), ..Default::default() };
        let grant = BudgetLimits { memory_bytes: Some(1 << 20), max_output_bytes: Some(10), ..Default::default() };
        let effective = host.constrained_by(&[manifest, grant]);
        assert_eq!(
            effective,
            Budget {
                fuel: 1_000,
                timeout: Duration::from_millis(100),
                memory_bytes: 1 << 20,
                max_input_bytes: 1_000,
                max_output_bytes: 10,
                max_records: 100,
            }
        );
        let sources = host.sources(&manifest, &grant);
        assert_eq!(sources.fuel, LimitSource::Host);
        assert_eq!(sources.timeout, LimitSource::Manifest);
        assert_eq!(sources.memory_bytes, LimitSource::Grant);
        assert_eq!(sources.max_output_bytes, LimitSource::Grant);
        // A tie names the manifest: raising the grant alone would not help.
        let tied = BudgetLimits { fuel: Some(500), ..Default::default() };
        assert_eq!(host.sources(&tied, &tied).fuel, LimitSource::Manifest);
        // A manifest asking for exactly the cap (or more) is not what limits it.
        let at_cap = BudgetLimits { fuel: Some(1_000), timeout_ms: Some(500), ..Default::default() };
        assert_eq!(host.sources(&at_cap, &BudgetLimits::default()).fuel, LimitSource::Host);
        assert_eq!(host.sources(&at_cap, &BudgetLimits::default()).timeout, LimitSource::Host);
    }
}
