//! The Python sample plugins (`sample-plugins/python`, built with componentize-py against
//! `plugin-sdk/python`), run through the runtime with exact expected outputs.
//!
//! A Python component takes about 15 s to compile, so every load goes through
//! [`cached_runtime`], which compiles each component once per cache.

use crate::support::common::{TestServer, cached_runtime, config, records, values};
use plugboard_runtime::{Error, Grant, Header, PluginError, Record, RecordIssue, WriteReport};
use plugboard_tests::*;
use serde_json::json;

// A sample without a test here fails to compile.
use crate::samples::assert_test_exists;
foreach_python_plugin!(assert_test_exists);

/// A record that is not JSON.
fn raw(value: &[u8]) -> Record {
    Record { key: None, value: value.to_vec(), headers: vec![] }
}

/// What CPython's `json` says about `{oops`.
const NOT_JSON: &str = "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)";

#[tokio::test]
async fn py_enrich() {
    let runtime = cached_runtime();

    // `into` set: the entry goes into that field; `default` for a missing field or value.
    let grant = config(&[
        ("key", "sku"),
        ("table", r#"{"A": {"name": "Apple"}, "7": "seven"}"#),
        ("into", "product"),
        ("default", "null"),
    ]);
    let plugin = PY_ENRICH.load(&runtime, &grant);
    let mut input =
        records(&[json!({"sku": "A", "qty": 1}), json!({"sku": 7}), json!({"sku": "Z"}), json!({"qty": 2})]);
    input[0].key = Some(b"k1".to_vec());
    input[0].headers = vec![Header { name: "trace".into(), value: b"t1".to_vec() }];
    let out = plugin.transform(input).await.into_result().expect("enriched");
    assert_eq!(
        values(&out),
        vec![
            json!({"sku": "A", "qty": 1, "product": {"name": "Apple"}}),
            json!({"sku": 7, "product": "seven"}),
            json!({"sku": "Z", "product": null}),
            json!({"qty": 2, "product": null}),
        ]
    );
    // The record's key and headers travel with it.
    assert_eq!(out[0].key.as_deref(), Some(b"k1".as_slice()));
    assert_eq!(out[0].headers, vec![Header { name: "trace".into(), value: b"t1".to_vec() }]);
    assert!(out[1..].iter().all(|r| r.key.is_none() && r.headers.is_empty()));

    // No `into`: object entries are merged; without `default`, a miss passes through unchanged.
    let merge = PY_ENRICH.load(
        &runtime,
        &config(&[
            ("key", "country"),
            ("table", r#"{"DE": {"region": "EU", "vat": 19}, "US": {"region": "NA", "vat": 0}}"#),
        ]),
    );
    let invocation = merge
        .transform(records(&[
            json!({"id": 1, "country": "DE"}),
            json!({"id": 2, "country": "US", "region": "old"}),
            json!({"id": 3, "country": "FR"}),
            json!({"id": 4}),
        ]))
        .await;
    assert!(
        invocation.logs.entries.iter().any(|e| e.message == "enriched 2 of 4 records from `country`"),
        "{:?}",
        invocation.logs.entries
    );
    assert_eq!(
        values(&invocation.into_result().expect("enriched")),
        vec![
            json!({"id": 1, "country": "DE", "region": "EU", "vat": 19}),
            json!({"id": 2, "country": "US", "region": "NA", "vat": 0}),
            json!({"id": 3, "country": "FR"}),
            json!({"id": 4}),
        ]
    );

    // Not JSON, or not an object: invalid-input naming each record.
    let bad = vec![Record::json(&json!({"sku": "A"})), raw(b"{oops")];
    match plugin.transform(bad).await.into_result() {
        Err(Error::Guest(PluginError::InvalidInput(issues))) => {
            assert_eq!(issues, vec![RecordIssue { index: 1, reasons: vec![NOT_JSON.into()] }])
        }
        other => panic!("expected invalid-input, got {other:?}"),
    }
    match plugin.transform(records(&[json!({"sku": "A"}), json!([1]), json!("x")])).await.into_result() {
        Err(Error::Guest(PluginError::InvalidInput(issues))) => assert_eq!(
            issues,
            vec![
                RecordIssue { index: 1, reasons: vec!["expected a JSON object, found array".into()] },
                RecordIssue { index: 2, reasons: vec!["expected a JSON object, found string".into()] },
            ]
        ),
        other => panic!("expected invalid-input, got {other:?}"),
    }

    // Bad or missing config: invalid-config with the reason.
    let cases = [
        (
            config(&[("key", "sku"), ("table", "[1]")]),
            "config key `table` must be a JSON object from a value to its data",
        ),
        (config(&[("table", "{}")]), "config key `key` is not set"),
        (
            config(&[("key", "sku"), ("table", r#"{"A": 1}"#)]),
            "without `into`, table entries are merged into records and must be objects; entry `A` is not",
        ),
    ];
    for (grant, expected) in cases {
        let plugin = PY_ENRICH.load(&runtime, &grant);
        match plugin.transform(records(&[json!({"sku": "A"})])).await.into_result() {
            Err(Error::Guest(PluginError::InvalidConfig(message))) => assert_eq!(message, expected),
            other => panic!("expected invalid-config `{expected}`, got {other:?}"),
        }
    }
}

/// A grant for a Python connector: its URL, the loopback host, and the secret bearer token.
fn py_connector_grant(url: &str) -> Grant {
    let mut grant = config(&[("url", url)]);
    grant.outbound_hosts = vec!["127.0.0.1".into()];
    grant.secrets.insert("token".into(), "s3cret".into());
    grant
}

#[tokio::test]
async fn py_rest_pages() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/orders?page=1&per_page=2" => (200, json!({"items": [{"id": 1}, {"id": 2}], "total": 5}).to_string()),
        "/orders?page=2&per_page=2" => (200, json!({"items": [{"id": 3}, {"id": 4}], "total": 5}).to_string()),
        "/orders?page=3&per_page=2" => (200, json!({"items": [{"id": 5}], "total": 5}).to_string()),
        "/down?page=1&per_page=2" => (503, "busy".into()),
        _ => (404, "{}".into()),
    })
    .await;
    let runtime = cached_runtime();
    let plugin = PY_REST_PAGES.load(&runtime, &py_connector_grant(&server.url("/orders")));

    // per_page defaults to max_records (at most 100); the cursor is the next page number.
    let first = plugin.read(None, 2).await.into_result().expect("page 1");
    assert_eq!(values(&first.records), vec![json!({"id": 1}), json!({"id": 2})]);
    assert_eq!(first.next_cursor.as_deref(), Some("2"));
    let second = plugin.read(first.next_cursor, 2).await.into_result().expect("page 2");
    assert_eq!(values(&second.records), vec![json!({"id": 3}), json!({"id": 4})]);
    assert_eq!(second.next_cursor.as_deref(), Some("3"));
    // A short page is the end for now: the cursor stays on it, to pick up what is appended.
    let last = plugin.read(second.next_cursor, 2).await.into_result().expect("page 3");
    assert_eq!(values(&last.records), vec![json!({"id": 5})]);
    assert_eq!(last.next_cursor.as_deref(), Some("3"));

    let requests = server.requests();
    assert_eq!(
        requests.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        vec!["/orders?page=1&per_page=2", "/orders?page=2&per_page=2", "/orders?page=3&per_page=2"]
    );
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.headers.get("authorization").map(String::as_str) == Some("Bearer s3cret"))
    );

    // A 5xx is retryable, with the request and the status.
    let down = PY_REST_PAGES.load(&runtime, &py_connector_grant(&server.url("/down")));
    match down.read(None, 2).await.into_result() {
        Err(Error::Guest(PluginError::Retryable(message))) => {
            // The query is left out of messages: that is where API keys travel.
            assert_eq!(message, format!("GET {}: HTTP 503: busy", server.url("/down")))
        }
        other => panic!("expected retryable, got {other:?}"),
    }

    // per_page above what one read may return: invalid-config.
    let mut grant = py_connector_grant(&server.url("/orders"));
    grant.config.insert("per_page".into(), "3".into());
    match PY_REST_PAGES.load(&runtime, &grant).read(None, 2).await.into_result() {
        Err(Error::Guest(PluginError::InvalidConfig(message))) => {
            assert_eq!(message, "per_page 3 is more than the 2 records one read may return")
        }
        other => panic!("expected invalid-config, got {other:?}"),
    }

    // No outbound host granted: the SDK maps the host's refusal to `denied`, naming the host.
    let requests_before = server.requests().len();
    let mut grant = py_connector_grant(&server.url("/orders"));
    grant.outbound_hosts.clear();
    match PY_REST_PAGES.load(&runtime, &grant).read(None, 10).await.into_result() {
        Err(Error::Denied { denial, reported }) => {
            assert!(
                denial.contains("is requested by the plugin's manifest but not granted by the operator"),
                "{denial}"
            );
            assert_eq!(
                reported,
                format!(
                    "GET {}: the host denied outbound HTTP to `{}` (not among the allowed hosts)",
                    server.url("/orders"),
                    server.addr
                )
            );
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(server.requests().len(), requests_before, "nothing may reach the server");
}

#[tokio::test]
async fn py_bulk_sink() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/bulk" => (200, json!({"took": 1}).to_string()),
        "/bulk-es" => (
            200,
            json!({"errors": true, "items": [
                {"index": {"status": 201}},
                {"index": {"status": 400, "error": {"type": "mapper_parsing_exception"}}},
                {"index": {"status": 201}}
            ]})
            .to_string(),
        ),
        "/reject" => (400, json!({"error": "bad"}).to_string()),
        _ => (503, "down".into()),
    })
    .await;
    let runtime = cached_runtime();
    let input = records(&[json!({"id": 1, "msg": "a\nb"}), json!({"id": 2}), json!({"id": 3})]);
    let sink = |path: &str| PY_BULK_SINK.load(&runtime, &py_connector_grant(&server.url(path)));

    // One POST of NDJSON: one compact document per line, newlines inside values escaped.
    let report = sink("/bulk").write(input.clone()).await.into_result().expect("written");
    assert_eq!(report, WriteReport { accepted: 3, failed: 0 });
    let posted = &server.requests()[0];
    assert_eq!((posted.method.as_str(), posted.path.as_str()), ("POST", "/bulk"));
    assert_eq!(posted.headers.get("content-type").map(String::as_str), Some("application/x-ndjson"));
    assert_eq!(posted.headers.get("authorization").map(String::as_str), Some("Bearer s3cret"));
    assert_eq!(
        String::from_utf8(posted.body.clone()).expect("UTF-8 body"),
        "{\"id\":1,\"msg\":\"a\\nb\"}\n{\"id\":2}\n{\"id\":3}\n"
    );

    // An Elasticsearch-style answer reports failed lines per item.
    let report = sink("/bulk-es").write(input.clone()).await.into_result().expect("written");
    assert_eq!(report, WriteReport { accepted: 2, failed: 1 });

    // 4xx: internal with the status; 5xx: retryable.
    match sink("/reject").write(input.clone()).await.into_result() {
        Err(Error::Guest(PluginError::Internal(message))) => {
            assert_eq!(message, format!("POST {}: HTTP 400: {{\"error\":\"bad\"}}", server.url("/reject")))
        }
        other => panic!("expected internal, got {other:?}"),
    }
    match sink("/down").write(input.clone()).await.into_result() {
        Err(Error::Guest(PluginError::Retryable(message))) => {
            assert_eq!(message, format!("POST {}: HTTP 503: down", server.url("/down")))
        }
        other => panic!("expected retryable, got {other:?}"),
    }

    // A record that is not JSON: invalid-input, and nothing is sent; an empty batch sends nothing.
    let sent = server.requests().len();
    let bad = vec![Record::json(&json!({"id": 1})), raw(b"{oops")];
    match sink("/bulk").write(bad).await.into_result() {
        Err(Error::Guest(PluginError::InvalidInput(issues))) => {
            assert_eq!(issues, vec![RecordIssue { index: 1, reasons: vec![NOT_JSON.into()] }])
        }
        other => panic!("expected invalid-input, got {other:?}"),
    }
    let empty = sink("/bulk").write(Vec::new()).await.into_result().expect("written");
    assert_eq!(empty, WriteReport { accepted: 0, failed: 0 });
    assert_eq!(server.requests().len(), sent);
}
