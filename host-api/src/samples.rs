//! The sample plugins, built from source by `build.rs` and embedded in the binary.

use plugboard_runtime::{Grant, Manifest, Plugin, Runtime};

/// A sample plugin compiled into this binary.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedPlugin {
    /// Manifest name.
    pub name: &'static str,
    /// The component.
    pub component: &'static [u8],
    /// `plugin.toml`.
    pub manifest: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/samples.rs"));

/// Loads the sample plugin `name` into `runtime` with `grant`.
///
/// # Errors
/// When there is no such sample or it fails to load.
pub fn load(runtime: &Runtime, name: &str, grant: &Grant) -> anyhow::Result<Plugin> {
    let sample = SAMPLE_PLUGINS
        .iter()
        .find(|sample| sample.name == name)
        .ok_or_else(|| anyhow::anyhow!("no sample plugin named `{name}`"))?;
    let manifest = Manifest::from_toml(sample.manifest)?;
    Ok(runtime.load(sample.component, manifest, grant)?)
}

/// Demo config for each sample plugin, so `serve --demo` and `samples install` answer useful
/// invocations at once (empty for those that need none or need a real endpoint).
pub fn demo_config(name: &str) -> serde_json::Value {
    match name {
        "json-mapper" => {
            serde_json::json!({"mapping": {"id": "$.orderId", "customer": {"id": "$.customerId"}, "total": "$.orderTotal"}})
        }
        "filter" => serde_json::json!({"condition": {"field": "$.total", "op": "gt", "value": 100}}),
        "aggregate" => {
            serde_json::json!({"group_by": "$.region", "aggregations": [{"op": "count", "as": "orders"}, {"op": "sum", "field": "$.total", "as": "revenue"}]})
        }
        "schema-validator" => {
            serde_json::json!({"schema": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}})
        }
        "csv-to-json" => serde_json::json!({"infer_types": "true"}),
        _ => serde_json::json!({}),
    }
}
