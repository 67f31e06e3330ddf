//! `GET /openapi.json`: an OpenAPI 3.1 document built from the route table in [`super::routes`].

use super::routes::{ALSO, PAGED, ROUTES, RouteDoc, SchemaFn};
use axum::Json;
use schemars::transform::{RecursiveTransform, ReplaceBoolSchemas};
use schemars::{Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

/// The routes' `true`/`false` query switches.
const SWITCHES: &[(&str, &str, &str, &str)] = &[
    ("post", "/v1/plugins", "activate", "make the uploaded version the active one (admin)"),
    ("post", "/v1/plugins", "allow_rollback", "admit a version below the highest ever installed (admin; audited)"),
    (
        "post",
        "/v1/plugins/{name}/versions/{version}/activate",
        "allow_rollback",
        "activate a version below the highest ever installed (audited)",
    ),
];

fn operation(route: &RouteDoc, generator: &mut SchemaGenerator) -> Value {
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            // Executions, deliveries and dead letters are numbered; keys are named by their id.
            let numbered = name == "id" && !route.path.starts_with("/v1/keys");
            let schema = if numbered { json!({"type": "integer", "minimum": 0}) } else { json!({"type": "string"}) };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    if route.method == "get" && PAGED.contains(&route.path) {
        parameters.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}));
        parameters.push(json!({"name": "cursor", "in": "query", "description": "`next_cursor` of the previous page", "schema": {"type": "integer", "minimum": 0}}));
        parameters.push(json!({"name": "order", "in": "query", "description": "`asc` (oldest first) or `desc` (newest first)", "schema": {"type": "string", "enum": ["asc", "desc"], "default": "asc"}}));
    }
    for (method, path, name, description) in SWITCHES {
        if *method == route.method && *path == route.path {
            parameters.push(json!({"name": name, "in": "query", "description": description, "schema": {"type": "boolean", "default": false}}));
        }
    }
    if route.method == "get" && route.path == "/v1/audit" {
        let action = generator.subschema_for::<plugboard_api_types::access::AuditAction>();
        for (name, schema, description) in [
            ("actor", json!({"type": "string"}), "the token name, exactly"),
            ("action", action.to_value(), "the action, e.g. `upload`, `flow-create`"),
            ("target", json!({"type": "string"}), "part of the target's name"),
            ("since", json!({"type": "integer", "minimum": 0}), "at or after, seconds since the Unix epoch"),
            ("until", json!({"type": "integer", "minimum": 0}), "at or before, seconds since the Unix epoch"),
        ] {
            parameters.push(json!({"name": name, "in": "query", "description": description, "schema": schema}));
        }
    }
    let answer = |schema: Option<SchemaFn>, generator: &mut SchemaGenerator| match schema {
        Some(schema) => {
            let media = if route.path == "/metrics" { "text/plain" } else { "application/json" };
            json!({"description": "success", "content": {media: {"schema": schema(generator)}}})
        }
        None => json!({"description": "success, no body"}),
    };
    let mut responses = Map::new();
    responses.insert(route.success.to_string(), answer(route.response, generator));
    for (method, path, status) in ALSO {
        if *method == route.method && *path == route.path {
            responses.insert(status.to_string(), answer(route.response, generator));
        }
    }
    let error = generator.subschema_for::<plugboard_api_types::ErrorBody>();
    let error = if route.path == "/v1/plugins/{name}/invoke" {
        // An invocation that ran answers what it cost too; one refused before it ran does not.
        let failed = generator.subschema_for::<plugboard_api_types::plugins::InvokeFailed>();
        json!({"anyOf": [failed, error]})
    } else {
        error.to_value()
    };
    responses.insert(
        "default".into(),
        json!({"description": "a typed error", "content": {"application/json": {"schema": error}}}),
    );
    let mut op = json!({
        "summary": route.summary,
        "operationId": format!("{}_{}", route.method, route.path.trim_matches('/').replace(['/', '{', '}', '.'], "_")),
        "parameters": parameters,
        "responses": responses,
        "x-plugboard-role": route.role(),
    });
    if route.role() != "none" {
        op["security"] = json!([{"bearer": []}]);
    }
    if let (Some(media), Some(schema)) = (route.body, route.request) {
        let schema = schema(generator);
        let mut content = Map::new();
        content.insert(media.into(), json!({"schema": schema}));
        if matches!((route.method, route.path), ("post", "/v1/flows") | ("put", "/v1/flows/{name}")) {
            // Flow definitions are also taken as YAML.
            content.insert("application/yaml".into(), json!({"schema": schema}));
        }
        if route.path == "/v1/plugins" {
            // Generated clients send raw bytes as `application/octet-stream`; the server reads
            // the body whatever its declared type.
            content.insert("application/octet-stream".into(), json!({"schema": schema}));
        }
        if route.path == "/v1/hooks/{name}" {
            // Senders post JSON, forms (Slack) or anything their scheme signs.
            content.insert("application/x-www-form-urlencoded".into(), json!({"schema": schema}));
        }
        // Bodies that are optional (`null` or empty) are still described: a client sends one.
        op["requestBody"] = json!({"required": true, "content": content});
    }
    op
}

/// The document.
pub fn document() -> Value {
    let mut no_bool_schemas = ReplaceBoolSchemas::default();
    no_bool_schemas.skip_additional_properties = true;
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| settings.definitions_path = "/components/schemas".into())
        .with_transform(no_bool_schemas)
        .with_transform(RecursiveTransform(string_enums))
        .into_generator();
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        entry[route.method] = operation(route, &mut generator);
    }
    documents(&mut generator);
    let mut schemas = generator.take_definitions(true);
    name_recursive_branches(&mut schemas);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Plugboard control plane", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": Value::Object(schemas),
        }
    })
}

/// A `oneOf` of string constants (what schemars writes for an enum whose variants are documented)
/// as one `enum` of strings, the variants' descriptions kept in the schema's own: the same set of
/// values, in the form client generators read as an enumeration (`openapi-python-client` parses a
/// `oneOf` of constants as its first constant only).
fn string_enums(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else { return };
    let Some(Value::Array(branches)) = object.get("oneOf") else { return };
    let constants: Option<Vec<(Value, Option<String>)>> = branches
        .iter()
        .map(|branch| {
            let constant =
                branch.get("const").filter(|c| c.is_string() && branch.get("type") == Some(&json!("string")))?;
            let extra = branch.as_object()?.keys().any(|k| !matches!(k.as_str(), "type" | "const" | "description"));
            (!extra).then(|| (constant.clone(), branch.get("description").and_then(Value::as_str).map(str::to_string)))
        })
        .collect();
    let Some(constants) = constants.filter(|c| !c.is_empty()) else { return };
    object.remove("oneOf");
    let described: Vec<String> = constants
        .iter()
        .filter_map(|(value, about)| {
            about.as_ref().map(|about| format!("`{}`: {about}", value.as_str().unwrap_or_default()))
        })
        .collect();
    if !described.is_empty() {
        let own = object.get("description").and_then(Value::as_str).map(|d| format!("{d}\n\n")).unwrap_or_default();
        object.insert("description".into(), format!("{own}{}", described.join("\n")).into());
    }
    object.insert("type".into(), "string".into());
    object.insert("enum".into(), constants.into_iter().map(|(value, _)| value).collect());
}

/// Gives each inline branch of a union that refers to itself (a route's `Condition`: `all`, `any`,
/// `not` of conditions, or a field test) a schema of its own, `Condition` + the branch's first
/// property (`ConditionAll`, …, `ConditionField`), and the union `$ref`s to them: the same
/// document, in the form client generators can build recursive models from.
fn name_recursive_branches(schemas: &mut Map<String, Value>) {
    let recursive: Vec<String> = schemas
        .iter()
        .filter(|(name, schema)| {
            let itself = format!("\"#/components/schemas/{name}\"");
            schema.get("anyOf").is_some_and(|branches| branches.to_string().contains(&itself))
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in recursive {
        let Some(Value::Array(branches)) = schemas.get_mut(&name).and_then(|s| s.get_mut("anyOf")).map(std::mem::take)
        else {
            continue;
        };
        let mut named = Vec::new();
        let mut hoisted = Vec::new();
        for branch in branches {
            let first = branch.get("properties").and_then(Value::as_object).and_then(|p| p.keys().next().cloned());
            match first {
                Some(first) if branch.get("$ref").is_none() => {
                    let mut chars = first.chars();
                    let title: String = chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars).collect();
                    let branch_name = format!("{name}{title}");
                    named.push(json!({"$ref": format!("#/components/schemas/{branch_name}")}));
                    hoisted.push((branch_name, branch));
                }
                _ => named.push(branch),
            }
        }
        if let Some(union) = schemas.get_mut(&name) {
            union["anyOf"] = Value::Array(named);
        }
        schemas.extend(hoisted);
    }
}

/// The documents `plugboard-api-types` carries by name (`documents::DOCUMENTS`), defined by the
/// layers that own their shapes: the runtime's manifest and flow definition, the store's
/// execution and dead letter, the domain's connection.
fn documents(generator: &mut SchemaGenerator) {
    generator.subschema_for::<plugboard_runtime::Manifest>();
    generator.subschema_for::<plugboard_runtime::flow::FlowDefinition>();
    generator.subschema_for::<crate::store::ExecutionRecord>();
    generator.subschema_for::<crate::store::DeadLetterRecord>();
    generator.subschema_for::<crate::domain::connections::PublicConnection>();
    generator.subschema_for::<crate::domain::connections::ConnectionDefinition>();
}

/// `GET /openapi.json`.
pub async fn openapi_get() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugboard_api_types::ApiErrorCode;

    #[test]
    fn the_error_schema_is_the_error_body_and_names_every_runtime_code() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Error"]["required"], json!(["code", "message"]), "{schemas:#}");
        let codes = schemas["ApiErrorCode"].to_string();
        for code in plugboard_runtime::ErrorCode::ALL {
            let api = crate::api::error::api_code(*code);
            assert_eq!(api.as_str(), code.as_str(), "the API answers the runtime's code as it is");
            assert!(codes.contains(&format!("\"{}\"", api.as_str())), "{code} missing from {codes}");
        }
        assert!(codes.contains(&format!("\"{}\"", ApiErrorCode::Unauthorized.as_str())));
    }

    fn references(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    found.push(target.clone());
                }
                map.values().for_each(|v| references(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| references(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_route_the_document_treats_specially_exists() {
        let exists = |method: &str, path: &str| ROUTES.iter().any(|r| r.method == method && r.path == path);
        for (method, path, _) in ALSO {
            assert!(exists(method, path), "ALSO: {method} {path}");
        }
        for (method, path, _, _) in SWITCHES {
            assert!(exists(method, path), "SWITCHES: {method} {path}");
        }
        for path in PAGED {
            assert!(exists("get", path), "PAGED: {path}");
        }
        for (method, path) in [
            ("post", "/v1/plugins/{name}/invoke"),
            ("get", "/metrics"),
            ("post", "/v1/flows"),
            ("put", "/v1/flows/{name}"),
            ("post", "/v1/plugins"),
            ("post", "/v1/hooks/{name}"),
            ("get", "/v1/audit"),
        ] {
            assert!(exists(method, path), "{method} {path} is named in operation()");
        }
    }

    #[test]
    fn every_body_has_a_schema_and_every_reference_is_defined() {
        let doc = document();
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method];
            if route.body.is_some() {
                let content =
                    op["requestBody"]["content"].as_object().map(|c| c.values().all(|m| m.get("schema").is_some()));
                assert_eq!(content, Some(true), "{} {}: request body without a schema", route.method, route.path);
            }
            let success = &op["responses"][route.success.to_string()];
            let has_body = success.get("content").is_some();
            assert_eq!(has_body, route.success != 204 && route.method != "options", "{} {}", route.method, route.path);
        }
        let mut found = Vec::new();
        references(&doc, &mut found);
        let schemas = &doc["components"]["schemas"];
        for target in &found {
            let name = target.strip_prefix("#/components/schemas/").unwrap_or(target);
            assert!(schemas.get(name).is_some(), "{target} is referred to and not defined");
        }
        for name in plugboard_api_types::documents::DOCUMENTS {
            assert!(found.iter().any(|t| t.ends_with(&format!("/{name}"))), "{name} is never referred to");
            assert!(schemas.get(*name).is_some(), "the document {name} has no schema");
        }
    }
}
