//! Every sample plugin, built from source, run through the runtime with exact expected outputs.
//!
//! `foreach_plugin!` names a test per sample plugin below: adding a plugin without a test here
//! fails to compile.

use crate::support::common::{TestServer, config, records, runtime, values};
use plugboard_runtime::{Batch, Error, Grant, PluginError, RecordIssue, WriteReport};
use plugboard_tests::*;
use serde_json::json;

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
pub(crate) use assert_test_exists;
foreach_plugin!(assert_test_exists);
// The webhook sink's test lives with the other outgoing-webhook checks.
use crate::webhook_out::webhook_sink;

#[tokio::test]
async fn json_mapper() {
    let mapping = json!({
        "id": "$.orderId",
        "customer": {"id": "$.customerId", "tier": "gold"},
        "total": "$.orderTotal",
        "skus": "$.items[*].sku",
        "first": "$.items[0].qty",
        "missing": "$.nope"
    });
    let plugin = JSON_MAPPER.load(&runtime(), &config(&[("mapping", &mapping.to_string())]));
    let input = records(&[
        json!({"orderId": "A1", "customerId": 7, "orderTotal": 1250.5, "items": [{"sku": "x", "qty": 2}, {"sku": "y", "qty": 1}]}),
        json!({"orderId": "A2", "customerId": 8, "orderTotal": 10, "items": []}),
    ]);
    let out = plugin.transform(input).await.into_result().expect("mapped");
    assert_eq!(
        values(&out),
        vec![
            json!({"id": "A1", "customer": {"id": 7, "tier": "gold"}, "total": 1250.5, "skus": ["x", "y"], "first": 2, "missing": null}),
            json!({"id": "A2", "customer": {"id": 8, "tier": "gold"}, "total": 10, "skus": [], "first": null, "missing": null}),
        ]
    );

    // Not JSON: a typed invalid-input error naming the record.
    let bad = vec![
        plugboard_runtime::Record::json(&json!({})),
        plugboard_runtime::Record { key: None, value: b"{oops".to_vec(), headers: vec![] },
    ];
    match plugin.transform(bad).await.into_result() {
        Err(Error::Guest(PluginError::InvalidInput(issues))) => {
            assert_eq!(issues.iter().map(|i| i.index).collect::<Vec<_>>(), vec![1])
        }
        other => panic!("expected invalid-input, got {other:?}"),
    }

    // No mapping granted: invalid-config, not a crash.
    let unconfigured = JSON_MAPPER.load(&runtime(), &Grant::default());
    assert!(matches!(
        unconfigured.transform(records(&[json!({})])).await.into_result(),
        Err(Error::Guest(PluginError::InvalidConfig(_)))
    ));
}

#[tokio::test]
async fn filter() {
    let condition = json!({"all": [
        {"field": "$.status", "op": "equals", "value": "paid"},
        {"any": [
            {"field": "$.total", "op": "gt", "value": 100},
            {"field": "$.tags", "op": "contains", "value": "vip"}
        ]},
        {"field": "$.test", "op": "exists", "value": false},
        {"field": "$.country", "op": "not-equals", "value": "XX"}
    ]});
    let plugin = FILTER.load(&runtime(), &config(&[("condition", &condition.to_string())]));
    let input = records(&[
        json!({"id": 1, "status": "paid", "total": 150}),
        json!({"id": 2, "status": "paid", "total": 50}),
        json!({"id": 3, "status": "paid", "total": 50, "tags": ["vip"]}),
        json!({"id": 4, "status": "open", "total": 500}),
        json!({"id": 5, "status": "paid", "total": 500, "test": true}),
        json!({"id": 6, "status": "paid", "total": 500, "country": "XX"}),
        json!({"id": 7, "status": "paid", "total": 99.5, "tags": ["x"]}),
    ]);
    let kept: Vec<_> = values(&plugin.transform(input).await.into_result().expect("filtered"))
        .into_iter()
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(kept, vec![json!(1), json!(3)]);

    let lt = FILTER.load(&runtime(), &config(&[("condition", r#"{"field": "$.name", "op": "lt", "value": "m"}"#)]));
    let out = lt
        .transform(records(&[json!({"name": "alice"}), json!({"name": "zed"}), json!({})]))
        .await
        .into_result()
        .expect("filtered");
    assert_eq!(values(&out), vec![json!({"name": "alice"})]);

    let broken = FILTER.load(&runtime(), &config(&[("condition", r#"{"field": "nope", "op": "equals", "value": 1}"#)]));
    assert!(matches!(
        broken.transform(records(&[json!({})])).await.into_result(),
        Err(Error::Guest(PluginError::InvalidConfig(_)))
    ));
}

#[tokio::test]
async fn aggregate() {
    let aggregations = json!([
        {"op": "count", "as": "orders"},
        {"op": "sum", "field": "$.total", "as": "revenue"},
        {"op": "avg", "field": "$.total", "as": "average"},
        {"op": "min", "field": "$.total", "as": "smallest"},
        {"op": "max", "field": "$.total", "as": "largest"}
    ]);
    let grant = config(&[("group_by", "$.region"), ("aggregations", &aggregations.to_string())]);
    let plugin = AGGREGATE.load(&runtime(), &grant);
    let input = records(&[
        json!({"region": "eu", "total": 10}),
        json!({"region": "us", "total": 5}),
        json!({"region": "eu", "total": 30}),
        json!({"region": "eu", "total": "n/a"}),
        json!({"total": 7}),
    ]);
    let out = plugin.transform(input).await.into_result().expect("aggregated");
    assert_eq!(
        values(&out),
        vec![
            json!({"group": "eu", "orders": 3, "revenue": 40.0, "average": 20.0, "smallest": 10.0, "largest": 30.0}),
            json!({"group": "us", "orders": 1, "revenue": 5.0, "average": 5.0, "smallest": 5.0, "largest": 5.0}),
            json!({"group": null, "orders": 1, "revenue": 7.0, "average": 7.0, "smallest": 7.0, "largest": 7.0}),
        ]
    );
    let ungrouped = AGGREGATE.load(&runtime(), &config(&[("aggregations", r#"[{"op": "count", "as": "n"}]"#)]));
    let out = ungrouped.transform(records(&[json!(1), json!(2)])).await.into_result().expect("aggregated");
    assert_eq!(values(&out), vec![json!({"n": 2})]);
}

#[tokio::test]
async fn schema_validator() {
    let schema = json!({
        "type": "object",
        "required": ["id", "total"],
        "properties": {
            "id": {"type": "string", "minLength": 2},
            "total": {"type": "number", "minimum": 0},
            "status": {"enum": ["open", "paid"]},
            "items": {"type": "array", "items": {"type": "object", "required": ["sku"]}}
        },
        "additionalProperties": false
    });
    let plugin = SCHEMA_VALIDATOR.load(&runtime(), &config(&[("schema", &schema.to_string())]));
    let good = records(&[json!({"id": "A1", "total": 5, "status": "paid", "items": [{"sku": "x"}]})]);
    assert_eq!(plugin.transform(good.clone()).await.into_result().expect("valid"), good);

    let mixed = records(&[
        json!({"id": "A1", "total": 5}),
        json!({"id": "B", "total": -1, "extra": true}),
        json!({"total": "x", "status": "lost", "items": [{}]}),
    ]);
    match plugin.transform(mixed).await.into_result() {
        Err(Error::Guest(PluginError::InvalidInput(issues))) => assert_eq!(
            issues,
            vec![
                RecordIssue {
                    index: 1,
                    reasons: vec![
                        "/: property `extra` is not allowed".into(),
                        "/id: 1 characters, fewer than 2".into(),
                        "/total: -1 is less than the minimum 0".into(),
                    ]
                },
                RecordIssue {
                    index: 2,
                    reasons: vec![
                        "/: missing required property `id`".into(),
                        "/items/0: missing required property `sku`".into(),
                        "/status: \"lost\" is not one of [\"open\",\"paid\"]".into(),
                        "/total: expected number, found string".into(),
                    ]
                },
            ]
        ),
        other => panic!("expected invalid-input, got {other:?}"),
    }
}

#[tokio::test]
async fn redact() {
    let plugin = REDACT.load(&runtime(), &config(&[("fields", r#"["$.ssn", "$.customer.phone"]"#)]));
    let input = records(&[json!({
        "note": "mail jane.doe+x@example.com or call",
        "card": "4111 1111 1111 1111",
        "order": "1234567890123",
        "ssn": "123-45-6789",
        "customer": {"phone": "+1 555 0100", "emails": ["bob@mail.example.org"]}
    })]);
    let out = plugin.transform(input).await.into_result().expect("redacted");
    assert_eq!(
        values(&out),
        vec![json!({
            "note": "mail ***@example.com or call",
            "card": "************1111",
            "order": "1234567890123",
            "ssn": "[REDACTED]",
            "customer": {"phone": "[REDACTED]", "emails": ["***@mail.example.org"]}
        })]
    );
}

#[tokio::test]
async fn csv_to_json() {
    let plugin = CSV_TO_JSON.load(&runtime(), &config(&[("infer_types", "true")]));
    let csv = "id,name,total,paid\r\n1,\"Smith, Jane\",12.5,true\n2,\"say \"\"hi\"\"\",,false\n";
    let input =
        vec![plugboard_runtime::Record { key: Some(b"k".to_vec()), value: csv.as_bytes().to_vec(), headers: vec![] }];
    let out = plugin.transform(input).await.into_result().expect("converted");
    assert_eq!(
        values(&out),
        vec![
            json!({"id": 1, "name": "Smith, Jane", "total": 12.5, "paid": true}),
            json!({"id": 2, "name": "say \"hi\"", "total": null, "paid": false}),
        ]
    );
    assert!(out.iter().all(|r| r.key.as_deref() == Some(b"k".as_slice())));

    let semicolons = CSV_TO_JSON.load(&runtime(), &config(&[("delimiter", ";")]));
    let out = semicolons
        .transform(
            records(&[])
                .into_iter()
                .chain([plugboard_runtime::Record { key: None, value: b"a;b\n1;2".to_vec(), headers: vec![] }])
                .collect::<Batch>(),
        )
        .await
        .into_result()
        .expect("converted");
    assert_eq!(values(&out), vec![json!({"a": "1", "b": "2"})]);

    let ragged = vec![plugboard_runtime::Record { key: None, value: b"a,b\n1\n".to_vec(), headers: vec![] }];
    match plugin.transform(ragged).await.into_result() {
        Err(Error::Guest(PluginError::InvalidInput(issues))) => {
            assert_eq!(
                issues,
                vec![RecordIssue { index: 0, reasons: vec!["line 2 has 1 fields, the header has 2".into()] }]
            )
        }
        other => panic!("expected invalid-input, got {other:?}"),
    }
}

/// A grant for a connector: its URL, the loopback host, and a secret auth header.
pub fn connector_grant(url: &str) -> Grant {
    let mut grant = config(&[("url", url)]);
    grant.outbound_hosts = vec!["127.0.0.1".into()];
    grant.secrets.insert("auth_header".into(), "Bearer s3cret".into());
    grant
}

#[tokio::test]
async fn http_source() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/orders" => (200, json!({"data": [{"id": 1}, {"id": 2}], "next": "/orders?page=2"}).to_string()),
        "/orders?page=2" => (200, json!({"data": [{"id": 3}], "next": "/orders?page=3"}).to_string()),
        "/orders?page=3" => (200, json!({"data": [{"id": 4}], "next": null}).to_string()),
        _ => (404, "{}".into()),
    })
    .await;
    let mut grant = connector_grant(&server.url("/orders"));
    grant.config.insert("records_path".into(), "$.data".into());
    grant.config.insert("next_path".into(), "$.next".into());
    let plugin = HTTP_SOURCE.load(&runtime(), &grant);

    // max 3: pages 1 and 2, cursor at page 3.
    let page = plugin.read(None, 3).await.into_result().expect("read");
    assert_eq!(values(&page.records), vec![json!({"id": 1}), json!({"id": 2}), json!({"id": 3})]);
    assert_eq!(page.next_cursor.as_deref(), Some(server.url("/orders?page=3").as_str()));
    let rest = plugin.read(page.next_cursor, 10).await.into_result().expect("read");
    assert_eq!(values(&rest.records), vec![json!({"id": 4})]);
    assert_eq!(rest.next_cursor, None);

    let requests = server.requests();
    assert_eq!(
        requests.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        vec!["/orders", "/orders?page=2", "/orders?page=3"]
    );
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.headers.get("authorization").map(String::as_str) == Some("Bearer s3cret"))
    );
}

#[tokio::test]
async fn http_sink() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/ok" => (200, "{}".into()),
        "/counts" => (202, json!({"accepted": 1, "failed": 1}).to_string()),
        "/reject" => (400, "{}".into()),
        _ => (503, "{}".into()),
    })
    .await;
    let input = records(&[json!({"id": 1}), json!({"id": 2})]);
    let write = |path: &str| {
        let plugin = HTTP_SINK.load(&runtime(), &connector_grant(&server.url(path)));
        let input = input.clone();
        async move { plugin.write(input).await.into_result() }
    };
    assert_eq!(write("/ok").await.expect("written"), WriteReport { accepted: 2, failed: 0 });
    assert_eq!(write("/counts").await.expect("written"), WriteReport { accepted: 1, failed: 1 });
    assert_eq!(write("/reject").await.expect("written"), WriteReport { accepted: 0, failed: 2 });
    assert!(matches!(write("/down").await, Err(Error::Guest(PluginError::Retryable(_)))));

    let posted = &server.requests()[0];
    assert_eq!(posted.method, "POST");
    assert_eq!(posted.headers.get("content-type").map(String::as_str), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&posted.body).expect("JSON body"),
        json!([{"id": 1}, {"id": 2}])
    );
}
