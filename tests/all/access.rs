//! The route table's access rules are what the server enforces (issue 28, point 4): one layer
//! checks every route's declared [`Access`] before its handler runs, so the table, the OpenAPI
//! document's `x-plugboard-role` and the server's answers cannot disagree.
//!
//! Every route in the table is called by no token, an invoker, a publisher, an invoker scoped to
//! other plugins and flows, one scoped to exactly the plugin and flow the path names, and the
//! admin; each answer must be the one the rule declares: 401
//! without a token, 403 for a role the rule does not name or a scope it does not cover, never
//! 401/403 for a caller it allows (whatever else the handler then answers), and on a public route
//! the same answer whoever calls.

use crate::support::server::{ADMIN, Api};
use plugboard_api_types::{ApiErrorCode, ErrorBody};
use plugboard_host_api::api::access::{Access, Check};
use plugboard_host_api::api::auth::Role;
use plugboard_host_api::api::routes::ROUTES;
use reqwest::StatusCode;
use serde_json::json;

/// Who calls.
#[derive(Debug, Clone, Copy)]
enum Who {
    Nobody,
    Invoker,
    Publisher,
    ScopedInvoker,
    /// An invoker scoped to exactly the plugin and flow the paths name (`nope`).
    ScopedToName,
    Admin,
}

/// Whether `access` lets `who` through to the handler, for a `{name}` outside any scope.
fn allowed(access: &Access, who: Who) -> bool {
    let role = match who {
        Who::Nobody => return access.check == Check::Public,
        Who::Admin => return true,
        Who::Invoker | Who::ScopedInvoker | Who::ScopedToName => Role::Invoker,
        Who::Publisher => Role::Publisher,
    };
    let scoped = !matches!(who, Who::Invoker | Who::Publisher);
    let named = matches!(who, Who::ScopedToName);
    match access.check {
        Check::Public | Check::AnyToken => true,
        Check::Listing => access.roles.contains(&role),
        Check::Unscoped => access.roles.contains(&role) && !scoped,
        Check::Plugin | Check::Flow => access.roles.contains(&role) && (!scoped || named),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_caller_as_its_table_entry_declares() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let invoker = api.token("reader", "invoker").await;
    let publisher = api.token("ci", "publisher").await;
    let scope = json!({"plugins": ["other"], "flows": ["other"]});
    let (status, body) =
        api.post("/v1/tokens", ADMIN, json!({"name": "scoped", "role": "invoker", "scope": scope})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let scoped = body["token"].as_str().expect("token").to_string();
    let to_name = json!({"plugins": ["nope"], "flows": ["nope"]});
    let (status, body) =
        api.post("/v1/tokens", ADMIN, json!({"name": "scoped-to-name", "role": "invoker", "scope": to_name})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let scoped_to_name = body["token"].as_str().expect("token").to_string();

    let mut checked = 0;
    for route in ROUTES {
        let path = route.path.replace("{name}", "nope").replace("{version}", "1.0.0").replace("{id}", "1");
        let method = reqwest::Method::from_bytes(route.method.to_uppercase().as_bytes()).expect("method");
        let mut public_answer = None;
        for who in [Who::Nobody, Who::Invoker, Who::Publisher, Who::ScopedInvoker, Who::ScopedToName, Who::Admin] {
            let token = match who {
                Who::Nobody => None,
                Who::Invoker => Some(invoker.as_str()),
                Who::Publisher => Some(publisher.as_str()),
                Who::ScopedInvoker => Some(scoped.as_str()),
                Who::ScopedToName => Some(scoped_to_name.as_str()),
                Who::Admin => Some(ADMIN),
            };
            let (status, body) = api.call(method.clone(), &path, token, Some(json!({}))).await;
            let refused = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
            let what = format!("{} {} as {who:?}: {status} {body}", route.method, route.path);
            if !status.is_success() {
                // Every error answer is the API's one error body, with the code its status means.
                let error: ErrorBody =
                    serde_json::from_value(body.clone()).unwrap_or_else(|err| panic!("{err}: {what}"));
                let expected = match status {
                    StatusCode::UNAUTHORIZED => Some(ApiErrorCode::Unauthorized),
                    StatusCode::FORBIDDEN => Some(ApiErrorCode::Forbidden),
                    _ => None,
                };
                assert!(expected.is_none_or(|code| code == error.code), "{what}");
            }
            if route.access.check == Check::Public {
                // No token is looked at: the answer is the same whoever calls (a webhook for no
                // such flow is refused by the handler alike for all).
                let first = *public_answer.get_or_insert(status);
                assert_eq!(status, first, "a public route answers by token: {what}");
            } else if allowed(&route.access, who) {
                assert!(!refused, "allowed by the table, refused by the server: {what}");
            } else {
                let expected = if token.is_none() { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
                assert_eq!(status, expected, "refused by the table: {what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * 6);
    // A method no route has is the router's 405, whoever asks: the check runs only for a route.
    for token in [None, Some(invoker.as_str())] {
        let (status, body) = api.call(reqwest::Method::PATCH, "/v1/plugins/nope", token, None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    }
    api.stop().await;
}
