//! `/v1/flows`, `/v1/executions`: define flows, run them, inspect executions and dead letters.

use super::AppState;
use super::admin::PageQuery;
use super::auth::Caller;
use super::body::{JsonBody, RawBody};
use super::error::ApiError;
use super::query::ApiQuery;
use super::wire;
use crate::domain::runs::RunRequest;
use crate::store::TriggerKind;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use plugboard_api_types::documents::{Execution, FlowDefinition as FlowDocument};
use plugboard_api_types::flows::{
    DeadLetterPage, ExecutionPage, FlowList, ReplayRequest, Replayed, RunRequest as RunBody,
};
use plugboard_runtime::flow::FlowDefinition;
use plugboard_runtime::{Batch, Error, Record};

/// The flow a body defines: JSON, or YAML when its `Content-Type` says so. A syntax or shape error
/// is `flow-invalid` with the 1-based `line` and `column` where it was found, so an editor (the
/// dashboard's) can point at it.
fn definition(headers: &HeaderMap, body: &Bytes) -> Result<FlowDefinition, ApiError> {
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let media = media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let invalid = |reason: String, at: Option<(usize, usize)>| {
        let error = ApiError::from(Error::FlowInvalid { reason });
        match at {
            Some((line, column)) => error.at(line, column),
            None => error,
        }
    };
    if matches!(media.as_str(), "application/yaml" | "application/x-yaml" | "text/yaml") {
        serde_yaml_ng::from_slice(body).map_err(|err| {
            let at = err.location().map(|l| (l.line(), l.column()));
            invalid(err.to_string(), at)
        })
    } else {
        serde_json::from_slice(body).map_err(|err| {
            let at = (err.line() > 0).then(|| (err.line(), err.column()));
            invalid(err.to_string(), at)
        })
    }
}

/// `POST /v1/flows`: create a flow.
pub async fn flows_create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    let flow = definition(&headers, &body)?;
    state.services.flows.put(flow.clone(), false, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(wire::document::<_, FlowDocument>(&flow))))
}

/// `GET /v1/flows`.
pub async fn flows_list(State(state): State<AppState>, caller: Caller) -> Result<Json<FlowList>, ApiError> {
    let mut flows = state.services.flows.list()?;
    flows.retain(|flow| caller.sees_flow(&flow.name));
    Ok(Json(FlowList { flows: flows.iter().map(wire::document).collect() }))
}

/// `GET /v1/flows/{name}`.
pub async fn flows_get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<FlowDocument>, ApiError> {
    Ok(Json(wire::document(&state.services.flows.get(&name)?)))
}

/// `PUT /v1/flows/{name}`: replace a flow; the body's name must match.
pub async fn flows_update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<FlowDocument>, ApiError> {
    let flow = definition(&headers, &body)?;
    if flow.name != name {
        return Err(ApiError::invalid(format!("the body defines `{}`, not `{name}`", flow.name)));
    }
    state.services.flows.put(flow.clone(), true, &caller.name).await?;
    Ok(Json(wire::document(&flow)))
}

/// `DELETE /v1/flows/{name}`.
pub async fn flows_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.flows.delete(&name, &caller.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/flows/{name}/run`: a manual run with optional input; answers the execution.
pub async fn flows_run(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Option<RunBody>>,
) -> Result<Json<Execution>, ApiError> {
    let body = body.unwrap_or_default();
    let input: Batch = body.records.iter().map(Record::json).collect();
    let request = RunRequest { trigger: TriggerKind::Manual, from: None, queued: &[], replaying: None };
    state.services.flows.check_input(input.len())?;
    let execution = state.services.flows.run(&name, input, request).await?;
    Ok(Json(wire::document(&execution)))
}

/// `GET /v1/flows/{name}/executions[?limit=N&cursor=C&order=desc]`: a page, oldest first by default.
pub async fn flows_executions(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ExecutionPage>, ApiError> {
    let page = state.services.flows.executions(&name, page.request())?;
    Ok(Json(ExecutionPage {
        executions: page.items.iter().map(wire::document).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `GET /v1/executions/{id}`.
pub async fn executions_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Execution>, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::invalid("execution ids are numbers"))?;
    let execution = state.services.flows.execution(id)?;
    // Out of scope reads as missing: walking ids must not list the flows a scope hides.
    if !caller.sees_flow(&execution.flow) {
        return Err(plugboard_runtime::Error::NotFound(format!("execution {id}")).into());
    }
    Ok(Json(wire::document(&execution)))
}

/// `GET /v1/flows/{name}/dlq[?limit=N&cursor=C&order=desc]`: a page, oldest first by default.
pub async fn dlq_list(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let page = state.services.flows.dead_letters(&name, page.request())?;
    let dead_letters = page.items.iter().map(wire::document).collect();
    Ok(Json(DeadLetterPage { dead_letters, next_cursor: page.next_cursor }))
}

/// `POST /v1/flows/{name}/dlq/replay`: replay all or selected dead letters from their failed step.
pub async fn dlq_replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Option<ReplayRequest>>,
) -> Result<Json<Replayed>, ApiError> {
    let body = body.unwrap_or_default();
    let executions = state.services.flows.replay(&name, body.ids.as_deref(), &caller.name).await?;
    Ok(Json(Replayed { executions: executions.iter().map(wire::document).collect() }))
}

/// `DELETE /v1/flows/{name}/dlq/{id}`.
pub async fn dlq_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::invalid("dead letter ids are numbers"))?;
    state.services.flows.delete_dead_letter(&name, id, &caller.name).await?;
    Ok(StatusCode::NO_CONTENT)
}
