//! DNS lookups of plugins' outbound requests, against a real DNS server on UDP that the test starts
//! (hickory's wire format, the other side's own code): a plugin whose names never answer holds at
//! most its share of the host's lookups, so other plugins' requests still resolve; a lookup that
//! finds no place fails the invocation as `overloaded` (retryable), not as a denial; and an
//! invocation that ends takes its lookups with it, so their places are free at once.

use crate::samples::connector_grant;
use crate::support::common::TestServer;
use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use plugboard_runtime::{DnsResolver, Error, ErrorCode, LookupLimits, Plugin, Runtime};
use plugboard_tests::*;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A DNS server: names under `hang.test` are never answered, every other name's `A` query is
/// answered `127.0.0.1` (and other types with no records).
struct DnsServer {
    addr: SocketAddr,
    hung: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    async fn start() -> DnsServer {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("addr");
        let hung = Arc::new(AtomicUsize::new(0));
        let counted = hung.clone();
        let task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((read, from)) = socket.recv_from(&mut buffer).await else { return };
                let Ok(query) = Message::from_vec(&buffer[..read]) else { continue };
                let Some(question) = query.queries.first().cloned() else { continue };
                if question.name().to_ascii().to_ascii_lowercase().starts_with("hang.test") {
                    counted.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let mut answer = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
                answer.metadata.recursion_desired = query.metadata.recursion_desired;
                answer.metadata.recursion_available = true;
                answer.add_query(question.clone());
                if question.query_type() == RecordType::A {
                    answer.add_answer(Record::from_rdata(
                        question.name().clone(),
                        60,
                        RData::A(A(Ipv4Addr::LOCALHOST)),
                    ));
                }
                if let Ok(bytes) = answer.to_vec() {
                    let _ = socket.send_to(&bytes, from).await;
                }
            }
        });
        DnsServer { addr, hung, task }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The HTTP source named `name`, reading `http://{host}:{port}/` by name (granted exactly, with
/// `allow_private`: the test's names answer loopback).
fn source(runtime: &Runtime, name: &str, host: &str, server: &TestServer) -> Plugin {
    let mut grant = connector_grant(&format!("http://{host}:{}/", server.addr.port()));
    grant.outbound_hosts = vec![host.into()];
    grant.allow_private = true;
    let mut manifest = HTTP_SOURCE.manifest();
    manifest.name = name.into();
    manifest.capabilities.outbound_hosts.push(host.into());
    runtime.load(&HTTP_SOURCE.bytes(), manifest, &grant).expect("load")
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_plugin_whose_names_never_answer_holds_only_its_share_and_its_lookups_end_with_it() {
    let dns = DnsServer::start().await;
    let server = TestServer::start(|_| (200, "[]".into())).await;
    let runtime = crate::support::common::runtime_with(|c| {
        c.caps.timeout = Duration::from_secs(2);
        c.resolver = Arc::new(DnsResolver::with_name_server(dns.addr));
        c.lookups = LookupLimits { host_wide: 4, per_plugin: 2 };
    });
    let hog = source(&runtime, "hog-source", "hang.test", &server);
    let other = source(&runtime, "other-source", "ok.test", &server);

    // The other plugin's name resolves, through the real server.
    let resolved = other.read(None, 10).await;
    assert!(resolved.outcome.is_ok(), "{:?}", resolved.outcome);

    // Two invocations of the hog take its whole share with lookups that never answer ...
    let hanging: Vec<_> = (0..2)
        .map(|_| {
            let hog = hog.clone();
            tokio::spawn(async move { hog.read(None, 10).await })
        })
        .collect();
    until("the hog's lookups to be in flight", || runtime.dns_lookups_in_flight() == 2).await;
    until("the server to see them", || dns.hung.load(Ordering::SeqCst) >= 2).await;

    // ... so its third fails at once as overloaded (retryable), not as a denial of its grant.
    let refused = hog.read(None, 10).await;
    match &refused.outcome {
        Err(err @ Error::Overloaded(message)) => {
            assert_eq!(err.code(), ErrorCode::Overloaded);
            assert!(message.contains("its whole share"), "{message}");
        }
        other => panic!("expected overloaded, got {other:?}"),
    }
    assert!(
        refused.logs.entries.iter().any(|e| e.context == "host" && e.message.contains("not sent")),
        "{:?}",
        refused.logs
    );

    // While the hog's lookups hang, the other plugin still resolves and reaches its server.
    let served = server.requests().len();
    let meanwhile = other.read(None, 10).await;
    assert!(meanwhile.outcome.is_ok(), "{:?}", meanwhile.outcome);
    assert_eq!(server.requests().len(), served + 1);

    // The hanging invocations end at their deadline, and their lookups end with them: no place
    // stays held past the invocation (a blocking lookup would hold it for its own timeout).
    for invocation in hanging {
        let ended = invocation.await.expect("task");
        assert_eq!(ended.outcome.as_ref().err().map(Error::code), Some(ErrorCode::Timeout), "{:?}", ended.outcome);
    }
    until("the ended invocations' lookups to give their places back", || runtime.dns_lookups_in_flight() == 0).await;
    let again = tokio::spawn({
        let hog = hog.clone();
        async move { hog.read(None, 10).await }
    });
    until("a new lookup of the hog", || runtime.dns_lookups_in_flight() == 1).await;
    assert_eq!(again.await.expect("task").outcome.err().map(|e| e.code()), Some(ErrorCode::Timeout));
}

#[tokio::test]
async fn the_default_resolver_answers_from_the_hosts_file() {
    let server = TestServer::start(|_| (200, "[]".into())).await;
    let runtime = crate::support::common::runtime();
    // `localhost` comes from /etc/hosts, asked by the in-process resolver.
    let local = source(&runtime, "local-source", "localhost", &server);
    let outcome = local.read(None, 10).await.outcome;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(runtime.dns_lookups_in_flight(), 0);
}
