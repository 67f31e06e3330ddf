//! A strict check that a JSON value conforms to a type's generated JSON Schema, for the tests
//! that prove the runtime's and the store's schemas describe what serde writes and reads (built
//! for this crate's tests and, with the `schema-check` feature, for `plugboard-host-api`'s).
//! Strict where a general validator is lenient: an object's every key must be a property its
//! schema names, and a keyword it does not know fails rather than pass unchecked.

// A test assertion: it fails by panicking, as `assert!` does.
#![allow(clippy::panic, clippy::expect_used)]

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// The schema of `T` for what serde writes (`serialize`) or reads.
pub fn schema<T: JsonSchema>(serialize: bool) -> Value {
    let settings = SchemaSettings::draft2020_12();
    let settings = if serialize { settings.for_serialize() } else { settings.for_deserialize() };
    settings.into_generator().into_root_schema_for::<T>().to_value()
}

/// Annotations: they describe, they do not constrain.
const ANNOTATIONS: &[&str] =
    &["$schema", "$defs", "title", "description", "format", "default", "examples", "readOnly", "writeOnly"];

/// Whether `value` conforms to `schema` (references resolved in `root`), strictly: an object's
/// every key must be a property its schema names (or match its `additionalProperties` schema),
/// so a field serde writes under another name than the schema says fails. A keyword this checker
/// does not know fails too, rather than pass unchecked.
pub fn conforms(root: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let object = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Object(object) => object,
        other => return Err(format!("{at}: the schema {other} admits nothing")),
    };
    for (keyword, expected) in object {
        // Each branch's failure, if it fails.
        let each = |list: &Value| -> Vec<Option<String>> {
            let list = list.as_array().map(Vec::as_slice).unwrap_or_default();
            list.iter().map(|branch| conforms(root, branch, value, at).err()).collect()
        };
        let reasons = |failures: Vec<Option<String>>| failures.into_iter().flatten().collect::<Vec<_>>().join("; ");
        match keyword.as_str() {
            "$ref" => {
                let reference = expected.as_str().unwrap_or_default();
                let pointer = reference.strip_prefix('#').ok_or_else(|| format!("{at}: reference {reference}"))?;
                let target = root.pointer(pointer).ok_or_else(|| format!("{at}: no definition {reference}"))?;
                conforms(root, target, value, at)?;
            }
            "anyOf" | "oneOf" | "allOf" => {
                let failures = each(expected);
                let matched = failures.iter().filter(|failure| failure.is_none()).count();
                let fits = match keyword.as_str() {
                    "anyOf" => matched > 0,
                    "oneOf" => matched == 1,
                    _ => matched == failures.len(),
                };
                if !fits {
                    return Err(format!("{at}: {matched} branches of {keyword} match ({})", reasons(failures)));
                }
            }
            "type" => {
                let types: Vec<&str> = match expected {
                    Value::Array(types) => types.iter().filter_map(Value::as_str).collect(),
                    other => other.as_str().into_iter().collect(),
                };
                let fits = |kind: &str| match kind {
                    "null" => value.is_null(),
                    "boolean" => value.is_boolean(),
                    "integer" => value.is_i64() || value.is_u64(),
                    "number" => value.is_number(),
                    "string" => value.is_string(),
                    "array" => value.is_array(),
                    "object" => value.is_object(),
                    _ => false,
                };
                if !types.iter().any(|kind| fits(kind)) {
                    return Err(format!("{at}: {value} is not of type {expected}"));
                }
            }
            "const" if value != expected => return Err(format!("{at}: {value} is not {expected}")),
            "enum" if !expected.as_array().is_some_and(|list| list.contains(value)) => {
                return Err(format!("{at}: {value} is none of {expected}"));
            }
            "minimum" if value.as_f64().zip(expected.as_f64()).is_some_and(|(v, min)| v < min) => {
                return Err(format!("{at}: {value} is below {expected}"));
            }
            "maximum" if value.as_f64().zip(expected.as_f64()).is_some_and(|(v, max)| v > max) => {
                return Err(format!("{at}: {value} is above {expected}"));
            }
            "const" | "enum" | "minimum" | "maximum" => {}
            "required" => {
                for name in expected.as_array().map(Vec::as_slice).unwrap_or_default() {
                    let name = name.as_str().unwrap_or_default();
                    if value.as_object().is_some_and(|fields| !fields.contains_key(name)) {
                        return Err(format!("{at}: required `{name}` is missing from {value}"));
                    }
                }
            }
            "properties" | "additionalProperties" => {
                let Some(fields) = value.as_object() else { continue };
                if keyword == "additionalProperties" && object.contains_key("properties") {
                    continue; // checked with the properties
                }
                let named = object.get("properties").and_then(Value::as_object);
                for (name, field) in fields {
                    let inner = format!("{at}.{name}");
                    match (named.and_then(|named| named.get(name)), object.get("additionalProperties")) {
                        (Some(property), _) => conforms(root, property, field, &inner)?,
                        (None, Some(rest)) => conforms(root, rest, field, &inner)?,
                        (None, None) => return Err(format!("{inner}: the schema does not describe it")),
                    }
                }
            }
            "items" => {
                for (index, item) in value.as_array().map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
                    conforms(root, expected, item, &format!("{at}[{index}]"))?;
                }
            }
            other if ANNOTATIONS.contains(&other) => {}
            other => return Err(format!("{at}: the checker does not know `{other}`")),
        }
    }
    Ok(())
}

/// `value` conforms to the schemas of `T` for both contracts; `input` (what serde read it from)
/// to the reading one.
pub fn check<T: JsonSchema + serde::Serialize>(value: &T, input: Option<&Value>) {
    let written = serde_json::to_value(value).expect("serializes");
    for serialize in [true, false] {
        let root = schema::<T>(serialize);
        if let Err(reason) = conforms(&root, &root, &written, "$") {
            panic!("{} (serialize: {serialize}): {reason}\nschema: {root:#}", std::any::type_name::<T>());
        }
    }
    if let Some(input) = input {
        let root = schema::<T>(false);
        conforms(&root, &root, input, "$").unwrap_or_else(|reason| panic!("input: {reason}\nschema: {root:#}"));
    }
}
