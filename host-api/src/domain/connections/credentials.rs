//! The host's side of connections at request time: which connection a plugin's request gets,
//! the header it carries, OAuth access tokens (fetched once, cached, renewed before they expire
//! and after a `401`), and each connection's rate limit, shared by every invocation.
//!
//! Definitions are read from the store once and kept until a change (`reload`, called by the
//! domain on every write here and for every change another cluster node made). A token fetch is
//! one at a time per connection: concurrent requests wait for the one fetch instead of each
//! asking the authorization server. A fetch that fails, hangs (10 s) or answers something that is
//! not a token denies the request with the reason in the plugin's log; the host stays up.

use super::{ConnectionDefinition, ConnectionKind, RateLimit};
use crate::store::Storage;
use base64::Engine as _;
use plugboard_runtime::host::credentials::{Authorization, BoxFuture, Credentials};
use plugboard_runtime::host::outbound::HostPattern;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a token fetch may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest token response read.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(30);

/// A connection ready for requests.
struct Live {
    definition: ConnectionDefinition,
    patterns: Vec<HostPattern>,
    limiter: Limiter,
    /// The cached access token and when it stops being used; one fetch at a time.
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    /// Tokens fetched (for the test endpoint and the tests).
    fetched: std::sync::atomic::AtomicU64,
}

/// Every connection, loaded, by name.
type Loaded = Arc<BTreeMap<String, Arc<Live>>>;

/// The credentials of every connection, for the runtime.
pub struct HostCredentials {
    store: Arc<dyn Storage>,
    live: Mutex<Option<Loaded>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for HostCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostCredentials")
    }
}

impl HostCredentials {
    /// Over the connections in `store`.
    pub fn new(store: Arc<dyn Storage>) -> HostCredentials {
        let http = reqwest::Client::builder()
            .timeout(TOKEN_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        HostCredentials { store, live: Mutex::new(None), http }
    }

    /// Forgets what was read: the next request reads the definitions again (cached tokens and
    /// rate-limit state go with them).
    pub fn reload(&self) {
        *self.live.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn connections(&self) -> Loaded {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(loaded) = live.as_ref() {
            return loaded.clone();
        }
        let mut loaded = BTreeMap::new();
        match self.store.connections() {
            Ok(all) => {
                for (name, json) in all {
                    let Ok(definition) = serde_json::from_str::<ConnectionDefinition>(&json) else {
                        tracing::error!(connection = %name, "stored connection does not parse; not used");
                        continue;
                    };
                    let patterns = definition.hosts.iter().filter_map(|h| HostPattern::parse(h).ok()).collect();
                    let limiter = Limiter::new(definition.rate_limit);
                    let connection = Live {
                        definition,
                        patterns,
                        limiter,
                        token: tokio::sync::Mutex::new(None),
                        fetched: Default::default(),
                    };
                    loaded.insert(name, Arc::new(connection));
                }
            }
            Err(err) => tracing::error!(%err, "reading connections"),
        }
        let loaded = Arc::new(loaded);
        *live = Some(loaded.clone());
        loaded
    }

    /// The header of a request `connection` authorizes.
    async fn header(&self, name: &str, connection: &Live) -> Result<(http::HeaderName, http::HeaderValue), String> {
        let definition = &connection.definition;
        let secret = definition.secret.as_deref().unwrap_or_default();
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
            ConnectionKind::Oauth2ClientCredentials => {
                (http::header::AUTHORIZATION, format!("Bearer {}", self.token(name, connection).await?))
            }
        };
        let mut value = http::HeaderValue::from_str(&value)
            .map_err(|_| format!("connection {name}: the credential is not a header value"))?;
        value.set_sensitive(true);
        Ok((header, value))
    }

    /// A current access token of an OAuth connection: the cached one, or a new one.
    async fn token(&self, name: &str, connection: &Live) -> Result<String, String> {
        let mut cached = connection.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) =
            self.fetch_token(&connection.definition).await.map_err(|reason| format!("connection {name}: {reason}"))?;
        connection.fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let until = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE).max(Duration::from_secs(1));
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    /// RFC 6749 §4.4: `grant_type=client_credentials`, the client authenticated with HTTP Basic
    /// (§2.3.1); answers the token and how long it lives (`expires_in`, else an hour).
    async fn fetch_token(&self, definition: &ConnectionDefinition) -> Result<(String, Duration), String> {
        let url = definition.token_url.as_deref().unwrap_or_default();
        let mut form = vec![("grant_type", "client_credentials".to_string())];
        if !definition.scopes.is_empty() {
            form.push(("scope", definition.scopes.join(" ")));
        }
        if let Some(audience) = &definition.audience {
            form.push(("audience", audience.clone()));
        }
        let request = self
            .http
            .post(url)
            .basic_auth(definition.client_id.as_deref().unwrap_or_default(), definition.secret.as_deref())
            .header("accept", "application/json")
            .form(&form);
        let response =
            request.send().await.map_err(|err| format!("the token endpoint did not answer: {}", short(&err)))?;
        let status = response.status();
        let body = read_limited(response).await?;
        if !status.is_success() {
            let error =
                serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["error"].as_str().map(str::to_string));
            return Err(format!(
                "the token endpoint answered {status}{}",
                error.map(|e| format!(" ({e})")).unwrap_or_default()
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
        Ok((token.to_string(), Duration::from_secs(lifetime)))
    }

    /// `POST /v1/connections/{name}/test`: a token (OAuth), then `probe_url` with the credential.
    pub(super) async fn probe(&self, name: &str, definition: &ConnectionDefinition) -> Value {
        let started = Instant::now();
        let Some(connection) = self.connections().get(name).cloned() else {
            return json!({"ok": false, "error": "the connection is not loaded"});
        };
        let header = match self.header(name, &connection).await {
            Ok(header) => header,
            Err(reason) => return json!({"ok": false, "error": reason}),
        };
        let Some(url) = &definition.probe_url else {
            let fetched = definition.kind == ConnectionKind::Oauth2ClientCredentials;
            return json!({"ok": true, "token_fetched": fetched, "probe": null, "elapsed_ms": started.elapsed().as_millis()});
        };
        let _place = connection.limiter.acquire().await;
        match self.http.get(url).header(header.0, header.1).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                self.answered(name, status);
                json!({"ok": (200..300).contains(&status), "status": status, "elapsed_ms": started.elapsed().as_millis()})
            }
            Err(err) => json!({"ok": false, "error": format!("the probe did not answer: {}", short(&err))}),
        }
    }

    /// Tokens fetched for `name` since it was loaded.
    pub fn tokens_fetched(&self, name: &str) -> u64 {
        self.connections().get(name).map_or(0, |c| c.fetched.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Credentials for HostCredentials {
    fn authorize<'a>(
        &'a self,
        connections: &'a [String],
        scheme: &'a str,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Option<Authorization>, String>> {
        Box::pin(async move {
            let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
            let live = self.connections();
            let bound = connections.iter().find_map(|name| {
                let connection = live.get(name)?;
                connection.patterns.iter().any(|p| p.matches(scheme, &host, port)).then(|| (name, connection.clone()))
            });
            let Some((name, connection)) = bound else { return Ok(None) };
            let (header, value) = self.header(name, &connection).await?;
            let place = connection.limiter.acquire().await;
            Ok(Some(Authorization { connection: name.clone(), header, value, hold: Box::new(place) }))
        })
    }

    fn answered(&self, connection: &str, status: u16) {
        if status != 401 {
            return;
        }
        if let Some(live) = self.connections().get(connection).cloned()
            && let Ok(mut cached) = live.token.try_lock()
        {
            // The next request fetches a new token (one in flight is left to finish).
            *cached = None;
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
