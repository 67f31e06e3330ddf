//! `json-mapper`: reshapes each JSON record by a mapping from config.
//!
//! Config `mapping` is a JSON object describing the output. A string starting with `$` is a path
//! into the input record (`$.orderId`, `$.items[*].sku`); a nested object is mapped recursively; an
//! array maps each element; anything else is a constant. A path that matches nothing yields `null`,
//! unless config `drop_missing` is `true`, in which case the field is left out.
//!
//! ```json
//! {"id": "$.orderId", "customer": {"id": "$.customerId"}, "total": "$.orderTotal"}
//! ```

use plugboard_plugin_sdk::path::Path;
use plugboard_plugin_sdk::{Batch, PluginError, Transformer, config, json};
use serde_json::{Map, Value};

/// A compiled mapping: paths are parsed once per batch, not once per record.
enum Mapping {
    Path(Path),
    Object(Vec<(String, Mapping)>),
    Array(Vec<Mapping>),
    Constant(Value),
}

impl Mapping {
    fn compile(spec: &Value) -> Result<Mapping, String> {
        Ok(match spec {
            Value::String(text) if text.starts_with('$') => Mapping::Path(Path::parse(text)?),
            Value::Object(fields) => Mapping::Object(
                fields
                    .iter()
                    .map(|(name, spec)| Ok((name.clone(), Mapping::compile(spec)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Value::Array(items) => Mapping::Array(items.iter().map(Mapping::compile).collect::<Result<_, _>>()?),
            other => Mapping::Constant(other.clone()),
        })
    }

    /// The mapped value, or `None` for a path that matched nothing.
    fn apply(&self, input: &Value, drop_missing: bool) -> Option<Value> {
        match self {
            Mapping::Path(path) => path.get(input),
            Mapping::Constant(value) => Some(value.clone()),
            Mapping::Array(items) => {
                Some(Value::Array(items.iter().map(|m| m.apply(input, drop_missing).unwrap_or(Value::Null)).collect()))
            }
            Mapping::Object(fields) => {
                let mut out = Map::new();
                for (name, mapping) in fields {
                    match mapping.apply(input, drop_missing) {
                        Some(value) => {
                            out.insert(name.clone(), value);
                        }
                        None if drop_missing => {}
                        None => {
                            out.insert(name.clone(), Value::Null);
                        }
                    }
                }
                Some(Value::Object(out))
            }
        }
    }
}

struct JsonMapper;

impl Transformer for JsonMapper {
    fn transform(input: Batch) -> Result<Batch, PluginError> {
        let spec: Value = config::json("mapping")?;
        let mapping = Mapping::compile(&spec).map_err(PluginError::InvalidConfig)?;
        let drop_missing = config::get("drop_missing")?.is_some_and(|v| v == "true");
        let values: Vec<Value> = json::parse_batch(&input)?;
        input
            .iter()
            .zip(values)
            .map(|(record, value)| record.with_json(&mapping.apply(&value, drop_missing).unwrap_or(Value::Null)))
            .collect()
    }
}

plugboard_plugin_sdk::export_transformer!(JsonMapper);
