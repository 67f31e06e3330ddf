//! Documents the API carries whole but does not define: a plugin's signed manifest, a flow
//! definition, an execution, a dead letter, a connection. Their shapes belong to the layer that
//! interprets them (the runtime reads manifests and runs flow definitions; the server records
//! executions), which derives their JSON Schemas; the server adds those schemas to
//! `/openapi.json` under the names below, and these newtypes refer to them by name.
//!
//! A client reads one of these as JSON (`.0`) or, where it links the runtime, as the runtime's own
//! type; the schema in the API document is the contract either way, and the server's test checks
//! that every name referred to here is defined there ([`DOCUMENTS`]).

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The schema names the server must define, one per document type below.
pub const DOCUMENTS: &[&str] =
    &["Manifest", "FlowDefinition", "Execution", "DeadLetter", "Connection", "ConnectionDefinition"];

macro_rules! documents {
    ($( $(#[$doc:meta])* $name:ident; )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            #[serde(transparent)]
            pub struct $name(pub serde_json::Value);

            impl From<serde_json::Value> for $name {
                fn from(value: serde_json::Value) -> $name {
                    $name(value)
                }
            }

            impl JsonSchema for $name {
                fn schema_name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }

                fn inline_schema() -> bool {
                    // Never defined here: always the reference to the server's definition.
                    true
                }

                fn json_schema(_: &mut SchemaGenerator) -> Schema {
                    json_schema!({ "$ref": concat!("#/components/schemas/", stringify!($name)) })
                }
            }
        )*
    };
}

documents! {
    /// A plugin's signed manifest (`plugin.toml`, see `docs/MANIFEST.md`).
    Manifest;
    /// A flow: its steps, branches and trigger (see `docs/flows.md`).
    FlowDefinition;
    /// One run of a flow: status, per-step reports, records in and out, usage, errors.
    Execution;
    /// A record a flow could not deliver, with the step, error and attempts.
    DeadLetter;
    /// A connection as answered: never its secret.
    Connection;
    /// A connection as defined (`PUT /v1/connections/{name}`), with its write-only secret.
    ConnectionDefinition;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_its_json_and_refers_to_its_schema_by_name() {
        let value = serde_json::json!({"name": "order-sync", "steps": []});
        let flow: FlowDefinition =
            serde_json::from_value(value.clone()).ok().unwrap_or(FlowDefinition(serde_json::Value::Null));
        assert_eq!(flow.0, value);
        let schema = schemars::SchemaGenerator::default().subschema_for::<Vec<Execution>>();
        assert_eq!(
            schema.get("items").and_then(|items| items.get("$ref")),
            Some(&"#/components/schemas/Execution".into())
        );
        assert_eq!(DOCUMENTS.len(), 6);
    }
}
