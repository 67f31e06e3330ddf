//! `/v1/plugins`: upload, list, inspect, activate, deactivate, delete, grants, config, invoke.

use super::AppState;
use super::auth::{Caller, Role};
use super::body::JsonBody;
use super::error::ApiError;
use super::query::ApiQuery;
use crate::store::{AuditAction, VersionRecord};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use plugboard_runtime::{BudgetLimits, Kind, LogEntry, Record, Usage};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn version(text: &str) -> Result<semver::Version, ApiError> {
    semver::Version::parse(text).map_err(|err| ApiError::invalid(format!("`{text}` is not a semantic version: {err}")))
}

fn version_json(record: &VersionRecord) -> Value {
    json!({
        "name": record.name,
        "version": record.version.to_string(),
        "digest": record.digest,
        "key_id": record.key_id,
        "kind": record.manifest.kind,
        "uploaded_at": record.uploaded_at,
    })
}

#[derive(Deserialize)]
pub struct UploadQuery {
    #[serde(default)]
    activate: bool,
    #[serde(default)]
    allow_rollback: bool,
}

/// `?allow_rollback=true` on activation: activate a version below the highest ever installed
/// (audited as a rollback override).
#[derive(Deserialize)]
pub struct ActivateQuery {
    #[serde(default)]
    allow_rollback: bool,
}

/// `POST /v1/plugins` with an `application/wasm` body.
pub async fn plugins_upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<UploadQuery>,
    body: axum::body::Body,
) -> Result<axum::response::Response, ApiError> {
    // Everything that can refuse the upload does so before its body is read: a token that may
    // not upload must not make the server hold 64 MiB per request, so it is answered at once and
    // the connection closed (the unread body is never read).
    let refused = |err: ApiError| {
        let mut response = err.into_response();
        response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        response
    };
    // The role was checked by the route's layer (`access`); what it cannot know is checked here:
    // whether the query asks for admin, and (once the body names the plugin) the scope.
    if (query.activate || query.allow_rollback)
        && caller.role != Role::Admin
        && let Err(err) = caller.require(&[], "activate or override rollback protection")
    {
        return Ok(refused(err));
    }
    // At most `max_concurrent_uploads` bodies are read at once; the others wait their turn with
    // their bodies unread (in the kernel's buffers, not the server's), within `upload_timeout`.
    let Ok(_place) = state.uploads.clone().acquire_owned().await else {
        return Ok(refused(ApiError::overloaded()));
    };
    let limit = state.limits.max_upload_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::payload_too_large(limit))?;
    if body.is_empty() {
        return Err(ApiError::invalid("the body must be a signed plugin (.wasm)"));
    }
    if caller.scope.is_some() {
        // Before the compilation an upload costs: the name its verified manifest claims.
        let name = state.services.plugins.signed_name(&body)?;
        caller.require_plugin(&[Role::Publisher], "upload plugins", &name)?;
    }
    let installed =
        state.services.plugins.install(body.to_vec(), query.activate, query.allow_rollback, &caller.name).await?;
    let mut body = version_json(&installed.record);
    body["status"] = if installed.active { "active" } else { "inactive" }.into();
    let status = if installed.existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(body)).into_response())
}

/// `GET /v1/plugins`.
pub async fn plugins_list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let mut by_name: BTreeMap<String, Vec<VersionRecord>> = BTreeMap::new();
    for record in state.services.store.all_versions()?.into_iter().filter(|r| caller.sees_plugin(&r.name)) {
        by_name.entry(record.name.clone()).or_default().push(record);
    }
    let mut plugins = Vec::new();
    for (name, mut versions) in by_name {
        versions.sort_by(|a, b| a.version.cmp(&b.version));
        let active = state.services.store.active(&name)?;
        plugins.push(json!({
            "name": name,
            "kind": versions.last().map(|v| v.manifest.kind),
            "active_version": active.map(|v| v.to_string()),
            "versions": versions.iter().map(|v| v.version.to_string()).collect::<Vec<_>>(),
        }));
    }
    Ok(Json(json!({ "plugins": plugins })))
}

/// `GET /v1/plugins/{name}`: versions, active version, manifest, grants (no secret values), health,
/// usage.
pub async fn plugins_get(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let versions = state.services.plugins.versions(&name)?;
    if versions.is_empty() {
        return Err(plugboard_runtime::Error::NotFound(format!("plugin {name}")).into());
    }
    let active = state.services.store.active(&name)?;
    let manifest =
        versions.iter().find(|v| Some(&v.version) == active.as_ref()).or(versions.last()).map(|v| v.manifest.clone());
    let grant = state.services.store.grant(&name)?;
    Ok(Json(json!({
        "name": name,
        "active_version": active.map(|v| v.to_string()),
        "versions": versions.iter().map(version_json).collect::<Vec<_>>(),
        "manifest": manifest,
        "grants": {
            "outbound_hosts": grant.outbound_hosts,
            "key_value": grant.key_value,
            "connections": grant.connections,
            "allow_private": grant.allow_private,
            "budget": grant.budget,
            "config": grant.config,
            "secrets": grant.secrets.keys().collect::<Vec<_>>(),
        },
        "effective": effective(&state, &name),
        "health": health(&state, &name),
        "usage": usage_json(&state, &name)?,
    })))
}

/// A plugin's durable usage totals (API invocations and flow steps) and its latency over its last
/// invocations since the server started (`null` before the first).
fn usage_json(state: &AppState, name: &str) -> Result<Value, ApiError> {
    let mut usage = json!(state.services.plugins.usage(name)?);
    usage["latency_ms"] = json!(state.services.plugins.telemetry().latency(name));
    Ok(usage)
}

/// What the active version runs with (manifest ∩ grant ∩ host caps), and which party set each
/// budget limit; null when no version is loaded.
fn effective(state: &AppState, name: &str) -> Value {
    let Some(plugin) = state.services.plugins.active(name) else { return Value::Null };
    let effective = plugin.effective();
    let budget = effective.budget;
    let granted = state.services.store.grant(name).map(|grant| grant.outbound_hosts).unwrap_or_default();
    let requested = &plugin.manifest().capabilities.outbound_hosts;
    json!({
        "outbound_hosts": requested.iter().filter(|host| granted.contains(host)).collect::<Vec<_>>(),
        "key_value": effective.key_value,
        "budget": {
            "fuel": budget.fuel,
            "timeout_ms": u64::try_from(budget.timeout.as_millis()).unwrap_or(u64::MAX),
            "memory_bytes": budget.memory_bytes,
            "max_input_bytes": budget.max_input_bytes,
            "max_output_bytes": budget.max_output_bytes,
            "max_records": budget.max_records,
        },
        "budget_set_by": effective.budget_sources,
    })
}

fn health(state: &AppState, name: &str) -> Value {
    match (state.services.plugins.active(name), state.services.plugins.load_error(name)) {
        (Some(plugin), _) => json!({
            "status": "ready",
            "version": plugin.manifest().version.to_string(),
            "compiled": match plugin.compile_source() {
                plugboard_runtime::CompileSource::Cached => "cached",
                plugboard_runtime::CompileSource::Compiled => "compiled",
            },
        }),
        (None, Some(error)) => json!({"status": "failed", "error": error}),
        (None, None) => json!({"status": "inactive"}),
    }
}

/// `GET /v1/plugins/{name}/health`.
pub async fn plugins_health(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    if state.services.plugins.versions(&name)?.is_empty() {
        return Err(plugboard_runtime::Error::NotFound(format!("plugin {name}")).into());
    }
    Ok(Json(health(&state, &name)))
}

/// `POST /v1/plugins/{name}/versions/{version}/activate`.
pub async fn plugins_activate(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, text)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<ActivateQuery>,
) -> Result<Json<Value>, ApiError> {
    let version = version(&text)?;
    state.services.plugins.activate(&name, &version, query.allow_rollback, &caller.name).await?;
    Ok(Json(json!({"name": name, "active_version": version.to_string()})))
}

/// `POST /v1/plugins/{name}/deactivate`.
pub async fn plugins_deactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.services.plugins.deactivate(&name, &caller.name).await?;
    Ok(Json(json!({"name": name, "active_version": null})))
}

/// `DELETE /v1/plugins/{name}`.
pub async fn plugins_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.plugins.delete(&name, None, &caller.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/plugins/{name}/versions/{version}`.
pub async fn plugins_delete_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, text)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.services.plugins.delete(&name, Some(&version(&text)?), &caller.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PUT /v1/plugins/{name}/grants`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsBody {
    #[serde(default)]
    outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value: Vec<String>,
    /// Connections bound: the manifest's name for each to the operator's connection (see
    /// `domain::connections`).
    #[serde(default)]
    connections: BTreeMap<String, String>,
    /// Whether exactly granted host names may resolve to private or loopback addresses.
    #[serde(default)]
    allow_private: bool,
    #[serde(default)]
    budget: BudgetLimits,
}

/// `PUT /v1/plugins/{name}/grants`: capabilities and budget.
pub async fn plugins_grants(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<GrantsBody>,
) -> Result<Json<Value>, ApiError> {
    for host in &body.outbound_hosts {
        plugboard_runtime::HostPattern::parse(host)
            .map_err(|reason| ApiError::invalid(format!("outbound host `{host}`: {reason}")))?;
    }
    for connection in body.connections.values() {
        if !state.services.connections.exists(connection)? {
            return Err(ApiError::invalid(format!(
                "connection `{connection}` does not exist (plugboard connection ls)"
            )));
        }
    }
    let detail = format!(
        "hosts {:?}{}, buckets {:?}, connections {:?}, budget {:?}",
        body.outbound_hosts,
        if body.allow_private { " (names may be private)" } else { "" },
        body.key_value,
        body.connections,
        body.budget
    );
    let grant = state
        .services
        .plugins
        .set_grant(
            &name,
            |grant| {
                grant.outbound_hosts = body.outbound_hosts;
                grant.key_value = body.key_value;
                grant.connections = body.connections;
                grant.allow_private = body.allow_private;
                grant.budget = body.budget;
            },
            AuditAction::Grants,
            detail,
            &caller.name,
        )
        .await?;
    Ok(Json(json!({
        "outbound_hosts": grant.outbound_hosts,
        "key_value": grant.key_value,
        "connections": grant.connections,
        "allow_private": grant.allow_private,
        "budget": grant.budget
    })))
}

/// Body of `PUT /v1/plugins/{name}/config`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    #[serde(default)]
    values: BTreeMap<String, Value>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
}

/// `PUT /v1/plugins/{name}/config`: replaces config values and secrets. Secrets are write-only:
/// the answer and the audit log name the keys, never the values. Non-string values are stored as
/// their JSON text.
pub async fn plugins_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ConfigBody>,
) -> Result<Json<Value>, ApiError> {
    let values: BTreeMap<String, String> =
        body.values.into_iter().map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect();
    let detail = format!(
        "values {:?}, secrets {:?}",
        values.keys().collect::<Vec<_>>(),
        body.secrets.keys().collect::<Vec<_>>()
    );
    let grant = state
        .services
        .plugins
        .set_grant(
            &name,
            |grant| {
                grant.config = values;
                grant.secrets = body.secrets;
            },
            AuditAction::Config,
            detail,
            &caller.name,
        )
        .await?;
    Ok(Json(json!({"values": grant.config, "secrets": grant.secrets.keys().collect::<Vec<_>>()})))
}

/// Body of `POST /v1/plugins/{name}/invoke`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeBody {
    /// Records as JSON values (transformers and sinks).
    #[serde(default)]
    records: Vec<Value>,
    /// Where to start reading (sources).
    #[serde(default)]
    cursor: Option<String>,
    /// Most records to read (sources); default 100.
    #[serde(default)]
    max_records: Option<u32>,
}

fn records_json(batch: &[Record]) -> Vec<Value> {
    batch
        .iter()
        .map(|r| r.to_json().unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.value).into_owned())))
        .collect()
}

/// `POST /v1/plugins/{name}/invoke`: runs the active version; answers the output with usage and
/// logs, or the typed error (with usage and logs too).
pub async fn plugins_invoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<InvokeBody>,
) -> Result<axum::response::Response, ApiError> {
    let plugin = state.services.plugins.active(&name).ok_or_else(|| {
        let reason = state
            .services
            .plugins
            .load_error(&name)
            .map_or_else(|| "has no active version".to_string(), |e| format!("is not loaded: {e}"));
        plugboard_runtime::Error::NotFound(format!("plugin {name} {reason}"))
    })?;
    let stateful = !plugin.effective().key_value.is_empty();
    if stateful {
        // In a cluster: what other nodes committed before this request is read.
        state.services.store.read_barrier().await?;
    }
    let records: Vec<Record> = body.records.iter().map(Record::json).collect();
    let (outcome, usage, logs): (Result<Value, plugboard_runtime::Error>, Usage, Vec<LogEntry>) =
        match plugin.manifest().kind {
            Kind::Transformer => {
                let out = plugin.transform(records).await;
                (out.outcome.map(|b| json!({"records": records_json(&b)})), out.usage, out.logs.entries)
            }
            Kind::Source => {
                let out = plugin.read(body.cursor, body.max_records.unwrap_or(100)).await;
                let page =
                    out.outcome.map(|p| json!({"records": records_json(&p.records), "next_cursor": p.next_cursor}));
                (page, out.usage, out.logs.entries)
            }
            Kind::Sink => {
                let out = plugin.write(records).await;
                (out.outcome.map(|r| json!({"report": r})), out.usage, out.logs.entries)
            }
        };
    let code = outcome.as_ref().err().map(|e| e.code().as_str());
    if stateful {
        // The plugin may have written key-value data: make it durable before answering.
        state.services.store.durable().await?;
    }
    state.services.plugins.record_usage(&name, usage.fuel_consumed, usage.wall_time, code);
    let usage_json = json!({
        "fuel": usage.fuel_consumed,
        "wall_time_ms": usage.wall_time.as_secs_f64() * 1000.0,
        "peak_memory_bytes": usage.peak_memory_bytes,
    });
    match outcome {
        Ok(mut value) => {
            value["usage"] = usage_json;
            value["logs"] = json!(logs);
            Ok(Json(value).into_response())
        }
        Err(err) => {
            let guest = match &err {
                plugboard_runtime::Error::Guest(plugin_error) => Some(format!("{plugin_error:?}")),
                _ => None,
            };
            let mut response = ApiError::from(err).into_response();
            let status = response.status();
            let bytes = axum::body::to_bytes(std::mem::take(response.body_mut()), 1 << 20).await.unwrap_or_default();
            let mut value: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            value["usage"] = usage_json;
            value["logs"] = json!(logs);
            if let Some(guest) = guest {
                value["plugin_error"] = guest.into();
            }
            Ok((status, Json(value)).into_response())
        }
    }
}
