//! `/v1/flows`, `/v1/executions`: define flows, run them, inspect executions and dead letters.

use super::AppState;
use super::auth::{Caller, Role};
use super::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use plugboard_runtime::flow::FlowDefinition;
use plugboard_runtime::{Error, Record};
use serde::Deserialize;
use serde_json::{Value, json};

fn definition(body: &Bytes) -> Result<FlowDefinition, ApiError> {
    serde_json::from_slice(body).map_err(|err| Error::FlowInvalid { reason: err.to_string() }.into())
}

/// `POST /v1/flows`: create a flow.
pub async fn flows_create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[], "define flows")?;
    let flow = definition(&body)?;
    state.registry.put_flow(flow.clone(), false, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(json!(flow))))
}

/// `GET /v1/flows`.
pub async fn flows_list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Invoker], "read flows")?;
    Ok(Json(json!({"flows": state.registry.store.all_flows()?})))
}

/// `GET /v1/flows/{name}`.
pub async fn flows_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Invoker], "read flows")?;
    let flow = state.registry.store.flow(&name)?.ok_or_else(|| Error::NotFound(format!("flow {name}")))?;
    Ok(Json(json!(flow)))
}

/// `PUT /v1/flows/{name}`: replace a flow; the body's name must match.
pub async fn flows_update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[], "define flows")?;
    let flow = definition(&body)?;
    if flow.name != name {
        return Err(ApiError::invalid(format!("the body defines `{}`, not `{name}`", flow.name)));
    }
    state.registry.put_flow(flow.clone(), true, &caller.name).await?;
    Ok(Json(json!(flow)))
}

/// `DELETE /v1/flows/{name}`.
pub async fn flows_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[], "delete flows")?;
    if !state.registry.store.remove_flow(&name)? {
        return Err(Error::NotFound(format!("flow {name}")).into());
    }
    state.registry.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /v1/flows/{name}/run`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// Input records (JSON values).
    #[serde(default)]
    records: Vec<Value>,
}

/// `POST /v1/flows/{name}/run`: a manual run with optional input; answers the execution.
pub async fn flows_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Invoker], "run flows")?;
    let body: RunBody = if body.is_empty() {
        RunBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|err| ApiError::invalid(format!("invalid JSON body: {err}")))?
    };
    let input = body.records.iter().map(Record::json).collect();
    let execution = state.registry.run_flow(&name, input, None, "manual").await?;
    Ok(Json(json!(execution)))
}

/// `GET /v1/flows/{name}/executions`.
pub async fn flows_executions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Invoker], "read executions")?;
    Ok(Json(json!({"executions": state.registry.store.executions(&name)?})))
}

/// `GET /v1/executions/{id}`.
pub async fn executions_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Invoker], "read executions")?;
    let id: u64 = id.parse().map_err(|_| ApiError::invalid("execution ids are numbers"))?;
    let execution = state.registry.store.execution(id)?.ok_or_else(|| Error::NotFound(format!("execution {id}")))?;
    Ok(Json(json!(execution)))
}

/// `GET /v1/flows/{name}/dlq`.
pub async fn dlq_list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Invoker], "read dead letters")?;
    Ok(Json(json!({"dead_letters": state.registry.store.dead_letters(&name)?})))
}

/// Body of `POST /v1/flows/{name}/dlq/replay`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// Dead letters to replay; all when absent.
    #[serde(default)]
    ids: Option<Vec<u64>>,
}

/// `POST /v1/flows/{name}/dlq/replay`: replay all or selected dead letters from their failed step.
pub async fn dlq_replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[], "replay dead letters")?;
    let body: ReplayBody = if body.is_empty() {
        ReplayBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|err| ApiError::invalid(format!("invalid JSON body: {err}")))?
    };
    let executions = state.registry.replay(&name, body.ids.as_deref()).await?;
    Ok(Json(json!({"executions": executions})))
}

/// `DELETE /v1/flows/{name}/dlq/{id}`.
pub async fn dlq_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[], "delete dead letters")?;
    let id: u64 = id.parse().map_err(|_| ApiError::invalid("dead letter ids are numbers"))?;
    if !state.registry.store.remove_dead_letter(&name, id)? {
        return Err(Error::NotFound(format!("dead letter {id} of flow {name}")).into());
    }
    state.registry.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PUT /v1/flows/{name}/webhook-secret`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretBody {
    secret: String,
}

/// `PUT /v1/flows/{name}/webhook-secret`: sets the HMAC secret webhook senders sign with
/// (write-only: never answered, never logged).
pub async fn flows_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require(&[], "set webhook secrets")?;
    let body: SecretBody =
        serde_json::from_slice(&body).map_err(|err| ApiError::invalid(format!("invalid JSON body: {err}")))?;
    if body.secret.len() < 16 {
        return Err(ApiError::invalid("webhook secrets are at least 16 characters"));
    }
    state.registry.store.flow(&name)?.ok_or_else(|| Error::NotFound(format!("flow {name}")))?;
    state.registry.store.put_webhook_secret(&name, &body.secret)?;
    state.registry.store.audit(crate::store::AuditEntry {
        id: 0,
        at: crate::registry::now(),
        actor: caller.name,
        action: "webhook-secret".into(),
        target: name,
        key_id: None,
        detail: String::new(),
    })?;
    state.registry.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/hooks/{flow}`: a webhook delivery, authenticated by `X-Plugboard-Signature:
/// sha256=HEX` (HMAC-SHA256 of `"{timestamp}.{body}"` under the flow's secret) and
/// `X-Plugboard-Timestamp` (Unix seconds, within the trigger's tolerance). The body is
/// `{"records": [...]}` or a JSON array. Answers 202 only once the input is durably queued; a bad or
/// missing signature is 401 and nothing runs; a repeat of an accepted delivery (a retry or a
/// replay) is 200 with `"duplicate": true` and nothing runs again (see [`crate::webhook`]).
pub async fn hooks_deliver(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    use crate::webhook::{Delivery, HookRefusal, verify_hook};
    let header = |key: &str| headers.get(key).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let flow = state.registry.store.flow(&name)?;
    let refusal = match flow.as_ref().and_then(FlowDefinition::webhook_tolerance) {
        None => Err(HookRefusal::NoHook),
        Some(tolerance) => match state.registry.store.webhook_secret(&name)? {
            None => Err(HookRefusal::NoSecret),
            Some(secret) => verify_hook(
                &secret,
                &header("x-plugboard-timestamp"),
                &header("x-plugboard-signature"),
                &body,
                tolerance,
            ),
        },
    };
    let verified = match refusal {
        Ok(verified) => verified,
        Err(HookRefusal::NoHook) => return Err(Error::NotFound(format!("webhook for flow {name}")).into()),
        Err(reason) => {
            tracing::warn!(flow = %name, ?reason, "webhook refused");
            return Err(ApiError::unauthorized_because(match reason {
                HookRefusal::Stale => "the X-Plugboard-Timestamp is outside the allowed window",
                HookRefusal::NoSecret => "this flow has no webhook secret yet",
                _ => "a valid X-Plugboard-Signature is required",
            }));
        }
    };
    let value: Value =
        serde_json::from_slice(&body).map_err(|err| ApiError::invalid(format!("invalid JSON body: {err}")))?;
    let records = match value {
        Value::Array(records) => records,
        Value::Object(mut object) => match object.remove("records") {
            Some(Value::Array(records)) => records,
            _ => return Err(ApiError::invalid("expected {\"records\": [...]} or a JSON array")),
        },
        _ => return Err(ApiError::invalid("expected {\"records\": [...]} or a JSON array")),
    };
    let count = records.len();
    Ok(match state.registry.accept_delivery(&name, &verified, records).await? {
        Delivery::Queued(id) => (StatusCode::ACCEPTED, Json(json!({"queued": id, "records": count}))),
        Delivery::Duplicate(id) => {
            tracing::info!(flow = %name, run = id, "repeated webhook delivery: not queued again");
            (StatusCode::OK, Json(json!({"queued": id, "records": count, "duplicate": true})))
        }
    })
}
