//! The route table: one macro call declares every route's method, path, handler, access rule and
//! summary, and from it come the axum router, the access check each route's layer runs
//! ([`access::enforce`]) and the OpenAPI document, so the three cannot drift apart.

use super::access::{self, Access};
use super::auth::Role;
use super::{AppState, ServerLimits, admin, connections, flows, hooks, metrics, plugins};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use plugboard_api_types::access::{
    AddKey, AuditPage, CreateToken, CreatedToken, Key, KeyList, Liveness, Readiness, TokenInfo, TokenList,
};
use plugboard_api_types::connections::{ConnectionList, ConnectionProbe, MetricsHistory};
use plugboard_api_types::documents::{Connection, ConnectionDefinition, Execution, FlowDefinition};
use plugboard_api_types::flows::{
    DeadLetterPage, DeliveryState, ExecutionPage, FlowList, ReplayRequest, Replayed, RunRequest, WebhookAnswer,
    WebhookSecret,
};
use plugboard_api_types::plugins::{
    ActiveVersion, ConfigRequest, ConfigView, Grants, Health, Installed, InvokeRequest, Invoked, PluginDetail,
    PluginList,
};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use std::convert::Infallible;
use tower_http::timeout::TimeoutLayer;

/// One documented route.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    /// HTTP method, lower case.
    pub method: &'static str,
    /// Path with `{param}` segments.
    pub path: &'static str,
    /// Who may call it, enforced by [`access::enforce`] before the handler runs.
    pub access: Access,
    /// One line on what it does.
    pub summary: &'static str,
    /// The request body's media type, if it takes one.
    pub body: Option<&'static str>,
    /// Status of a successful answer.
    pub success: u16,
    /// The request body's schema, if it takes one.
    pub request: Option<SchemaFn>,
    /// The successful answer's schema; none for `204` (and the handshake's empty `200`).
    pub response: Option<SchemaFn>,
}

/// A body's JSON Schema, registering what it refers to in the generator.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T` (a `plugboard-api-types` type).
const fn of<T: JsonSchema>() -> Option<SchemaFn> {
    Some(|generator| generator.subschema_for::<T>())
}

/// A body of any shape: a webhook sender's own format, the OpenAPI document itself.
const ANY: Option<SchemaFn> = Some(|_| json_schema!({}));
/// A plugin upload: the signed component's bytes.
const WASM_BYTES: Option<SchemaFn> = Some(|_| json_schema!({"type": "string", "format": "binary"}));
/// Prometheus' text format.
const TEXT: Option<SchemaFn> = Some(|_| json_schema!({"type": "string"}));

impl RouteDoc {
    /// The least role that may call it: `none`, `invoker`, `publisher` or `admin`.
    pub fn role(&self) -> &'static str {
        self.access.role_name()
    }
}

macro_rules! routes {
    ($( $method:ident $path:literal => $handler:path, access = $access:expr, body = $body:expr, ok = $ok:literal, upload = $upload:literal, request = $request:expr, response = $response:expr, $summary:literal; )*) => {
        /// Every route, as documented.
        pub const ROUTES: &[RouteDoc] = &[
            $( RouteDoc { method: stringify!($method), path: $path, access: $access, summary: $summary, body: $body, success: $ok, request: $request, response: $response } ),*
        ];

        /// The router for every route. Uploads get `max_upload_bytes` and `upload_timeout` (a
        /// Python or JavaScript component is tens of MB and compiles for many seconds, possibly
        /// after others waiting for a compile slot); other requests `max_body_bytes` and
        /// `request_timeout` (408 past it).
        pub fn router(limits: &ServerLimits) -> Router<AppState> {
            let mut router = Router::new();
            $(
                let (size, time) = if $upload {
                    (limits.max_upload_bytes, limits.upload_timeout)
                } else {
                    (limits.max_body_bytes, limits.request_timeout)
                };
                router = router.route(
                    $path,
                    axum::routing::$method($handler)
                        .layer::<_, Infallible>(DefaultBodyLimit::max(size))
                        // `route_layer`: only requests that matched a method; another method stays the
                        // router's 405, not a 401 or a 403 about the wrong route.
                        .route_layer(axum::middleware::from_fn(|request: axum::extract::Request, next: axum::middleware::Next| access::enforce($access, request, next)))
                        .layer::<_, Infallible>(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, time)),
                );
            )*
            router
        }
    };
}

/// Other statuses a route answers successfully, with the same schema: an upload of a version
/// already installed (200), a webhook delivery repeated, ignored or a handshake (200).
pub const ALSO: &[(&str, &str, u16)] = &[("post", "/v1/plugins", 200), ("post", "/v1/hooks/{name}", 200)];

/// The `GET` routes that answer a page and take `limit` and `cursor` (see `admin::PageQuery`).
pub const PAGED: &[&str] = &["/v1/audit", "/v1/flows/{name}/executions", "/v1/flows/{name}/dlq"];

const JSON: Option<&str> = Some("application/json");
const WASM: Option<&str> = Some("application/wasm");

routes! {
    post "/v1/plugins" => plugins::plugins_upload, access = Access::publisher_upload("upload plugins"), body = WASM, ok = 201, upload = true, request = WASM_BYTES, response = of::<Installed>(),
        "Upload a signed plugin: verify, compile, store (`?activate=true`, `?allow_rollback=true` need admin).";
    get "/v1/plugins" => plugins::plugins_list, access = Access::invoker_listing("list plugins"), body = None, ok = 200, upload = false, request = None, response = of::<PluginList>(),
        "List plugins with their versions and active version.";
    get "/v1/plugins/{name}" => plugins::plugins_get, access = Access::invoker_plugin("read plugins"), body = None, ok = 200, upload = false, request = None, response = of::<PluginDetail>(),
        "A plugin's versions, active version, manifest, grants (secret keys only), health and usage.";
    delete "/v1/plugins/{name}" => plugins::plugins_delete, access = Access::admin("delete plugins"), body = None, ok = 204, upload = false, request = None, response = None,
        "Delete every version of an inactive plugin.";
    delete "/v1/plugins/{name}/versions/{version}" => plugins::plugins_delete_version, access = Access::admin("delete plugins"), body = None, ok = 204, upload = false, request = None, response = None,
        "Delete one inactive version.";
    post "/v1/plugins/{name}/versions/{version}/activate" => plugins::plugins_activate, access = Access::admin("activate plugins"), body = None, ok = 200, upload = false, request = None, response = of::<ActiveVersion>(),
        "Make a version the active one, atomically (below the highest ever installed only with `?allow_rollback=true`, audited).";
    post "/v1/plugins/{name}/deactivate" => plugins::plugins_deactivate, access = Access::admin("deactivate plugins"), body = None, ok = 200, upload = false, request = None, response = of::<ActiveVersion>(),
        "Deactivate a plugin; in-flight invocations finish.";
    put "/v1/plugins/{name}/grants" => plugins::plugins_grants, access = Access::admin("change grants"), body = JSON, ok = 200, upload = false, request = of::<Grants>(), response = of::<Grants>(),
        "Set granted outbound hosts, key-value buckets and budget.";
    put "/v1/plugins/{name}/config" => plugins::plugins_config, access = Access::admin("change config"), body = JSON, ok = 200, upload = false, request = of::<ConfigRequest>(), response = of::<ConfigView>(),
        "Set config values and write-only secrets.";
    post "/v1/plugins/{name}/invoke" => plugins::plugins_invoke, access = Access::invoker_plugin("invoke plugins"), body = JSON, ok = 200, upload = false, request = of::<InvokeRequest>(), response = of::<Invoked>(),
        "Invoke the active version: records in, records (or page, or write report) out, with usage and logs.";
    get "/v1/plugins/{name}/health" => plugins::plugins_health, access = Access::invoker_plugin("read plugins"), body = None, ok = 200, upload = false, request = None, response = of::<Health>(),
        "Whether the active version is loaded (and from the cache), inactive or failed.";
    get "/v1/whoami" => admin::whoami, access = Access::any_token("ask who it is"), body = None, ok = 200, upload = false, request = None, response = of::<TokenInfo>(),
        "The caller's token name and role (any role).";
    get "/v1/keys" => admin::keys_list, access = Access::admin("manage keys"), body = None, ok = 200, upload = false, request = None, response = of::<KeyList>(),
        "List trusted and revoked publisher keys.";
    post "/v1/keys" => admin::keys_add, access = Access::admin("manage keys"), body = JSON, ok = 201, upload = false, request = of::<AddKey>(), response = of::<Key>(),
        "Trust a publisher key.";
    post "/v1/keys/{id}/revoke" => admin::keys_revoke, access = Access::admin("manage keys"), body = None, ok = 200, upload = false, request = None, response = of::<Key>(),
        "Revoke a key permanently; unloads every active plugin it signed.";
    post "/v1/tokens" => admin::tokens_create, access = Access::admin("create tokens"), body = JSON, ok = 201, upload = false, request = of::<CreateToken>(), response = of::<CreatedToken>(),
        "Create an API token with a role; its value is answered once.";
    get "/v1/tokens" => admin::tokens_list, access = Access::admin("list tokens"), body = None, ok = 200, upload = false, request = None, response = of::<TokenList>(),
        "List API tokens: names and roles, never values.";
    delete "/v1/tokens/{name}" => admin::tokens_revoke, access = Access::admin("revoke tokens"), body = None, ok = 204, upload = false, request = None, response = None,
        "Revoke an API token (not the admin token); audited.";
    get "/v1/audit" => admin::audit_list, access = Access::admin("read the audit log"), body = None, ok = 200, upload = false, request = None, response = of::<AuditPage>(),
        "The append-only audit log.";
    post "/v1/flows" => flows::flows_create, access = Access::admin("define flows"), body = JSON, ok = 201, upload = false, request = of::<FlowDefinition>(), response = of::<FlowDefinition>(),
        "Define a flow (JSON, or YAML with `Content-Type: application/yaml`); validated against the installed plugins; syntax errors carry `line` and `column`.";
    get "/v1/flows" => flows::flows_list, access = Access::invoker_listing("read flows"), body = None, ok = 200, upload = false, request = None, response = of::<FlowList>(),
        "List flows.";
    get "/v1/flows/{name}" => flows::flows_get, access = Access::invoker_flow("read flows"), body = None, ok = 200, upload = false, request = None, response = of::<FlowDefinition>(),
        "A flow's definition.";
    put "/v1/flows/{name}" => flows::flows_update, access = Access::admin("define flows"), body = JSON, ok = 200, upload = false, request = of::<FlowDefinition>(), response = of::<FlowDefinition>(),
        "Replace a flow's definition (JSON or YAML, as for `POST /v1/flows`).";
    delete "/v1/flows/{name}" => flows::flows_delete, access = Access::admin("delete flows"), body = None, ok = 204, upload = false, request = None, response = None,
        "Delete a flow (its executions and dead letters stay).";
    post "/v1/flows/{name}/run" => flows::flows_run, access = Access::invoker_flow("run flows"), body = JSON, ok = 200, upload = false, request = of::<RunRequest>(), response = of::<Execution>(),
        "Run a flow now on optional input records; answers the execution.";
    get "/v1/flows/{name}/executions" => flows::flows_executions, access = Access::invoker_flow("read executions"), body = None, ok = 200, upload = false, request = None, response = of::<ExecutionPage>(),
        "A flow's executions.";
    get "/v1/executions/{id}" => flows::executions_get, access = Access::invoker_listing("read executions"), body = None, ok = 200, upload = false, request = None, response = of::<Execution>(),
        "One execution: status, per-step timings, records in and out, usage, errors.";
    get "/v1/flows/{name}/dlq" => flows::dlq_list, access = Access::invoker_flow("read dead letters"), body = None, ok = 200, upload = false, request = None, response = of::<DeadLetterPage>(),
        "A flow's dead letters.";
    post "/v1/flows/{name}/dlq/replay" => flows::dlq_replay, access = Access::admin("replay dead letters"), body = JSON, ok = 200, upload = false, request = of::<ReplayRequest>(), response = of::<Replayed>(),
        "Replay all or selected dead letters from the step they failed at.";
    delete "/v1/flows/{name}/dlq/{id}" => flows::dlq_delete, access = Access::admin("delete dead letters"), body = None, ok = 204, upload = false, request = None, response = None,
        "Delete a dead letter.";
    put "/v1/flows/{name}/webhook-secret" => hooks::flows_webhook_secret, access = Access::admin("set webhook secrets"), body = JSON, ok = 204, upload = false, request = of::<WebhookSecret>(), response = None,
        "Set a flow's webhook secret (write-only), optionally keeping the previous one for a while (rotation).";
    post "/v1/hooks/{name}" => hooks::hooks_deliver, access = Access::public("deliver webhooks"), body = JSON, ok = 202, upload = false, request = ANY, response = of::<WebhookAnswer>(),
        "Webhook trigger, authenticated by the flow's scheme (GitHub, Stripe, Slack, Shopify, Standard Webhooks, CloudEvents, Plugboard's, generic HMAC, basic, API key); 202 once durably queued.";
    options "/v1/hooks/{name}" => hooks::hooks_handshake, access = Access::public("validate webhooks"), body = None, ok = 200, upload = false, request = None, response = None,
        "The CloudEvents web hook validation handshake (`WebHook-Request-Origin` answered with `WebHook-Allowed-Origin`) for flows that take CloudEvents.";
    get "/v1/flows/{name}/deliveries/{id}" => hooks::deliveries_get, access = Access::invoker_flow("read executions"), body = None, ok = 200, upload = false, request = None, response = of::<DeliveryState>(),
        "Follow a webhook delivery by the `queued` id its 202 answered: still queued, or the execution that ran it.";
    get "/v1/connections" => connections::connections_list, access = Access::admin("manage connections"), body = None, ok = 200, upload = false, request = None, response = of::<ConnectionList>(),
        "Every connection (operator-held credentials for plugins' requests), without secrets, with the plugins that use it.";
    get "/v1/connections/{name}" => connections::connections_get, access = Access::admin("manage connections"), body = None, ok = 200, upload = false, request = None, response = of::<Connection>(),
        "One connection, without its secret.";
    put "/v1/connections/{name}" => connections::connections_put, access = Access::admin("manage connections"), body = JSON, ok = 200, upload = false, request = of::<ConnectionDefinition>(), response = of::<Connection>(),
        "Create or replace a connection (bearer, api-key, basic, oauth2-client-credentials); without `secret` the stored one is kept.";
    delete "/v1/connections/{name}" => connections::connections_delete, access = Access::admin("manage connections"), body = None, ok = 204, upload = false, request = None, response = None,
        "Delete a connection.";
    post "/v1/connections/{name}/test" => connections::connections_test, access = Access::admin("manage connections"), body = None, ok = 200, upload = false, request = None, response = of::<ConnectionProbe>(),
        "Try a connection: fetch a token (OAuth) and call its `probe_url` with the credential.";
    get "/healthz" => admin::healthz, access = Access::public("check liveness"), body = None, ok = 200, upload = false, request = None, response = of::<Liveness>(),
        "Liveness.";
    get "/readyz" => admin::readyz, access = Access::public("check readiness"), body = None, ok = 200, upload = false, request = None, response = of::<Readiness>(),
        "Readiness: the database answers.";
    get "/metrics" => metrics::metrics_get, access = Access::public("read metrics"), body = None, ok = 200, upload = false, request = None, response = TEXT,
        "Prometheus metrics.";
    get "/v1/metrics/history" => metrics::metrics_history, access = Access::unscoped(&[Role::Invoker, Role::Publisher], "read metrics"), body = None, ok = 200, upload = false, request = None, response = of::<MetricsHistory>(),
        "The last hour of the server's own metrics, one sample per interval: invocations, errors by code, p50/p99 latency, queue depth, dead letters.";
    get "/openapi.json" => super::openapi::openapi_get, access = Access::public("read the API document"), body = None, ok = 200, upload = false, request = None, response = ANY,
        "This OpenAPI document.";
}
