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
use plugboard_plugin_sdk::projection::Projection;
use plugboard_plugin_sdk::{Batch, PluginError, Transformer, config};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

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

    /// Every path the mapping reads.
    fn paths<'a>(&'a self, out: &mut Vec<&'a Path>) {
        match self {
            Mapping::Path(path) => out.push(path),
            Mapping::Object(fields) => fields.iter().for_each(|(_, mapping)| mapping.paths(out)),
            Mapping::Array(items) => items.iter().for_each(|mapping| mapping.paths(out)),
            Mapping::Constant(_) => {}
        }
    }

    /// Whether this is a plain path that matches nothing in `input`.
    fn is_missing(&self, input: &Value) -> bool {
        matches!(self, Mapping::Path(path) if !path.is_multi() && path.find(input).is_none())
    }
}

/// One record's output, serialized straight from the mapping and the input: no output tree is
/// built and no input value is copied.
#[derive(Clone, Copy)]
struct Mapped<'a> {
    mapping: &'a Mapping,
    input: &'a Value,
    drop_missing: bool,
}

impl Mapped<'_> {
    fn with<'b>(&'b self, mapping: &'b Mapping) -> Mapped<'b> {
        Mapped { mapping, input: self.input, drop_missing: self.drop_missing }
    }
}

impl Serialize for Mapped<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.mapping {
            Mapping::Constant(value) => value.serialize(serializer),
            Mapping::Path(path) if path.is_multi() => serializer.collect_seq(path.select(self.input)),
            Mapping::Path(path) => path.find(self.input).unwrap_or(&Value::Null).serialize(serializer),
            Mapping::Array(items) => serializer.collect_seq(items.iter().map(|item| self.with(item))),
            Mapping::Object(fields) => {
                let mut map = serializer.serialize_map(None)?;
                for (name, mapping) in fields {
                    if !(self.drop_missing && mapping.is_missing(self.input)) {
                        map.serialize_entry(name, &self.with(mapping))?;
                    }
                }
                map.end()
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
        let mut paths = Vec::new();
        mapping.paths(&mut paths);
        // Only what the mapping reads is built; the rest of each record is skipped while parsing.
        let values = Projection::of(paths).parse_batch(&input)?;
        input
            .iter()
            .zip(values)
            .map(|(record, value)| record.with_json(&Mapped { mapping: &mapping, input: &value, drop_missing }))
            .collect()
    }
}

plugboard_plugin_sdk::export_transformer!(JsonMapper);
