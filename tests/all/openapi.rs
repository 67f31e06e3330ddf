//! `/openapi.json` checked by tools no one here wrote (issue 28, point 1): the served document
//! passes `openapi-spec-validator` (OpenAPI 3.1), and the server's real error answers — 401, 403,
//! 404, a flow and a JSON body that do not parse, a hostile upload — validate against the document's own `Error` schema
//! with `jsonschema`'s draft 2020-12 validator, both pinned in `tests/senders/requirements.txt`.
//! A field renamed in the error body, or a schema that no longer describes it, fails here.

use crate::support::flows::sender_script;
use crate::support::server::{ADMIN, Api};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_and_real_error_answers_pass_independent_validators() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let invoker = api.token("reader", "invoker").await;
    let (status, document) = api.call(reqwest::Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);

    let mut answers: Vec<Value> = Vec::new();
    let mut answer = |(status, body): (StatusCode, Value), expected: StatusCode| {
        assert_eq!(status, expected, "{body}");
        answers.push(body);
    };
    answer(api.call(reqwest::Method::GET, "/v1/plugins", None, None).await, StatusCode::UNAUTHORIZED);
    answer(api.get("/v1/keys", &invoker).await, StatusCode::FORBIDDEN);
    answer(api.get("/v1/plugins/no-such-plugin", ADMIN).await, StatusCode::NOT_FOUND);
    let (status, body) = api.post_raw("/v1/flows", ADMIN, "application/json", "{\n  \"name\": \"x\",\n  oops\n}").await;
    assert!(body["line"].is_u64(), "a syntax error points at its line: {body}");
    answer((status, body), StatusCode::UNPROCESSABLE_ENTITY);
    answer(api.upload(b"\0asm not a component".to_vec(), "", ADMIN).await, StatusCode::UNPROCESSABLE_ENTITY);
    // A JSON body that does not parse: the one extractor's 400, pointing where parsing stopped.
    let (status, body) =
        api.post_raw("/v1/tokens", ADMIN, "application/json", "{\"name\": \"ci\",\n \"role\": }").await;
    assert_eq!((body["code"].as_str(), body["line"].as_u64()), (Some("invalid-request"), Some(2)), "{body}");
    answer((status, body), StatusCode::BAD_REQUEST);

    let checked = sender_script("openapi_check.py", &json!({"document": document, "answers": answers}));
    assert_eq!(checked["problems"], json!([]), "{checked}");
    api.stop().await;
}
