//! Real NATS servers with JetStream for the scale-out work (issue 15): Debian's `nats-server`
//! (2.9.x, installed by `.ci/run`) started on free loopback ports, either alone or as a cluster of
//! three with routes between them, each with its own store directory, each killable on its own
//! (SIGKILL: what a dead machine does). Drop kills what is left.
//!
//! The client is the official `async-nats`, built without its `server_2_10`+ features: those add
//! stream and bucket settings a 2.9 server does not know. Even so, 0.51 cannot decode a 2.9
//! server's account info (it requires `reserved_memory`/`reserved_storage`, added in 2.10), and
//! `create_key_value` asks for it first: [`create_bucket`] creates a bucket's stream by the
//! key-value conventions instead, and `get_key_value` opens it as usual.

use plugboard_host_api::store::cluster::bucket_stream_config;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the server.
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// How long a server, or a cluster's JetStream leader election, may take to come up.
pub const READY_WITHIN: Duration = Duration::from_secs(30);

/// One `nats-server` process.
pub struct NatsNode {
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    child: Option<Child>,
}

/// One server, or a cluster of servers that route to each other; each keeps its JetStream store
/// under one temporary directory.
pub struct NatsCluster {
    /// The servers, in the order they were started.
    pub nodes: Vec<NatsNode>,
    _dir: tempfile::TempDir,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn config(name: &str, port: u16, store: &Path, cluster: Option<(u16, &[u16])>) -> String {
    let mut text = format!(
        "server_name: {name}\nlisten: 127.0.0.1:{port}\njetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}}\n",
        store.display()
    );
    if let Some((own, routes)) = cluster {
        let routes: Vec<String> = routes.iter().map(|p| format!("nats-route://127.0.0.1:{p}")).collect();
        text.push_str(&format!(
            "cluster {{\n  name: plugboard\n  listen: 127.0.0.1:{own}\n  routes: [{}]\n}}\n",
            routes.join(", ")
        ));
    }
    text
}

impl NatsCluster {
    /// One server with JetStream.
    ///
    /// # Errors
    /// When `nats-server` is missing (with how to install it) or does not come up.
    pub async fn single() -> Result<NatsCluster, String> {
        NatsCluster::start(1).await
    }

    /// `size` servers with JetStream, routed to each other (size 1: no cluster block). Answers
    /// once every server accepts clients and JetStream answers through each of them.
    ///
    /// # Errors
    /// When `nats-server` is missing or a server does not come up within [`READY_WITHIN`].
    pub async fn start(size: usize) -> Result<NatsCluster, String> {
        if !Path::new(NATS_SERVER).exists() {
            return Err(format!(
                "{NATS_SERVER} is missing: the scale-out tests run Debian's NATS server \
                 (`apt-get install nats-server`, as .ci/run does)"
            ));
        }
        // A free port is free only until someone else binds it: tests, browsers and servers run
        // in parallel. A server that cannot bind exits at once; start again on fresh ports.
        let mut last = String::new();
        for _ in 0..5 {
            match NatsCluster::start_once(size).await {
                Ok(cluster) => return Ok(cluster),
                Err(err) => last = err,
            }
        }
        Err(last)
    }

    async fn start_once(size: usize) -> Result<NatsCluster, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let ports: Vec<(u16, u16)> = (0..size)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<std::io::Result<_>>()
            .map_err(|e| e.to_string())?;
        let routes: Vec<u16> = ports.iter().map(|(_, route)| *route).collect();
        let mut nodes = Vec::new();
        for (index, (port, route)) in ports.iter().enumerate() {
            let name = format!("n{}", index + 1);
            let store: PathBuf = dir.path().join(&name);
            let cluster = (size > 1).then_some((*route, routes.as_slice()));
            let file = dir.path().join(format!("{name}.conf"));
            std::fs::write(&file, config(&name, *port, &store, cluster)).map_err(|e| e.to_string())?;
            let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).map_err(|e| e.to_string())?;
            let child = Command::new(NATS_SERVER)
                .arg("-c")
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {NATS_SERVER}: {e}"))?;
            nodes.push(NatsNode { url: format!("nats://127.0.0.1:{port}"), child: Some(child) });
        }
        let mut cluster = NatsCluster { nodes, _dir: dir };
        for index in 0..cluster.nodes.len() {
            if let Err(err) = cluster.nodes[index].wait_for_jetstream().await {
                return Err(format!("{err}\n{}", cluster.log(index)));
            }
        }
        Ok(cluster)
    }

    /// Every server's client address, for a client that fails over between them.
    pub fn addresses(&self) -> Vec<async_nats::ServerAddr> {
        self.nodes.iter().filter_map(|n| n.url.parse().ok()).collect()
    }

    /// The server log of node `index` (for a failing test's message).
    pub fn log(&self, index: usize) -> String {
        std::fs::read_to_string(self._dir.path().join(format!("n{}.log", index + 1))).unwrap_or_default()
    }
}

/// Creates (or finds, when it exists with the same settings) key-value bucket `name` with
/// `replicas` copies, keeping one value per key: the stream `KV_<name>` over `$KV.<name>.>` with
/// the settings `create_key_value` would give it (rollups, no deletes but purge markers, new
/// writes refused rather than old ones dropped) but one: no direct gets. A direct get may be
/// answered by a replica that has not caught up, so a read right after an acknowledged write can
/// answer the value before it (seen in `jetstream.rs` after a server was killed); without them
/// every get goes to the stream's leader, which answers what it acknowledged.
///
/// # Errors
/// The server's refusal (no quorum yet in a cluster, say).
pub async fn create_bucket(
    js: &async_nats::jetstream::Context,
    name: &str,
    replicas: usize,
) -> Result<async_nats::jetstream::kv::Store, String> {
    let config = bucket_stream_config(name, replicas, Duration::ZERO);
    js.get_or_create_stream(config).await.map_err(|e| e.to_string())?;
    js.get_key_value(name).await.map_err(|e| e.to_string())
}

impl NatsNode {
    /// One server with JetStream whose config ends with `settings` (accounts, TLS, `include`s
    /// of files in `dir`), started with `env` (what the config's `$VARIABLES` name). Its config,
    /// store and log (`nats.log`) live in `dir`. Answers once it logged that it is ready:
    /// readiness cannot be probed with a client here, it would need the credentials.
    ///
    /// # Errors
    /// When `nats-server` is missing, refuses the config, or does not come up.
    pub async fn configured(dir: &Path, settings: &str, env: &[(&str, &str)]) -> Result<NatsNode, String> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port().map_err(|e| e.to_string())?;
            let text = format!(
                "listen: 127.0.0.1:{port}\njetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}}\n{settings}\n",
                dir.join("nats-store").display()
            );
            std::fs::write(dir.join("nats.conf"), text).map_err(|e| e.to_string())?;
            let log = dir.join("nats.log");
            let child = Command::new(NATS_SERVER)
                .arg("-c")
                .arg(dir.join("nats.conf"))
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
                .spawn()
                .map_err(|e| format!("cannot start {NATS_SERVER}: {e}"))?;
            let mut node = NatsNode { url: format!("nats://127.0.0.1:{port}"), child: Some(child) };
            let started = Instant::now();
            while started.elapsed() < READY_WITHIN {
                if std::fs::read_to_string(&log).unwrap_or_default().contains("Server is ready") {
                    return Ok(node);
                }
                if let Some(Ok(Some(_))) = node.child.as_mut().map(Child::try_wait) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            last = std::fs::read_to_string(&log).unwrap_or_default();
        }
        Err(format!("nats-server did not come up:\n{last}"))
    }

    /// Connects, then asks JetStream for a stream that does not exist until it answers "not
    /// found" (a cluster answers only once it elected its meta leader). Not the account info:
    /// async-nats 0.51 cannot decode a 2.9 server's.
    async fn wait_for_jetstream(&mut self) -> Result<(), String> {
        use async_nats::jetstream::ErrorCode;
        use async_nats::jetstream::context::GetStreamErrorKind;
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < READY_WITHIN {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("{} exited at start ({status})", self.url));
            }
            match async_nats::connect(&self.url).await {
                Ok(client) => match async_nats::jetstream::new(client).get_stream("READINESS-PROBE").await {
                    Err(err) => match err.kind() {
                        GetStreamErrorKind::JetStream(answer) if answer.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                            return Ok(());
                        }
                        _ => last = err.to_string(),
                    },
                    Ok(_) => return Ok(()),
                },
                Err(err) => last = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{} did not serve JetStream within {READY_WITHIN:?}: {last}", self.url))
    }

    /// Kills the server at once (SIGKILL), as a dead machine would stop.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy in front of a server that can hold bytes for a while — both directions, or only
/// what the client sends: a node connected through it falls behind the log, or cannot get its
/// publishes to the server, without losing its connection (what a slow or broken network does).
/// Held bytes are sent when released, and dropped with the proxy.
pub struct HeldProxy {
    /// `nats://127.0.0.1:PORT`: where to connect instead of the server.
    pub url: String,
    hold_down: tokio::sync::watch::Sender<bool>,
    hold_up: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl HeldProxy {
    /// Listens on a free loopback port and forwards each connection to `upstream` (`HOST:PORT`).
    pub async fn start(upstream: &str) -> HeldProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a proxy port");
        let url = format!("nats://{}", listener.local_addr().expect("address"));
        let (hold_down, held_down) = tokio::sync::watch::channel(false);
        let (hold_up, held_up) = tokio::sync::watch::channel(false);
        let upstream = upstream.to_string();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { continue };
                let ((client_in, client_out), (server_in, server_out)) = (client.into_split(), server.into_split());
                tokio::spawn(forward(client_in, server_out, held_up.clone()));
                tokio::spawn(forward(server_in, client_out, held_down.clone()));
            }
        });
        HeldProxy { url, hold_down, hold_up, task }
    }

    /// Holds (true) or releases (false) every byte, both ways.
    pub fn hold(&self, hold: bool) {
        self.hold_down.send_replace(hold);
        self.hold_up.send_replace(hold);
    }

    /// Holds (true) or releases (false) what the client sends; what the server sends flows.
    pub fn hold_upstream(&self, hold: bool) {
        self.hold_up.send_replace(hold);
    }
}

impl Drop for HeldProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, each chunk only while not held.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut held: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else { return };
        if read == 0 || held.wait_for(|held| !*held).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
