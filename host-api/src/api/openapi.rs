//! `GET /openapi.json`: an OpenAPI 3.1 document built from the route table in [`super::routes`].

use super::routes::{PAGED, ROUTES, RouteDoc};
use axum::Json;
use serde_json::{Map, Value, json};

fn operation(route: &RouteDoc) -> Value {
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if route.method == "get" && PAGED.contains(&route.path) {
        parameters.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}));
        parameters.push(json!({"name": "cursor", "in": "query", "description": "`next_cursor` of the previous page", "schema": {"type": "integer"}}));
        parameters.push(json!({"name": "order", "in": "query", "description": "`asc` (oldest first) or `desc` (newest first)", "schema": {"type": "string", "enum": ["asc", "desc"], "default": "asc"}}));
    }
    if route.method == "get" && route.path == "/v1/audit" {
        for (name, kind, description) in [
            ("actor", "string", "the token name, exactly"),
            ("action", "string", "the action, e.g. `upload`, `flow-create`"),
            ("target", "string", "part of the target's name"),
            ("since", "integer", "at or after, seconds since the Unix epoch"),
            ("until", "integer", "at or before, seconds since the Unix epoch"),
        ] {
            parameters.push(json!({"name": name, "in": "query", "description": description, "schema": {"type": kind}}));
        }
    }
    let mut op = json!({
        "summary": route.summary,
        "operationId": format!("{}_{}", route.method, route.path.trim_matches('/').replace(['/', '{', '}', '.'], "_")),
        "parameters": parameters,
        "responses": {
            route.success.to_string(): {"description": "success", "content": {"application/json": {}}},
            "default": {"description": "a typed error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
        "x-plugboard-role": route.role(),
    });
    if route.role() != "none" {
        op["security"] = json!([{"bearer": []}]);
    }
    if let Some(media) = route.body {
        op["requestBody"] = json!({"required": true, "content": {media: {}}});
    }
    op
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        entry[route.method] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Plugboard control plane", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        }
    })
}

/// The component schemas, derived from `plugboard-api-types` (draft 2020-12, OpenAPI 3.1's
/// dialect): `Error` and what it refers to.
fn schemas() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| settings.definitions_path = "/components/schemas".into())
        .into_generator();
    let error = generator.subschema_for::<plugboard_api_types::ErrorBody>();
    debug_assert_eq!(error.get("$ref").and_then(Value::as_str), Some("#/components/schemas/Error"));
    let definitions = generator.take_definitions(true);
    Value::Object(definitions)
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
}
