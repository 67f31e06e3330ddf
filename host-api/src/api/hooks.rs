//! `/v1/hooks/{flow}` and the routes around it: webhook deliveries as their senders sign and
//! shape them, the flow's webhook secrets, and where a delivery went.
//!
//! The handler only reads the trigger's scheme (`runtime::flow::webhook::SchemeSpec`) and hands
//! each part to the domain (`domain::webhook`): no sender is a branch here.

use super::AppState;
use super::auth::Caller;
use super::body::JsonBody;
use super::error::ApiError;
use crate::domain::webhook::body::{self, Parsed};
use crate::domain::webhook::secrets::WebhookSecrets;
use crate::domain::webhook::verify::{RequestHeaders, authenticate_headers};
use crate::domain::webhook::{Delivery, HookRefusal, identity};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use plugboard_api_types::flows::{DeliveryState, WebhookIgnored, WebhookQueued, WebhookSecret};
use plugboard_runtime::flow::FlowDefinition;
use plugboard_runtime::flow::webhook::Cidr;
use std::net::{IpAddr, SocketAddr};

/// The peer's address, when the server was started with connection info (`plugboard serve`
/// is); `None` otherwise, which an allow-list refuses.
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0)))
    }
}

/// The delivery's source address: the peer, or — when the peer is one of the `trusted_proxies`
/// — the right-most `X-Forwarded-For` hop that is not a trusted proxy. Hops are read from the
/// right and the first untrusted one is the answer, so whatever a client wrote further left is
/// never believed; a hop that is not an address (`unknown`, junk) before an untrusted one is
/// found answers `None`, which an allow-list refuses.
pub fn source_address(peer: Option<SocketAddr>, headers: &HeaderMap, trusted_proxies: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?.ip();
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|cidr| cidr.contains(ip));
    if !trusted(peer) {
        return Some(peer);
    }
    let hops: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| hop.trim().to_string())
        .collect();
    for hop in hops.iter().rev() {
        let ip = hop_address(hop)?;
        if !trusted(ip) {
            return Some(ip);
        }
    }
    Some(peer)
}

/// An `X-Forwarded-For` hop: an address, optionally with a port (`1.2.3.4:5`, `[::1]:5`).
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

/// Whether a request carries a credential of some scheme at all (any sender's signature header,
/// an `Authorization`, an API key): what a delivery to a flow without a webhook must show before
/// its body is read, exactly as a delivery to a real one would, so the two answer alike.
fn carries_a_credential(headers: &RequestHeaders) -> bool {
    const CREDENTIALS: [&str; 8] = [
        "x-plugboard-signature",
        "webhook-signature",
        "x-hub-signature-256",
        "stripe-signature",
        "x-slack-signature",
        "x-shopify-hmac-sha256",
        "authorization",
        "x-api-key",
    ];
    CREDENTIALS.iter().any(|name| headers.get(name).is_some_and(|v| !v.trim().is_empty() && v.len() <= 4096))
}

/// `POST /v1/hooks/{flow}`: a webhook delivery, authenticated and read as the flow's webhook
/// trigger says (its `scheme`, `body`, `headers`, `events`, `allow_from`; see
/// [`crate::domain::webhook`]). Answers 202 only once the records are durably queued; a repeat
/// of an accepted delivery (a retry, even re-signed with a new timestamp, or a replay) is 200
/// with `"duplicate": true` and nothing runs again; an event the trigger does not take is 200
/// `"ignored"`; a sender's handshake (GitHub's `ping`, Slack's `url_verification`) is answered
/// as that sender expects.
///
/// What can be refused from the headers alone (a source outside `allow_from`, a malformed
/// signature header, a stale timestamp, a wrong `basic`/`api-key`/bearer secret) is refused
/// before a byte of the body is read; otherwise the body is read — within the public body
/// deadline and the body limit, whether or not the flow exists — and only then is the signature
/// checked. Every refusal is the same 401, so a caller without the secret learns nothing about
/// why; the reason is counted in `plugboard_webhook_refused_total{flow,reason}` and logged.
pub async fn hooks_deliver(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let source = source_address(peer, &headers, &state.trusted_proxies);
    let request_headers = RequestHeaders::new(
        headers.iter().filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_string(), v.to_string()))),
    );
    let trigger = state.services.store.flow(&name)?.as_ref().and_then(FlowDefinition::webhook);
    let refused = |reason: HookRefusal| {
        let flow = trigger.as_ref().map(|_| name.as_str());
        state.services.plugins.telemetry().webhook_refused(flow, reason.label(), source);
        ApiError::unauthorized_because("the delivery is not authenticated for this flow")
    };
    let Some(trigger) = trigger.as_ref() else {
        if carries_a_credential(&request_headers) {
            read_body(&state, body).await?;
        }
        return Err(refused(HookRefusal::NoHook));
    };
    let allowed = trigger.allowed_sources();
    if !allowed.is_empty() && !source.is_some_and(|ip| allowed.iter().any(|cidr| cidr.contains(ip))) {
        return Err(refused(HookRefusal::Source));
    }
    let Some(secrets) = state.services.store.webhook_secret(&name)?.map(|s| WebhookSecrets::decode(&s)) else {
        if carries_a_credential(&request_headers) {
            read_body(&state, body).await?;
        }
        return Err(refused(HookRefusal::NoSecret));
    };
    let spec = trigger.spec();
    let pending = authenticate_headers(&spec, &request_headers, &secrets, trigger.tolerance_secs).map_err(refused)?;
    let bytes = read_body(&state, body).await?;
    let authenticated = pending.verify(&secrets, &name, &bytes).map_err(refused)?;
    let mut parsed = body::parse(spec.body, &request_headers, &trigger.headers, &bytes)?;
    let event_types = parsed.event_types(&spec.event, &request_headers);
    if let Some(answer) = spec.handshake.as_ref().and_then(|h| parsed.handshake(h, &event_types)) {
        tracing::info!(flow = %name, "webhook handshake answered");
        return Ok((StatusCode::OK, Json(answer)).into_response());
    }
    if !trigger.events.is_empty() && parsed.keep_events(&event_types, &trigger.events) == 0 {
        return Ok((StatusCode::OK, Json(WebhookIgnored { ignored: true, events: event_types })).into_response());
    }
    let id = spec.id.as_ref().and_then(|locator| parsed.delivery_id(locator, &request_headers));
    let mark = identity(trigger, &spec, &authenticated, id.as_deref())?;
    queue(&state, &name, parsed, &mark).await
}

/// `OPTIONS /v1/hooks/{flow}`: the abuse-protection handshake of the CloudEvents web hook
/// specification (section 4), which senders such as Azure Event Grid make before delivering:
/// a flow whose trigger takes CloudEvents (from an allowed source) answers `200` with
/// `WebHook-Allowed-Origin` echoing `WebHook-Request-Origin` and `WebHook-Allowed-Rate: *`;
/// every other request gets the webhook route's one `401`.
pub async fn hooks_handshake(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let source = source_address(peer, &headers, &state.trusted_proxies);
    let trigger = state.services.store.flow(&name)?.as_ref().and_then(FlowDefinition::webhook);
    let origin = headers.get("webhook-request-origin").and_then(|v| v.to_str().ok()).filter(|o| o.len() <= 256);
    let allowed = trigger.as_ref().is_some_and(|t| {
        let sources = t.allowed_sources();
        t.spec().body == plugboard_runtime::flow::webhook::BodyShape::Cloudevents
            && (sources.is_empty() || source.is_some_and(|ip| sources.iter().any(|c| c.contains(ip))))
    });
    match (allowed, origin) {
        (true, Some(origin)) => Ok((
            StatusCode::OK,
            [
                ("webhook-allowed-origin", origin.to_string()),
                ("webhook-allowed-rate", "*".to_string()),
                ("allow", "POST, OPTIONS".to_string()),
            ],
        )
            .into_response()),
        _ => {
            let flow = trigger.as_ref().map(|_| name.as_str());
            state.services.plugins.telemetry().webhook_refused(flow, HookRefusal::Missing.label(), source);
            Err(ApiError::unauthorized_because("the delivery is not authenticated for this flow"))
        }
    }
}

/// Reads an unauthenticated body within the public deadline and the body limit.
async fn read_body(state: &AppState, body: axum::body::Body) -> Result<Bytes, ApiError> {
    let limits = state.limits;
    match tokio::time::timeout(limits.public_body_timeout, axum::body::to_bytes(body, limits.max_body_bytes)).await {
        Err(_) => Err(ApiError::body_timeout()),
        Ok(Err(_)) => Err(ApiError::payload_too_large(limits.max_body_bytes)),
        Ok(Ok(body)) => Ok(body),
    }
}

async fn queue(
    state: &AppState,
    name: &str,
    parsed: Parsed,
    mark: &crate::domain::webhook::DeliveryMark,
) -> Result<Response, ApiError> {
    let count = u64::try_from(parsed.records.len()).unwrap_or(u64::MAX);
    let delivery = state.services.queue.accept_delivery(name, mark, parsed.records, parsed.headers).await?;
    Ok(match delivery {
        Delivery::Queued(id) => {
            let follow = format!("/v1/flows/{name}/deliveries/{id}");
            let answer = WebhookQueued { queued: id, records: count, duplicate: false, delivery: follow };
            (StatusCode::ACCEPTED, Json(answer)).into_response()
        }
        Delivery::Duplicate(id) => {
            tracing::info!(flow = %name, run = id, "repeated webhook delivery: not queued again");
            let follow = format!("/v1/flows/{name}/deliveries/{id}");
            let answer = WebhookQueued { queued: id, records: count, duplicate: true, delivery: follow };
            (StatusCode::OK, Json(answer)).into_response()
        }
    })
}

/// `PUT /v1/flows/{name}/webhook-secret`: sets the secret webhook senders sign (or authenticate)
/// with, as the sender hands it out (`whsec_…` for Standard Webhooks and Stripe, free text for
/// GitHub, `user:password` for `basic`). With `keep_previous_secs` the secret it replaces stays
/// accepted that long, so senders can be moved over. Write-only: never answered, never logged.
pub async fn flows_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<WebhookSecret>,
) -> Result<StatusCode, ApiError> {
    state.services.flows.set_webhook_secret(&name, &body.secret, body.keep_previous_secs, &caller.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/flows/{name}/deliveries/{id}`: where a webhook delivery is, by the `queued` id its
/// 202 answered — `queued` (waiting for a worker) or `ran` with the execution that ran it (which
/// may have run it together with other deliveries of the same flow, a micro-batch).
pub async fn deliveries_get(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<DeliveryState>, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::invalid("delivery ids are numbers"))?;
    let store = &state.services.store;
    if store.queued_run(id)?.is_some_and(|run| run.flow == name) {
        return Ok(Json(DeliveryState::Queued { queued: id }));
    }
    match store.ran_by(&name, id)? {
        Some(execution) => {
            let execution = state.services.flows.execution(execution)?;
            Ok(Json(DeliveryState::Ran { queued: id, execution: super::wire::document(&execution) }))
        }
        None => Err(plugboard_runtime::Error::NotFound(format!("delivery {id} of flow {name}")).into()),
    }
}
