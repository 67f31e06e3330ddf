//! The JavaScript and TypeScript sample plugins (`sample-plugins/js`, built with jco and
//! `@plugboard/sdk`), run through the runtime with exact expected outputs and typed errors.
//!
//! A JavaScript component takes 8–18 s to compile, so every test loads through
//! `cached_runtime()`, which compiles each component once.

use crate::support::common::{TestServer, cached_runtime, config, records, values};
use plugboard_runtime::{Error, ErrorCode, Grant, PluginError, RecordIssue, WriteReport};
use plugboard_tests::*;
use serde_json::json;
use std::sync::{Arc, Mutex};

// A sample without a test here fails to compile.
use crate::samples::assert_test_exists;
foreach_js_plugin!(assert_test_exists);

/// A grant for a JS connector: config, secrets and the loopback host.
fn connector(config_pairs: &[(&str, &str)], secrets: &[(&str, &str)]) -> Grant {
    let mut grant = config(config_pairs);
    grant.secrets = secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    grant.outbound_hosts = vec!["127.0.0.1".into()];
    grant
}

#[tokio::test]
async fn js_slack_notify() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/hook" => (200, "ok".into()),
        "/gone" => (404, "no_service".into()),
        _ => (503, "try later".into()),
    })
    .await;
    let template = "Order {id} from {customer.name}: {total}";
    let load = |path: &str| {
        let grant = connector(&[("template", template)], &[("webhook_url", &server.url(path))]);
        JS_SLACK_NOTIFY.load(&cached_runtime(), &grant)
    };
    let input = records(&[
        json!({"id": "A1", "customer": {"name": "Ada"}, "total": 12.5}),
        json!({"id": "A2", "customer": {"name": "Bob"}}),
        json!({"id": "A3", "customer": {"name": "Cy"}, "total": 40}),
    ]);

    // One message per record; the record without `total` is not posted and counts as failed.
    let invocation = load("/hook").write(input.clone()).await;
    assert!(
        invocation.logs.entries.iter().any(|e| e.message == "record 1: no `total` for the template; not posted"),
        "{:?}",
        invocation.logs.entries
    );
    assert_eq!(invocation.into_result().expect("written"), WriteReport { accepted: 2, failed: 1 });
    let posted = server.requests();
    assert!(posted.iter().all(|r| r.method == "POST" && r.path == "/hook"));
    assert!(posted.iter().all(|r| r.headers.get("content-type").map(String::as_str) == Some("application/json")));
    let bodies: Vec<serde_json::Value> =
        posted.iter().map(|r| serde_json::from_slice(&r.body).expect("JSON body")).collect();
    assert_eq!(bodies, vec![json!({"text": "Order A1 from Ada: 12.5"}), json!({"text": "Order A3 from Cy: 40"})]);

    // A 5xx is retryable, a 4xx is not; both name the request and the status — but the webhook
    // URL is the plugin's secret (a chat webhook URL is its own credential): the host blanks it.
    match load("/down").write(input.clone()).await.into_result() {
        Err(Error::Guest(PluginError::Retryable(message))) => {
            assert_eq!(message, "POST [secret webhook_url]: HTTP 503: try later")
        }
        other => panic!("expected retryable, got {other:?}"),
    }
    match load("/gone").write(input.clone()).await.into_result() {
        Err(Error::Guest(PluginError::Internal(message))) => {
            assert_eq!(message, "POST [secret webhook_url]: HTTP 404: no_service")
        }
        other => panic!("expected internal, got {other:?}"),
    }

    // No template: invalid-config before anything is posted.
    let before = server.requests().len();
    let unconfigured = connector(&[], &[("webhook_url", &server.url("/hook"))]);
    match JS_SLACK_NOTIFY.load(&cached_runtime(), &unconfigured).write(input).await.into_result() {
        Err(Error::Guest(PluginError::InvalidConfig(message))) => {
            assert_eq!(message, "config key `template` is not set")
        }
        other => panic!("expected invalid-config, got {other:?}"),
    }
    assert_eq!(server.requests().len(), before);
}

#[tokio::test]
async fn ts_normalize_contact() {
    let plugin = TS_NORMALIZE_CONTACT.load(&cached_runtime(), &config(&[("default_country_code", "1")]));
    let input = records(&[
        json!({"id": 1, "email": "  Ada.Lovelace@Example.COM ", "phone": "(555) 010-0199", "name": "  Ada   King Lovelace "}),
        json!({"id": 2, "email": "bob@example.org", "phone": "+44 20 7946 0958", "first_name": " Bob ", "last_name": " Smith "}),
        json!({"id": 3, "email": "cy@example.net", "phone": "0049 30 1234567", "name": "Cy"}),
    ]);
    let out = plugin.transform(input).await.into_result().expect("normalised");
    assert_eq!(
        values(&out),
        vec![
            json!({"id": 1, "email": "ada.lovelace@example.com", "phone": "+15550100199", "name": "Ada King Lovelace", "first_name": "Ada", "last_name": "King Lovelace"}),
            json!({"id": 2, "email": "bob@example.org", "phone": "+442079460958", "name": "Bob Smith", "first_name": "Bob", "last_name": "Smith"}),
            json!({"id": 3, "email": "cy@example.net", "phone": "+49301234567", "name": "Cy", "first_name": "Cy", "last_name": ""}),
        ]
    );

    // Every offending record, with every reason.
    let bad = records(&[
        json!({"email": "ok@example.com", "name": "Ok"}),
        json!({"email": "not-an-email", "phone": "12", "name": "X"}),
        json!({"phone": "555 0100"}),
        json!("just text"),
        json!({"email": "Fine@Example.com", "name": "F"}),
    ]);
    match plugin.transform(bad).await.into_result() {
        Err(Error::Guest(PluginError::InvalidInput(issues))) => assert_eq!(
            issues,
            vec![
                RecordIssue {
                    index: 1,
                    reasons: vec![
                        "email `not-an-email` is not a valid address".into(),
                        "phone `12` has 3 digits with its country code, expected 8 to 15".into(),
                    ]
                },
                RecordIssue { index: 2, reasons: vec!["email is missing".into(), "name is missing".into()] },
                RecordIssue { index: 3, reasons: vec!["value is not a JSON object".into()] },
            ]
        ),
        other => panic!("expected invalid-input, got {other:?}"),
    }

    // A country code that is not one: invalid-config.
    let misconfigured = TS_NORMALIZE_CONTACT.load(&cached_runtime(), &config(&[("default_country_code", "abc")]));
    match misconfigured.transform(records(&[json!({})])).await.into_result() {
        Err(Error::Guest(PluginError::InvalidConfig(message))) => {
            assert_eq!(message, "default_country_code `abc` is not 1 to 3 digits")
        }
        other => panic!("expected invalid-config, got {other:?}"),
    }
}

/// Each request's path and query, with its `authorization` header.
type Requests = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Three pages of a GitHub-style list: page 1 links page 2 absolutely, page 2 links page 3
/// relatively, page 3 links only `first`. Notes each request's path and `authorization`.
async fn paged_list() -> (String, Requests) {
    use axum::http::{HeaderMap, StatusCode, header};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen: Requests = Arc::default();
    let app = {
        let (seen, base) = (seen.clone(), base.clone());
        axum::Router::new().route(
            "/items",
            axum::routing::get(move |axum::extract::RawQuery(query): axum::extract::RawQuery, headers: HeaderMap| {
                let (seen, base) = (seen.clone(), base.clone());
                async move {
                    let auth = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).map(str::to_string);
                    let query = query.unwrap_or_default();
                    seen.lock().expect("lock").push((format!("/items?{query}"), auth));
                    let (link, items) = match query.as_str() {
                        "page=1" => (
                            format!(r#"<{base}/items?page=2>; rel="next", <{base}/items?page=3>; rel="last""#),
                            json!([{"id": 1}, {"id": 2}]),
                        ),
                        "page=2" => (r#"</items?page=3>; rel="next""#.to_string(), json!([{"id": 3}, {"id": 4}])),
                        "page=3" => (format!(r#"<{base}/items?page=1>; rel="first""#), json!([{"id": 5}])),
                        _ => return (StatusCode::NOT_FOUND, [(header::LINK, String::new())], "{}".to_string()),
                    };
                    (StatusCode::OK, [(header::LINK, link)], items.to_string())
                }
            }),
        )
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

#[tokio::test]
async fn js_link_pages() {
    let (base, seen) = paged_list().await;
    let grant = connector(&[("url", &format!("{base}/items?page=1"))], &[("token", "s3cret")]);
    let plugin = JS_LINK_PAGES.load(&cached_runtime(), &grant);

    // At most 3: page 1 and the first item of page 2; the cursor skips what was read.
    let page = plugin.read(None, 3).await.into_result().expect("read");
    assert_eq!(values(&page.records), vec![json!({"id": 1}), json!({"id": 2}), json!({"id": 3})]);
    assert_eq!(page.records[0].key.as_deref(), Some(b"1".as_slice()));
    assert_eq!(page.next_cursor.as_deref(), Some(format!("{base}/items?page=2#skip=1").as_str()));

    // The rest, following the relative link; at the last page the cursor is its end.
    let rest = plugin.read(page.next_cursor, 10).await.into_result().expect("read");
    assert_eq!(values(&rest.records), vec![json!({"id": 4}), json!({"id": 5})]);
    let end = format!("{base}/items?page=3#skip=1");
    assert_eq!(rest.next_cursor.as_deref(), Some(end.as_str()));

    // Nothing new: an empty page and the same cursor.
    let again = plugin.read(rest.next_cursor, 10).await.into_result().expect("read");
    assert!(again.records.is_empty());
    assert_eq!(again.next_cursor.as_deref(), Some(end.as_str()));

    let requests = seen.lock().expect("lock").clone();
    assert_eq!(
        requests.iter().map(|(path, _)| path.as_str()).collect::<Vec<_>>(),
        vec!["/items?page=1", "/items?page=2", "/items?page=2", "/items?page=3", "/items?page=3"]
    );
    assert!(requests.iter().all(|(_, auth)| auth.as_deref() == Some("Bearer s3cret")));

    // No host granted: capability-denied naming the host, and nothing reaches the server.
    let mut denied = grant.clone();
    denied.outbound_hosts.clear();
    let authority = base.trim_start_matches("http://");
    match JS_LINK_PAGES.load(&cached_runtime(), &denied).read(None, 10).await.into_result() {
        Err(err @ Error::Denied { .. }) => {
            assert_eq!(err.code(), ErrorCode::CapabilityDenied);
            let Error::Denied { denial, reported } = &err else { unreachable!() };
            assert!(denial.contains("but not granted by the operator"), "{denial}");
            assert_eq!(reported, &format!("outbound host `{authority}` is not granted (GET {base}/items)"));
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(seen.lock().expect("lock").len(), requests.len());
}
