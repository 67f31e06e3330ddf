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
