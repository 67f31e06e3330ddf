//! Helpers shared by the test modules: runtimes, records, and a real local HTTP server.

use crate::support::server::{ADMIN, Api};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use plugboard_runtime::signing::{SIGNATURE_SECTION, sections};
use plugboard_runtime::{Batch, Budget, Grant, Record, Runtime, RuntimeConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A runtime with the default caps but a short deadline, so hostile guests end quickly.
pub fn runtime() -> Runtime {
    runtime_with(|_| {})
}

/// A runtime like [`runtime`] whose compiled artifacts persist in one cache shared by every test
/// and every run (`target/tmp/compile-cache`): a Python or JavaScript component takes seconds to
/// compile, and is compiled once (the cache's lock makes concurrent loads wait for one compile).
pub fn cached_runtime() -> Runtime {
    runtime_with(|config| config.cache_dir = Some(shared_compile_cache()))
}

/// The compile cache [`cached_runtime`] and the test servers share.
pub fn shared_compile_cache() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compile-cache")
}

/// A runtime whose config `edit` adjusts.
pub fn runtime_with(edit: impl FnOnce(&mut RuntimeConfig)) -> Runtime {
    let mut config = RuntimeConfig {
        caps: Budget { timeout: Duration::from_secs(5), ..Budget::default() },
        max_concurrent_instances: 96,
        ..RuntimeConfig::default()
    };
    edit(&mut config);
    Runtime::new(config).expect("runtime")
}

/// A batch of JSON records.
pub fn records(values: &[Value]) -> Batch {
    values.iter().map(Record::json).collect()
}

/// The JSON values of a batch.
pub fn values(batch: &Batch) -> Vec<Value> {
    batch.iter().map(|r| r.to_json().expect("JSON record")).collect()
}

/// A grant of plain config values.
pub fn config(pairs: &[(&str, &str)]) -> Grant {
    Grant {
        config: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        ..Grant::default()
    }
}

/// One request the test server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// When it arrived (for the time between a request and its retry).
    pub at: std::time::Instant,
}

/// An answer: status, extra headers, body.
pub type Reply = (u16, Vec<(&'static str, String)>, String);

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A real HTTP/1 server on 127.0.0.1:0 that records requests and answers through a closure.
pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(handler: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) -> TestServer {
        TestServer::start_at("127.0.0.1:0".parse().expect("addr"), handler).await
    }

    /// A server on `addr` (for one that takes over an address another server had).
    pub async fn start_at(
        addr: SocketAddr,
        handler: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static,
    ) -> TestServer {
        TestServer::replying_at(addr, move |seen| {
            let (status, body) = handler(seen);
            (status, Vec::new(), body)
        })
        .await
    }

    /// A server whose answers may carry headers of their own.
    pub async fn replying(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
        TestServer::replying_at("127.0.0.1:0".parse().expect("addr"), handler).await
    }

    async fn replying_at(addr: SocketAddr, handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else { return };
                    let seen = seen.clone();
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                            let seen = seen.clone();
                            let handler = handler.clone();
                            async move {
                                let at = std::time::Instant::now();
                                let method = request.method().to_string();
                                let path = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                                let headers = request
                                    .headers()
                                    .iter()
                                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                                    .collect();
                                let body = request
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes().to_vec())
                                    .unwrap_or_default();
                                let request = Seen { method, path, headers, body, at };
                                let (status, extra, reply) = handler(&request);
                                seen.lock().expect("lock").push(request);
                                let mut response = hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json");
                                for (name, value) in extra {
                                    response = response.header(name, value);
                                }
                                Ok::<_, hyper::Error>(response.body(Full::new(Bytes::from(reply))).expect("response"))
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        TestServer { addr, seen, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `plugboard` binary of this very build: `cargo test --workspace` builds it beside this test
/// binary (`target/<profile>/deps/all-…` → `target/<profile>/plugboard`, because host-api has an
/// integration test of its own, `host-api/tests/binary.rs`), else the newest of
/// `target/{release,debug}/plugboard` or `PLUGBOARD_BIN`. A missing binary fails the test rather
/// than skipping it, so that CI cannot pass without running it.
pub fn plugboard_binary() -> std::path::PathBuf {
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.parent()?.join("plugboard")));
    match beside.filter(|path| path.is_file()) {
        Some(binary) => binary,
        None => match plugboard_harness::child::locate_binary(None) {
            Ok(binary) => binary,
            Err(err) => panic!("this test runs the plugboard binary: {err:#}"),
        },
    }
}

/// `(action, target)` of every audit entry, oldest first.
pub(crate) async fn audit_actions(api: &Api) -> Vec<(String, String)> {
    let (_, audit) = api.get("/v1/audit?limit=1000", ADMIN).await;
    audit["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| (e["action"].as_str().unwrap_or("").into(), e["target"].as_str().unwrap_or("").into()))
                .collect()
        })
        .unwrap_or_default()
}

/// The file without its signature section (header + everything after it).
pub(crate) fn strip_signature(file: &[u8]) -> Vec<u8> {
    let (_, parsed) = sections::parse(file).expect("parses");
    let mut out = file[..8].to_vec();
    for section in parsed.iter().filter(|s| s.name != Some(SIGNATURE_SECTION)) {
        out.extend_from_slice(section.raw);
    }
    out
}
