//! The host's side of connections at request time: which connection a plugin's request gets,
//! the header it carries, OAuth access tokens (fetched once, cached, renewed before they expire
//! and after a `401`; from client credentials or a refresh token, which is rotated and stored
//! when the authorization server returns a new one), and each connection's rate limit, shared by
//! every invocation.
//!
//! Definitions are read from the store once and kept until a change (`reload`, called by the
//! domain on every write here and for every change another cluster node made); a connection whose
//! definition did not change keeps its token and its rate-limit state across a reload. A token
//! fetch is one at a time per connection: concurrent requests wait for it instead of each asking
//! the authorization server, and it runs in its own task, so an invocation that gives up waiting
//! does not cancel it for the others. A fetch that fails, hangs (5 s) or answers something that
//! is not a token denies the request with the reason in the plugin's log, and so does every
//! request for the next [`FAILURE_HOLD`] without asking again (a down endpoint is not hammered
//! once per request); so does a connection
//! bound to the plugin that no longer exists, or a store that cannot be read: nothing is sent
//! without the credential it should carry. The host stays up.

use super::figures::Figures;
use super::{ConnectionDefinition, ConnectionKind, RateLimit};
use crate::store::{AuditAction, AuditEntry, Change, Op, Storage};
use base64::Engine as _;
use plugboard_runtime::host::credentials::{Authorization, BoxFuture, CredentialError, Credentials};
use plugboard_runtime::host::outbound::HostPattern;
use plugboard_runtime::sync::Locked;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a token fetch may take (well inside an invocation's default 10 s deadline).
const TOKEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest token response read.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(30);
/// How long a failed token fetch is the answer before the endpoint is asked again.
const FAILURE_HOLD: Duration = Duration::from_secs(2);
/// The least time between two token fetches of one connection.
const MIN_REFETCH: Duration = Duration::from_secs(1);

/// A connection ready for requests.
struct Live {
    /// The stored definition's JSON: a reload keeps this `Live` while it is unchanged.
    json: String,
    definition: ConnectionDefinition,
    patterns: Vec<HostPattern>,
    limiter: Limiter,
    /// The cached access token: its value, until when it is used, its generation.
    token: Mutex<Option<(String, Instant, u64)>>,
    /// One token fetch at a time: the fetch's own task holds the turn, so a caller that gives
    /// up does not let a second fetch start beside it (a rotating refresh token is single-use).
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// Tokens fetched: also each token's generation.
    fetched: std::sync::atomic::AtomicU64,
    /// The last fetch failed: why, and until when that is the answer.
    failed: Mutex<Option<(String, Instant)>>,
    /// When the current token was fetched.
    fetched_at: Mutex<Option<Instant>>,
    /// `oauth2-refresh-token`: the current refresh token and the stored JSON that holds it
    /// (after a rotation, `json` is what this host stored, so a reload keeps this `Live`).
    refresh: Mutex<(Option<String>, String)>,
}

/// Every connection, loaded, by name.
type Loaded = Arc<BTreeMap<String, Arc<Live>>>;

/// The credentials of every connection, for the runtime.
pub struct HostCredentials {
    store: Arc<dyn Storage>,
    /// What was loaded, and whether it is still current.
    live: Mutex<(Loaded, bool)>,
    http: reqwest::Client,
    figures: Arc<Figures>,
}

impl std::fmt::Debug for HostCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostCredentials")
    }
}

impl HostCredentials {
    /// Over the connections in `store`.
    ///
    /// # Errors
    /// When the HTTP client for token endpoints cannot be built (no TLS backend).
    pub fn new(store: Arc<dyn Storage>) -> Result<HostCredentials, crate::domain::DomainError> {
        let http = reqwest::Client::builder()
            .timeout(TOKEN_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| crate::domain::DomainError::internal_in("the token endpoints' HTTP client", err))?;
        Ok(HostCredentials {
            store,
            live: Mutex::new((Arc::default(), false)),
            http,
            figures: Arc::new(Figures::new()),
        })
    }

    /// The per-connection figures, as Prometheus text for `/metrics`.
    pub fn figures(&self) -> String {
        self.figures.render()
    }

    /// Marks what was read stale: the next request reads the definitions again, keeping the
    /// state (token, rate limit) of every connection whose definition did not change.
    pub fn reload(&self) {
        self.live.locked().1 = false;
    }

    fn connections(&self) -> Result<Loaded, String> {
        let mut live = self.live.locked();
        if live.1 {
            return Ok(live.0.clone());
        }
        // Not cached on failure: the next request tries again, and this one is denied.
        let all = self.store.connections().map_err(|err| format!("the connections cannot be read: {err}"))?;
        let mut loaded = BTreeMap::new();
        for (name, json) in all {
            if let Some(kept) = live.0.get(&name).filter(|kept| kept.json == json) {
                loaded.insert(name, kept.clone());
                continue;
            }
            if let Some(kept) = live.0.get(&name).filter(|kept| kept.refresh_json() == json) {
                loaded.insert(name, kept.clone());
                continue;
            }
            let Ok(definition) = serde_json::from_str::<ConnectionDefinition>(&json) else {
                tracing::error!(connection = %name, "stored connection does not parse; not used");
                continue;
            };
            // A refresh token rotated elsewhere (another node, in a cluster): the same connection
            // with its next refresh token, so its access token and limits stay.
            if let Some(kept) = live.0.get(&name).filter(|kept| kept.same_but_refresh_token(&definition)) {
                *kept.refresh.locked() = (definition.secret.clone(), json);
                loaded.insert(name, kept.clone());
                continue;
            }
            let patterns = definition.hosts.iter().filter_map(|h| HostPattern::parse(h).ok()).collect();
            let limiter = Limiter::new(definition.rate_limit);
            let refresh = Mutex::new((definition.secret.clone(), json.clone()));
            let connection = Live {
                json,
                refresh,
                definition,
                patterns,
                limiter,
                token: Mutex::new(None),
                fetching: Arc::default(),
                fetched: Default::default(),
                failed: Mutex::new(None),
                fetched_at: Mutex::new(None),
            };
            loaded.insert(name, Arc::new(connection));
        }
        *live = (Arc::new(loaded), true);
        Ok(live.0.clone())
    }

    /// The header of a request `connection` authorizes, and the credential's generation.
    async fn header(
        &self,
        name: &str,
        connection: &Arc<Live>,
    ) -> Result<(http::HeaderName, http::HeaderValue, u64), String> {
        let definition = &connection.definition;
        let secret = definition.secret.as_deref().unwrap_or_default();
        let mut generation = 0;
        let (header, value) = match definition.kind {
            ConnectionKind::Bearer => (http::header::AUTHORIZATION, format!("Bearer {secret}")),
            ConnectionKind::ApiKey => {
                let header = definition.header.as_deref().unwrap_or("x-api-key").to_ascii_lowercase();
                let header =
                    http::HeaderName::from_bytes(header.as_bytes()).map_err(|_| "bad header name".to_string())?;
                (header, secret.to_string())
            }
            ConnectionKind::Basic => {
                let pair = format!("{}:{secret}", definition.username.as_deref().unwrap_or_default());
                (
                    http::header::AUTHORIZATION,
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)),
                )
            }
            ConnectionKind::Oauth2ClientCredentials | ConnectionKind::Oauth2RefreshToken => {
                let (token, fetched) = self.token(name, connection).await?;
                generation = fetched;
                (http::header::AUTHORIZATION, format!("Bearer {token}"))
            }
        };
        let mut value = http::HeaderValue::from_str(&value)
            .map_err(|_| format!("connection {name}: the credential is not a header value"))?;
        value.set_sensitive(true);
        Ok((header, value, generation))
    }

    /// A current access token of an OAuth connection and its generation: the cached one, or a
    /// new one fetched by a task of its own (which caches it even if this caller gives up).
    async fn token(&self, name: &str, connection: &Arc<Live>) -> Result<(String, u64), String> {
        let current = |connection: &Live| {
            connection
                .token
                .locked()
                .as_ref()
                .filter(|(_, until, _)| Instant::now() < *until)
                .map(|(token, _, generation)| (token.clone(), *generation))
        };
        if let Some(token) = current(connection) {
            return Ok(token);
        }
        let turn = connection.fetching.clone().lock_owned().await;
        if let Some(token) = current(connection) {
            return Ok(token);
        }
        if let Some((reason, until)) = connection.failed.locked().clone()
            && Instant::now() < until
        {
            return Err(format!("connection {name}: {reason} (not asked again for {} s)", FAILURE_HOLD.as_secs()));
        }
        // A remote that refuses every token gets a new one at most every MIN_REFETCH, not one (and
        // a rotation, a store write) per request: the next fetch waits out the rest of it.
        let fetched_at = *connection.fetched_at.locked();
        if let Some(wait) = fetched_at.map(|at| MIN_REFETCH.saturating_sub(at.elapsed())).filter(|w| !w.is_zero()) {
            tokio::time::sleep(wait).await;
        }
        let (http, live, store, name_owned) =
            (self.http.clone(), connection.clone(), self.store.clone(), name.to_string());
        let figures = self.figures.clone();
        let fetch = tokio::spawn(async move {
            let _turn = turn;
            let refresh_token = live.refresh.locked().0.clone();
            let fetched = fetch_token(&http, &live.definition, refresh_token.as_deref()).await;
            figures.token_fetched(&name_owned, fetched.is_ok());
            let failed = fetched.as_ref().err().map(|reason| (reason.clone(), Instant::now() + FAILURE_HOLD));
            *live.failed.locked() = failed;
            let fetched = fetched?;
            let (token, lifetime) = (fetched.access_token, fetched.lifetime);
            if let Some(rotated) = fetched.refresh_token.filter(|new| Some(new) != refresh_token.as_ref()) {
                keep_rotated(store.as_ref(), &name_owned, &live, refresh_token.as_deref(), rotated).await;
            }
            let generation = live.fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            // Renewed RENEW_BEFORE its end, or at half its life when it lives shorter than that.
            let until = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE).max(lifetime / 2);
            *live.fetched_at.locked() = Some(Instant::now());
            *live.token.locked() = Some((token.clone(), until, generation));
            Ok::<_, String>((token, generation))
        });
        match fetch.await {
            Ok(fetched) => fetched.map_err(|reason| format!("connection {name}: {reason}")),
            Err(_) => Err(format!("connection {name}: the token fetch stopped")),
        }
    }

    /// `POST /v1/connections/{name}/test`: a token (OAuth), then `probe_url` with the credential.
    pub(super) async fn probe(&self, name: &str, definition: &ConnectionDefinition) -> Probe {
        let started = Instant::now();
        let connection = match self.connections() {
            Ok(loaded) => loaded.get(name).cloned(),
            Err(reason) => return Probe::failed(reason),
        };
        let Some(connection) = connection else {
            return Probe::failed("the connection is not loaded".into());
        };
        let (header, value, generation) = match self.header(name, &connection).await {
            Ok(header) => header,
            Err(reason) => return Probe::failed(reason),
        };
        let Some(url) = &definition.probe_url else {
            let fetched =
                matches!(definition.kind, ConnectionKind::Oauth2ClientCredentials | ConnectionKind::Oauth2RefreshToken);
            return Probe {
                ok: true,
                token_fetched: Some(fetched),
                elapsed: Some(started.elapsed()),
                ..Probe::default()
            };
        };
        let _place = connection.limiter.acquire().await;
        match self.http.get(url).header(header.clone(), value.clone()).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let used = Authorization { connection: name.into(), header, value, generation, hold: Box::new(()) };
                self.answered(&used, status);
                let ok = (200..300).contains(&status);
                Probe { ok, status: Some(status), elapsed: Some(started.elapsed()), ..Probe::default() }
            }
            Err(err) => Probe::failed(format!("the probe did not answer: {}", short(&err))),
        }
    }
}

/// What trying a connection found (`POST /v1/connections/{name}/test`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// It fetched its token and the probe answered 2xx (or there is no probe to call).
    pub ok: bool,
    /// The probe's status.
    pub status: Option<u16>,
    /// Whether a token was fetched (a kind without a probe URL).
    pub token_fetched: Option<bool>,
    /// Why it failed.
    pub error: Option<String>,
    /// How long it took.
    pub elapsed: Option<Duration>,
}

impl Probe {
    fn failed(error: String) -> Probe {
        Probe { error: Some(error), ..Probe::default() }
    }
}

/// What a token endpoint answered.
struct Fetched {
    access_token: String,
    /// How long the access token lives (`expires_in`, else an hour).
    lifetime: Duration,
    /// A new refresh token, when the server rotates them.
    refresh_token: Option<String>,
}

/// RFC 6749 §4.4 (`grant_type=client_credentials`, the client authenticated with HTTP Basic,
/// §2.3.1) or §6 (`grant_type=refresh_token` with `refresh`, a confidential client with Basic, a
/// public one naming its `client_id` in the form).
async fn fetch_token(
    http: &reqwest::Client,
    definition: &ConnectionDefinition,
    refresh: Option<&str>,
) -> Result<Fetched, String> {
    let url = definition.token_url.as_deref().unwrap_or_default();
    let client_id = definition.client_id.as_deref().unwrap_or_default();
    let (mut form, client_secret) = match definition.kind {
        ConnectionKind::Oauth2RefreshToken => (
            vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", refresh.unwrap_or_default().to_string()),
            ],
            definition.client_secret.as_deref(),
        ),
        _ => (vec![("grant_type", "client_credentials".to_string())], definition.secret.as_deref()),
    };
    if !definition.scopes.is_empty() {
        form.push(("scope", definition.scopes.join(" ")));
    }
    if let Some(audience) = &definition.audience {
        form.push(("audience", audience.clone()));
    }
    let mut request = http.post(url).header("accept", "application/json");
    request = match client_secret {
        Some(secret) => request.basic_auth(client_id, Some(secret)),
        None => {
            form.push(("client_id", client_id.to_string()));
            request
        }
    };
    let response = request
        .form(&form)
        .send()
        .await
        .map_err(|err| format!("the token endpoint did not answer: {}", short(&err)))?;
    let status = response.status();
    let body = read_limited(response).await?;
    if !status.is_success() {
        let error = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["error"].as_str().map(str::to_string));
        return Err(format!(
            "the token endpoint answered {status}{}",
            error.map(|e| format!(" ({})", e.chars().take(100).collect::<String>())).unwrap_or_default()
        ));
    }
    let answer: Value =
        serde_json::from_slice(&body).map_err(|_| "the token endpoint's answer is not JSON".to_string())?;
    let token = answer["access_token"].as_str().filter(|t| !t.is_empty() && t.len() <= 8192);
    let Some(token) = token else { return Err("the token endpoint's answer has no access_token".into()) };
    if answer["token_type"].as_str().is_some_and(|kind| !kind.eq_ignore_ascii_case("bearer")) {
        return Err(format!("token_type {} is not bearer", answer["token_type"]));
    }
    let lifetime = answer["expires_in"].as_u64().unwrap_or(3600).clamp(1, 24 * 3600);
    let refresh_token = match definition.kind {
        ConnectionKind::Oauth2RefreshToken => {
            answer["refresh_token"].as_str().filter(|t| !t.is_empty() && t.len() <= 8192).map(str::to_string)
        }
        _ => None,
    };
    Ok(Fetched { access_token: token.to_string(), lifetime: Duration::from_secs(lifetime), refresh_token })
}

/// Stores a refresh token the authorization server rotated, before the access token that came
/// with it is used: the server has invalidated the old one, so a restart must find the new one.
/// The new token goes into the definition as it is stored *now*, if that still holds the token
/// that was traded (an operator's replacement that kept the secret keeps its other changes and
/// gets the new token); a definition given a new secret meanwhile wins. A store that refuses
/// keeps the new token in memory only, loudly.
async fn keep_rotated(store: &dyn Storage, name: &str, live: &Live, traded: Option<&str>, rotated: String) {
    let read_at = store.position();
    let current = store.connections().ok().and_then(|all| all.into_iter().find(|(n, _)| n == name)).map(|(_, j)| j);
    let current = current.and_then(|json| serde_json::from_str::<ConnectionDefinition>(&json).ok());
    let mut stored_json = None;
    if let Some(mut definition) = current.filter(|current| current.secret.as_deref() == traded) {
        definition.secret = Some(rotated.clone());
        if let Ok(json) = serde_json::to_string(&definition) {
            let mut audit = AuditEntry::new("plugboard", AuditAction::ConnectionPut, name);
            audit.detail = "refresh token rotated by the authorization server".into();
            let change =
                Change::read_at(read_at).with(Op::PutConnection { name: name.into(), definition: json.clone() });
            match store.apply(change.audit(audit)) {
                Ok(()) => {
                    if let Err(err) = store.durable().await {
                        tracing::error!(connection = %name, %err, "the rotated refresh token may not be durable");
                    }
                    stored_json = Some(json);
                }
                Err(err) => {
                    tracing::error!(connection = %name, %err, "the rotated refresh token could not be stored; kept in memory only");
                }
            }
        }
    }
    let mut refresh = live.refresh.locked();
    refresh.0 = Some(rotated);
    if let Some(json) = stored_json {
        refresh.1 = json;
    }
}

impl Live {
    /// The stored JSON this connection was loaded from, or last stored itself.
    fn refresh_json(&self) -> String {
        self.refresh.locked().1.clone()
    }

    /// Whether `other` is this refresh-token connection with another refresh token only.
    fn same_but_refresh_token(&self, other: &ConnectionDefinition) -> bool {
        self.definition.kind == ConnectionKind::Oauth2RefreshToken
            && ConnectionDefinition { secret: None, ..self.definition.clone() }
                == ConnectionDefinition { secret: None, ..other.clone() }
    }
}

impl Credentials for HostCredentials {
    fn authorize<'a>(
        &'a self,
        connections: &'a [String],
        scheme: &'a str,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Option<Authorization>, CredentialError>> {
        Box::pin(async move {
            let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
            let live = self.connections().map_err(CredentialError::Unavailable)?;
            let mut bound = None;
            for name in connections {
                let Some(connection) = live.get(name) else {
                    return Err(CredentialError::Refused(format!(
                        "connection {name}, bound to this plugin, does not exist"
                    )));
                };
                if bound.is_none() && connection.patterns.iter().any(|p| p.names(scheme, &host, port)) {
                    bound = Some((name, connection.clone()));
                }
            }
            let Some((name, connection)) = bound else { return Ok(None) };
            // The place first: a token taken before a long wait could expire during it.
            let waiting = Instant::now();
            let place = connection.limiter.acquire().await;
            let waited = waiting.elapsed();
            let (header, value, generation) =
                self.header(name, &connection).await.map_err(CredentialError::Unavailable)?;
            self.figures.sent(name, waited);
            Ok(Some(Authorization { connection: name.clone(), header, value, generation, hold: Box::new(place) }))
        })
    }

    fn answered(&self, authorization: &Authorization, status: u16) {
        self.figures.answered(&authorization.connection, status);
        if status != 401 {
            return;
        }
        let Ok(live) = self.connections() else { return };
        if let Some(connection) = live.get(&authorization.connection) {
            let mut cached = connection.token.locked();
            // Only the token that was refused: a newer one fetched meanwhile stays.
            if cached.as_ref().is_some_and(|(_, _, generation)| *generation == authorization.generation) {
                *cached = None;
            }
        }
    }
}

/// A rate limit: a token bucket for the rate, a semaphore for requests in flight.
struct Limiter {
    rate: Option<(f64, f64)>,
    bucket: tokio::sync::Mutex<(f64, Instant)>,
    in_flight: Option<Arc<Semaphore>>,
}

impl Limiter {
    fn new(limit: Option<RateLimit>) -> Limiter {
        let limit = limit.unwrap_or(RateLimit { per_second: None, burst: None, concurrent: None });
        let rate = limit.per_second.map(|r| (r, f64::from(limit.burst.unwrap_or(r.ceil().max(1.0) as u32))));
        let burst = rate.map_or(0.0, |(_, burst)| burst);
        Limiter {
            rate,
            bucket: tokio::sync::Mutex::new((burst, Instant::now())),
            in_flight: limit.concurrent.map(|n| Arc::new(Semaphore::new(n as usize))),
        }
    }

    /// Waits for a place in flight, then for a token of the rate; the place is held by the
    /// answer until the exchange is done.
    async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        let place = match &self.in_flight {
            Some(in_flight) => in_flight.clone().acquire_owned().await.ok(),
            None => None,
        };
        if let Some((per_second, burst)) = self.rate {
            // Tokens are taken in arrival order: the bucket's lock is held while waiting.
            let mut bucket = self.bucket.lock().await;
            let now = Instant::now();
            let refilled = (bucket.0 + now.duration_since(bucket.1).as_secs_f64() * per_second).min(burst);
            if refilled >= 1.0 {
                *bucket = (refilled - 1.0, now);
            } else {
                let wait = Duration::from_secs_f64((1.0 - refilled) / per_second);
                tokio::time::sleep(wait).await;
                *bucket = (0.0, now + wait);
            }
        }
        place
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|err| format!("reading the token endpoint's answer: {}", short(&err)))?
    {
        if body.len() + chunk.len() > MAX_TOKEN_RESPONSE {
            return Err(format!("the token endpoint's answer is over {MAX_TOKEN_RESPONSE} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An error's text, cut short.
fn short(err: &reqwest::Error) -> String {
    err.to_string().chars().take(200).collect()
}
