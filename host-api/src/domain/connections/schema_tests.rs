//! The JSON Schemas of a connection as defined (`ConnectionDefinition`, its secrets write-only)
//! and as answered (`Connection`, never its secrets) describe what serde writes and reads; the
//! checker is `plugboard_runtime::schema_check` (its `schema-check` feature).

use super::{ConnectionDefinition, ConnectionKind, PublicConnection, RateLimit};
use plugboard_runtime::schema_check::{check, conforms, schema};
use serde_json::json;

#[test]
fn connection_schemas_describe_what_serde_writes_and_reads() {
    // A connection as defined (its secrets write-only) and as answered (never its secrets).
    let input = json!({
        "kind": "oauth2-refresh-token", "hosts": ["api.example.com"], "secret": "refresh",
        "client_secret": "shh", "token_url": "https://auth.example.com/token", "client_id": "plugboard",
        "scopes": ["read"], "audience": "crm", "probe_url": "https://api.example.com/me",
        "rate_limit": {"per_second": 2.5, "burst": 5, "concurrent": 2}
    });
    let definition: ConnectionDefinition = serde_json::from_value(input.clone()).expect("a definition");
    definition.validate().expect("a valid definition");
    check(&definition, Some(&input));
    let api_key = json!({"kind": "api-key", "hosts": ["*.example.com"], "secret": "k", "header": "X-Key"});
    check(&serde_json::from_value::<ConnectionDefinition>(api_key.clone()).expect("a definition"), Some(&api_key));
    let root = schema::<ConnectionDefinition>(false);
    assert_eq!(root["title"], "ConnectionDefinition");
    assert_eq!(root["properties"]["secret"]["writeOnly"], true);
    assert_eq!(root["properties"]["client_secret"]["writeOnly"], true);
    let answered = PublicConnection {
        name: "crm".into(),
        definition: ConnectionDefinition { secret: None, client_secret: None, ..definition.clone() },
        has_secret: true,
        used_by: vec!["http-sink".into()],
    };
    check(&answered, None);
    let root = schema::<PublicConnection>(false);
    assert_eq!(root["title"], "Connection");
    assert!(root["properties"].get("secret").is_none() && root["properties"].get("client_secret").is_none());
    let leaked = serde_json::to_value(PublicConnection { definition, ..answered }).expect("serializes");
    assert!(conforms(&root, &root, &leaked, "$").is_err(), "an answer with a secret is not a `Connection`");
    let limit = RateLimit { per_second: None, burst: None, concurrent: Some(1) };
    check(&limit, None);
    check(&ConnectionKind::Basic, None);
}
