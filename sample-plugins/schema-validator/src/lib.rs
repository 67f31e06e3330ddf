//! `schema-validator`: checks JSON records against a JSON Schema from config.
//!
//! Config `schema` is a JSON Schema. Supported keywords (the ones record validation uses): `type`
//! (a name or a list), `enum`, `const`, `properties`, `required`, `additionalProperties` (boolean or
//! schema), `items`, `minItems`, `maxItems`, `minLength`, `maxLength`, `minimum`, `maximum`,
//! `exclusiveMinimum`, `exclusiveMaximum`, `allOf`, `anyOf`, `oneOf`, `not`. Unknown keywords are
//! ignored, as the specification asks. Valid records pass through unchanged; if any record is
//! invalid the batch fails with `invalid-input`, listing every invalid record's index and each
//! reason with the JSON pointer of the offending value.

use plugboard_plugin_sdk::{Batch, PluginError, RecordIssue, Transformer, config, json};
use serde_json::{Map, Value};

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    let actual = type_name(value);
    actual == name || (name == "number" && actual == "integer")
}

/// Appends every violation of `schema` by `value` (at JSON pointer `at`) to `errors`.
fn validate(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Value::Object(schema) = schema else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{}: no value is allowed here", pointer(at)));
        }
        return;
    };
    check_type(schema, value, at, errors);
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(value)
    {
        errors.push(format!("{}: {value} is not one of {}", pointer(at), Value::Array(options.clone())));
    }
    if let Some(expected) = schema.get("const")
        && expected != value
    {
        errors.push(format!("{}: must equal {expected}", pointer(at)));
    }
    match value {
        Value::Object(object) => check_object(schema, object, at, errors),
        Value::Array(items) => check_array(schema, items, at, errors),
        Value::String(text) => check_string(schema, text, at, errors),
        Value::Number(number) => check_number(schema, number.as_f64().unwrap_or(f64::NAN), at, errors),
        _ => {}
    }
    check_combinators(schema, value, at, errors);
}

fn pointer(at: &str) -> &str {
    if at.is_empty() { "/" } else { at }
}

fn check_type(schema: &Map<String, Value>, value: &Value, at: &str, errors: &mut Vec<String>) {
    let allowed: Vec<&str> = match schema.get("type") {
        Some(Value::String(name)) => vec![name.as_str()],
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    if !allowed.iter().any(|name| has_type(value, name)) {
        errors.push(format!("{}: expected {}, found {}", pointer(at), allowed.join(" or "), type_name(value)));
    }
}

fn check_object(schema: &Map<String, Value>, object: &Map<String, Value>, at: &str, errors: &mut Vec<String>) {
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                errors.push(format!("{}: missing required property `{name}`", pointer(at)));
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, child) in object {
        let child_at = format!("{at}/{}", name.replace('~', "~0").replace('/', "~1"));
        match properties.and_then(|p| p.get(name)) {
            Some(child_schema) => validate(child_schema, child, &child_at, errors),
            None => match schema.get("additionalProperties") {
                Some(Value::Bool(false)) => errors.push(format!("{}: property `{name}` is not allowed", pointer(at))),
                Some(extra @ Value::Object(_)) => validate(extra, child, &child_at, errors),
                _ => {}
            },
        }
    }
}

fn check_array(schema: &Map<String, Value>, items: &[Value], at: &str, errors: &mut Vec<String>) {
    let len = items.len() as u64;
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && len < min
    {
        errors.push(format!("{}: {len} items, fewer than {min}", pointer(at)));
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && len > max
    {
        errors.push(format!("{}: {len} items, more than {max}", pointer(at)));
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate(item_schema, item, &format!("{at}/{i}"), errors);
        }
    }
}

fn check_string(schema: &Map<String, Value>, text: &str, at: &str, errors: &mut Vec<String>) {
    let len = text.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        errors.push(format!("{}: {len} characters, fewer than {min}", pointer(at)));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        errors.push(format!("{}: {len} characters, more than {max}", pointer(at)));
    }
}

fn check_number(schema: &Map<String, Value>, n: f64, at: &str, errors: &mut Vec<String>) {
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(min) = bound("minimum")
        && n < min
    {
        errors.push(format!("{}: {n} is less than the minimum {min}", pointer(at)));
    }
    if let Some(max) = bound("maximum")
        && n > max
    {
        errors.push(format!("{}: {n} is greater than the maximum {max}", pointer(at)));
    }
    if let Some(min) = bound("exclusiveMinimum")
        && n <= min
    {
        errors.push(format!("{}: {n} is not greater than {min}", pointer(at)));
    }
    if let Some(max) = bound("exclusiveMaximum")
        && n >= max
    {
        errors.push(format!("{}: {n} is not less than {max}", pointer(at)));
    }
}

fn check_combinators(schema: &Map<String, Value>, value: &Value, at: &str, errors: &mut Vec<String>) {
    let passes = |sub: &Value| {
        let mut sub_errors = Vec::new();
        validate(sub, value, at, &mut sub_errors);
        sub_errors.is_empty()
    };
    if let Some(Value::Array(all)) = schema.get("allOf") {
        for sub in all {
            validate(sub, value, at, errors);
        }
    }
    if let Some(Value::Array(any)) = schema.get("anyOf")
        && !any.iter().any(passes)
    {
        errors.push(format!("{}: matches none of the `anyOf` schemas", pointer(at)));
    }
    if let Some(Value::Array(one)) = schema.get("oneOf") {
        let matched = one.iter().filter(|sub| passes(sub)).count();
        if matched != 1 {
            errors.push(format!("{}: matches {matched} of the `oneOf` schemas, not exactly one", pointer(at)));
        }
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        errors.push(format!("{}: must not match the `not` schema", pointer(at)));
    }
}

struct SchemaValidator;

impl Transformer for SchemaValidator {
    fn transform(input: Batch) -> Result<Batch, PluginError> {
        let schema: Value = config::json("schema")?;
        if !matches!(schema, Value::Object(_) | Value::Bool(_)) {
            return Err(PluginError::InvalidConfig("`schema` must be a JSON object or boolean".into()));
        }
        let values: Vec<Value> = json::parse_batch(&input)?;
        let issues: Vec<RecordIssue> = values
            .iter()
            .enumerate()
            .filter_map(|(index, value)| {
                let mut reasons = Vec::new();
                validate(&schema, value, "", &mut reasons);
                (!reasons.is_empty()).then(|| RecordIssue { index: u32::try_from(index).unwrap_or(u32::MAX), reasons })
            })
            .collect();
        if issues.is_empty() { Ok(input) } else { Err(PluginError::InvalidInput(issues)) }
    }
}

plugboard_plugin_sdk::export_transformer!(SchemaValidator);
