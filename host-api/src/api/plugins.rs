//! `/v1/plugins`: upload, list, inspect, activate, deactivate, delete, grants, config, invoke.

use super::AppState;
use super::auth::{Caller, Role};
use super::body::JsonBody;
use super::error::ApiError;
use super::query::ApiQuery;
use super::wire;
use crate::store::{AuditAction, VersionRecord};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use plugboard_api_types::plugins::{
    ActiveVersion, CompileSource, ConfigRequest, ConfigView, Effective, EffectiveBudget, Grants, GrantsView, Health,
    InstallStatus, Installed, InvocationUsage, InvokeFailed, InvokeRequest, Invoked, Latency, PluginDetail, PluginList,
    PluginSummary, PluginUsage,
};
use plugboard_runtime::{Kind, LogEntry, Record, Usage};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

fn version(text: &str) -> Result<semver::Version, ApiError> {
    semver::Version::parse(text).map_err(|err| ApiError::invalid(format!("`{text}` is not a semantic version: {err}")))
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
    let body = Installed {
        version: wire::version(&installed.record),
        status: if installed.active { InstallStatus::Active } else { InstallStatus::Inactive },
    };
    let status = if installed.existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(body)).into_response())
}

/// `GET /v1/plugins`.
pub async fn plugins_list(State(state): State<AppState>, caller: Caller) -> Result<Json<PluginList>, ApiError> {
    let mut by_name: BTreeMap<String, Vec<VersionRecord>> = BTreeMap::new();
    for record in state.services.store.all_versions()?.into_iter().filter(|r| caller.sees_plugin(&r.name)) {
        by_name.entry(record.name.clone()).or_default().push(record);
    }
    let mut plugins = Vec::new();
    for (name, mut versions) in by_name {
        versions.sort_by(|a, b| a.version.cmp(&b.version));
        let active = state.services.store.active(&name)?;
        plugins.push(PluginSummary {
            kind: versions.last().map(|v| wire::kind(v.manifest.kind)),
            active_version: active.map(|v| v.to_string()),
            versions: versions.iter().map(|v| v.version.to_string()).collect(),
            name,
        });
    }
    Ok(Json(PluginList { plugins }))
}

/// `GET /v1/plugins/{name}`: versions, active version, manifest, grants (no secret values), health,
/// usage.
pub async fn plugins_get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<PluginDetail>, ApiError> {
    let versions = state.services.plugins.versions(&name)?;
    if versions.is_empty() {
        return Err(plugboard_runtime::Error::NotFound(format!("plugin {name}")).into());
    }
    let active = state.services.store.active(&name)?;
    let manifest = versions
        .iter()
        .find(|v| Some(&v.version) == active.as_ref())
        .or(versions.last())
        .map(|v| wire::document(&v.manifest));
    let grant = state.services.store.grant(&name)?;
    Ok(Json(PluginDetail {
        active_version: active.map(|v| v.to_string()),
        versions: versions.iter().map(wire::version).collect(),
        manifest,
        grants: GrantsView {
            grants: wire::grants(&grant),
            config: grant.config.clone(),
            secrets: grant.secrets.keys().cloned().collect(),
        },
        effective: effective(&state, &name),
        health: health(&state, &name),
        usage: usage(&state, &name)?,
        name,
    }))
}

/// A plugin's durable usage totals (API invocations and flow steps) and its latency over its last
/// invocations since the server started (`null` before the first).
fn usage(state: &AppState, name: &str) -> Result<PluginUsage, ApiError> {
    let totals = state.services.plugins.usage(name)?;
    let latency = state.services.plugins.telemetry().latency(name);
    Ok(PluginUsage {
        invocations: totals.invocations,
        errors: totals.errors,
        fuel: totals.fuel,
        errors_by_code: totals.errors_by_code,
        retries: totals.retries,
        latency_ms: latency.map(|l| Latency { p50: l.p50, p99: l.p99 }),
    })
}

/// What the active version runs with (manifest ∩ grant ∩ host caps), and which party set each
/// budget limit; null when no version is loaded.
fn effective(state: &AppState, name: &str) -> Option<Effective> {
    let plugin = state.services.plugins.active(name)?;
    let effective = plugin.effective();
    let budget = effective.budget;
    let granted = state.services.store.grant(name).map(|grant| grant.outbound_hosts).unwrap_or_default();
    let requested = &plugin.manifest().capabilities.outbound_hosts;
    Some(Effective {
        outbound_hosts: requested.iter().filter(|host| granted.contains(host)).cloned().collect(),
        key_value: effective.key_value.clone(),
        budget: EffectiveBudget {
            fuel: budget.fuel,
            timeout_ms: u64::try_from(budget.timeout.as_millis()).unwrap_or(u64::MAX),
            memory_bytes: budget.memory_bytes,
            max_input_bytes: budget.max_input_bytes,
            max_output_bytes: budget.max_output_bytes,
            max_records: budget.max_records,
        },
        budget_set_by: wire::sources(&effective.budget_sources),
    })
}

fn health(state: &AppState, name: &str) -> Health {
    match (state.services.plugins.active(name), state.services.plugins.load_error(name)) {
        (Some(plugin), _) => Health::Ready {
            version: plugin.manifest().version.to_string(),
            compiled: match plugin.compile_source() {
                plugboard_runtime::CompileSource::Cached => CompileSource::Cached,
                plugboard_runtime::CompileSource::Compiled => CompileSource::Compiled,
            },
        },
        (None, Some(error)) => Health::Failed { error },
        (None, None) => Health::Inactive,
    }
}

/// `GET /v1/plugins/{name}/health`.
pub async fn plugins_health(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Health>, ApiError> {
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
) -> Result<Json<ActiveVersion>, ApiError> {
    let version = version(&text)?;
    state.services.plugins.activate(&name, &version, query.allow_rollback, &caller.name).await?;
    Ok(Json(ActiveVersion { name, active_version: Some(version.to_string()) }))
}

/// `POST /v1/plugins/{name}/deactivate`.
pub async fn plugins_deactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ActiveVersion>, ApiError> {
    state.services.plugins.deactivate(&name, &caller.name).await?;
    Ok(Json(ActiveVersion { name, active_version: None }))
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

/// `PUT /v1/plugins/{name}/grants`: capabilities and budget.
pub async fn plugins_grants(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Grants>,
) -> Result<Json<Grants>, ApiError> {
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
                grant.budget = wire::budget_in(body.budget);
            },
            AuditAction::Grants,
            detail,
            &caller.name,
        )
        .await?;
    Ok(Json(wire::grants(&grant)))
}

/// `PUT /v1/plugins/{name}/config`: replaces config values and secrets. Secrets are write-only:
/// the answer and the audit log name the keys, never the values. Non-string values are stored as
/// their JSON text.
pub async fn plugins_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ConfigRequest>,
) -> Result<Json<ConfigView>, ApiError> {
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
    Ok(Json(ConfigView { values: grant.config, secrets: grant.secrets.into_keys().collect() }))
}

/// What an invocation produced: records (a transformer's, a source's), a source's next cursor, a
/// sink's report.
type Output = (Option<Vec<Value>>, Option<Option<String>>, Option<Value>);

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
    JsonBody(body): JsonBody<InvokeRequest>,
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
    let (outcome, usage, logs): (Result<Output, plugboard_runtime::Error>, Usage, Vec<LogEntry>) =
        match plugin.manifest().kind {
            Kind::Transformer => {
                let out = plugin.transform(records).await;
                (out.outcome.map(|b| (Some(records_json(&b)), None, None)), out.usage, out.logs.entries)
            }
            Kind::Source => {
                let out = plugin.read(body.cursor, body.max_records.unwrap_or(100)).await;
                let page = out.outcome.map(|p| (Some(records_json(&p.records)), Some(p.next_cursor), None));
                (page, out.usage, out.logs.entries)
            }
            Kind::Sink => {
                let out = plugin.write(records).await;
                (out.outcome.map(|r| (None, None, Some(wire::document(&r)))), out.usage, out.logs.entries)
            }
        };
    let code = outcome.as_ref().err().map(|e| e.code().as_str());
    if stateful {
        // The plugin may have written key-value data: make it durable before answering.
        state.services.store.durable().await?;
    }
    state.services.plugins.record_usage(&name, usage.fuel_consumed, usage.wall_time, code);
    let usage = InvocationUsage {
        fuel: usage.fuel_consumed,
        wall_time_ms: usage.wall_time.as_secs_f64() * 1000.0,
        peak_memory_bytes: usage.peak_memory_bytes,
    };
    let logs = wire::logs(&logs);
    match outcome {
        Ok((records, next_cursor, report)) => {
            Ok(Json(Invoked { records, next_cursor, report, usage, logs }).into_response())
        }
        Err(err) => {
            let plugin_error = match &err {
                plugboard_runtime::Error::Guest(plugin_error) => Some(format!("{plugin_error:?}")),
                _ => None,
            };
            let error = ApiError::from(err);
            let body = Json(InvokeFailed { error: error.body(), usage, logs, plugin_error });
            // The error's status and headers (`Retry-After`), with the body that adds the cost.
            let (parts, _) = error.into_response().into_parts();
            Ok(axum::response::Response::from_parts(parts, body.into_response().into_body()))
        }
    }
}
