//! The dashboard in a real browser: the real `plugboard` binary as a child process, Debian's
//! headless Chromium driven over WebDriver (`plugboard_tests::browser`), an operator's whole
//! session — sign in with the keyboard, trust a key, upload and activate plugins, define a flow
//! in YAML (a syntax error shown at its line first), run it, open the execution, fix the cause of
//! a dead letter and replay it, find the replay in the audit log, create an invoker token and see
//! the invoker's narrower dashboard — then every page at a laptop and a phone width.
//!
//! Screenshots of every page go to `target/artifacts/dashboard/`. Any script error, failed module
//! or asset load, or other console error fails the test; only the API's own 4xx answers to
//! requests the test makes fail on purpose are expected in the console.

use crate::support::common::plugboard_binary;
use plugboard_harness::child::ServerProcess;
use plugboard_tests::browser::{Browser, artifacts_dir};
use plugboard_tests::*;
use serde_json::json;

const ENTER: &str = "\u{E007}";

/// Fails on any console error but the API's 4xx answers to what the test did wrong on purpose.
async fn no_console_errors(browser: &Browser, during: &str) {
    let entries = browser.console().await.expect("console log");
    let errors: Vec<String> = entries
        .iter()
        .filter(|e| e.level == "SEVERE")
        .filter(|e| !(e.message.contains("/v1/") && e.message.contains("status of 4")))
        .map(|e| e.message.clone())
        .collect();
    assert!(errors.is_empty(), "console errors during {during}:\n{}", errors.join("\n"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a signed sample to a file the browser's file input can take.
fn signed_file(dir: &std::path::Path, sample: &SamplePlugin) -> String {
    let path = dir.join(format!("{}.wasm", sample.name));
    std::fs::write(&path, sample.signed()).expect("write signed plugin");
    path.display().to_string()
}

async fn sign_in(browser: &Browser, base: &str, token: &str) {
    browser.open(&format!("{base}/ui/")).await.expect("open");
    // With the keyboard: the token field has the focus; Enter submits.
    let field = browser.find("#signin input[name=token]").await.expect("sign-in form");
    browser.type_into(&field, &format!("{token}{ENTER}")).await.expect("type token");
    browser.find("header.top nav").await.expect("signed in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_plugboard_from_the_dashboard_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let http = reqwest::Client::new();
    let (server, _) =
        ServerProcess::start(&plugboard_binary(), &data, &dir.path().join("server.log"), false, None, &http)
            .await
            .expect("server starts");
    let base = server.endpoint().base.clone();
    let admin = std::fs::read_to_string(data.join("admin-token")).expect("admin token").trim().to_string();
    let shots = artifacts_dir();
    let browser = Browser::start().await.expect("browser");
    browser.viewport(1280, 800, false).await.expect("laptop viewport");

    // The page itself: served from the binary, with the security headers.
    let page = http.get(format!("{base}/ui/")).send().await.expect("GET /ui/");
    let csp = page.headers()["content-security-policy"].to_str().expect("csp").to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");

    // Sign in as the admin, with the keyboard.
    sign_in(&browser, &base, &admin).await;
    browser.wait_text("#health-summary", "Plugins").await.expect("health summary");
    no_console_errors(&browser, "sign-in").await;

    // Trust: the test publisher's key.
    browser.open(&format!("{base}/ui/#/trust")).await.expect("trust");
    browser.fill("#key-name", "test publisher").await.expect("key name");
    browser.fill("#key-public", &hex(&test_key().public().to_bytes())).await.expect("key");
    browser.click_on("#key-add").await.expect("add key");
    browser.wait_text("main", "test publisher").await.expect("key listed");

    // Plugins: upload two signed plugins, activating them.
    browser.open(&format!("{base}/ui/#/plugins")).await.expect("plugins");
    for sample in [JSON_MAPPER, SCHEMA_VALIDATOR] {
        let file = browser.find("#plugin-upload-file").await.expect("file input");
        browser.type_into(&file, &signed_file(dir.path(), &sample)).await.expect("choose file");
        let activate = browser.find("#plugin-upload-activate").await.expect("activate box");
        if browser.property(&activate, "checked").await.expect("checked") != true {
            browser.click(&activate).await.expect("tick activate");
        }
        browser.click_on("#plugin-upload").await.expect("upload");
        browser.wait_text("#plugin-upload-result", sample.name).await.expect("uploaded");
        browser.wait_text("main table", sample.name).await.expect("listed");
    }
    no_console_errors(&browser, "uploads").await;
    // Their config, set through the same API the CLI uses (the config form is checked below).
    for (name, values) in [
        ("json-mapper", json!({"mapping": {"id": "$.orderId", "total": "$.orderTotal"}})),
        (
            "schema-validator",
            json!({"schema": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}),
        ),
    ] {
        let answer = http
            .put(format!("{base}/v1/plugins/{name}/config"))
            .bearer_auth(&admin)
            .json(&json!({"values": values}))
            .send()
            .await
            .expect("config");
        assert!(answer.status().is_success(), "{name} config: {}", answer.status());
    }

    // The plugin page: active, invocable with a JSON input.
    browser.open(&format!("{base}/ui/#/plugins/json-mapper")).await.expect("plugin page");
    browser.wait_text("main", "1.").await.expect("versions");
    browser.fill("#invoke-input", r#"{"records": [{"orderId": "A1", "orderTotal": 5}]}"#).await.expect("input");
    browser.click_on("#invoke").await.expect("invoke");
    browser.wait_text("#invoke-output", "A1").await.expect("output");
    browser.wait_text("#invoke-output", "fuel").await.expect("usage shown");
    no_console_errors(&browser, "invoke").await;

    // Flows: a YAML syntax error is shown where it is, then the flow is saved.
    browser.open(&format!("{base}/ui/#/flows/+new")).await.expect("new flow");
    browser.find("#flow-editor").await.expect("editor");
    browser
        .script(
            "const s = document.getElementById('flow-format'); s.value = 'yaml'; s.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .await
        .expect("yaml");
    browser.fill("#flow-editor", "name: orders\nsteps:\n  - type: transform\n    id: [map\n").await.expect("bad yaml");
    browser.click_on("#flow-save").await.expect("save");
    browser.wait_text("#flow-error", "line").await.expect("error at its line");
    let flow = "name: orders\nsteps:\n  - type: transform\n    id: map\n    plugin: json-mapper\n  - type: validate\n    id: check\n    plugin: schema-validator\n";
    browser.fill("#flow-editor", flow).await.expect("flow yaml");
    browser.click_on("#flow-save").await.expect("save");
    browser.find("#flow-graph").await.expect("the flow drawn");
    browser.wait_text("#flow-graph", "schema-validator").await.expect("graph names the plugins");
    no_console_errors(&browser, "flow definition").await;

    // Run it: one record passes, one (no order id: the mapper gives it a null id) becomes a dead
    // letter.
    browser
        .fill("#flow-run-input", r#"[{"orderId": "A1", "orderTotal": 5}, {"orderTotal": 9}]"#)
        .await
        .expect("run input");
    browser.click_on("#flow-run").await.expect("run");
    browser.click_on("#flow-run-result a[href^='#/executions/']").await.expect("open the execution");
    let execution = browser.wait_text("#execution", "check").await.expect("execution page");
    assert!(execution.contains("map") && execution.contains("json-mapper"), "{execution}");
    no_console_errors(&browser, "run").await;

    // Fix the cause (the schema no longer requires an id) and replay the dead letter.
    let answer = http
        .put(format!("{base}/v1/plugins/schema-validator/config"))
        .bearer_auth(&admin)
        .json(&json!({"values": {"schema": {"type": "object"}}}))
        .send()
        .await
        .expect("config");
    assert!(answer.status().is_success());
    browser.open(&format!("{base}/ui/#/flows/orders")).await.expect("flow page");
    browser.click_on("#dlq button[data-replay]").await.expect("replay");
    let started = std::time::Instant::now();
    while !browser.all("#dlq button[data-replay]").await.expect("dlq").is_empty() {
        assert!(started.elapsed() < plugboard_tests::browser::WAIT, "the replayed dead letter stays listed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    no_console_errors(&browser, "replay").await;

    // The audit log, filtered to replays, shows it.
    browser.open(&format!("{base}/ui/#/audit")).await.expect("audit");
    browser.find("#audit-action").await.expect("filter");
    browser
        .script("const s = document.getElementById('audit-action'); s.value = 'dlq-replay';", json!([]))
        .await
        .expect("action");
    browser.click_on("#audit-filter").await.expect("filter");
    let audit = browser.wait_text("#audit-table", "orders").await.expect("replay audited");
    assert!(audit.contains("dlq-replay") && !audit.contains("flow-create"), "{audit}");
    no_console_errors(&browser, "audit").await;

    // An invoker token scoped to one plugin and one flow, shown once with its scope, which the
    // token list shows too; the invoker sees no admin controls, and the API refuses them.
    browser.open(&format!("{base}/ui/#/trust")).await.expect("trust");
    browser.fill("#token-name", "viewer").await.expect("token name");
    browser.script("document.getElementById('token-role').value = 'invoker';", json!([])).await.expect("role");
    browser.fill("#token-plugins", "json-mapper").await.expect("scope plugins");
    browser.fill("#token-flows", "orders").await.expect("scope flows");
    browser.click_on("#token-create").await.expect("create token");
    let token_element = browser.find("#token-value").await.expect("token shown");
    let invoker = browser.text(&token_element).await.expect("token").trim().to_string();
    assert!(invoker.len() >= 32, "{invoker}");
    browser.wait_text("#token-created", "scoped to plugins json-mapper; flows orders").await.expect("scope shown");
    browser.wait_text("[data-token-scope=viewer]", "plugins json-mapper; flows orders").await.expect("scope listed");
    browser.click_on("header.top .who button").await.expect("sign out");
    sign_in(&browser, &base, &invoker).await;
    browser.wait_text("#who-scope", "plugins json-mapper; flows orders").await.expect("the header names the scope");
    browser.open(&format!("{base}/ui/#/plugins")).await.expect("plugins");
    let listed = browser.wait_text("#plugins-list", "json-mapper").await.expect("the scoped plugin is listed");
    assert!(!listed.contains("csv-to-json"), "a plugin outside the scope is not listed: {listed}");
    assert!(browser.all("header.top a[href='#/monitoring']").await.expect("q").is_empty(), "no server-wide metrics");
    browser.open(&format!("{base}/ui/#/plugins/json-mapper")).await.expect("plugin page");
    browser.find("#invoke").await.expect("an invoker may invoke");
    assert!(
        browser.all("[data-activate], #plugin-deactivate, #grants-form, #config-form").await.expect("q").is_empty()
    );
    assert!(
        browser
            .all("header.top a[href='#/trust'], header.top a[href='#/audit'], header.top a[href='#/connections']")
            .await
            .expect("q")
            .is_empty()
    );
    let refused = browser
        .script_async(
            "const done = arguments[arguments.length - 1];\
             fetch('/v1/plugins/json-mapper/deactivate', {method: 'POST', headers: {Authorization: 'Bearer ' + sessionStorage.getItem('plugboard.token')}})\
             .then(r => done(r.status), e => done(String(e)));",
            json!([]),
        )
        .await
        .expect("fetch");
    assert_eq!(refused, 403);
    no_console_errors(&browser, "invoker").await;

    // A publisher uploads but may not read plugins or flows: the dashboard offers only the upload.
    let publisher = http
        .post(format!("{base}/v1/tokens"))
        .bearer_auth(&admin)
        .json(&json!({"name": "ci-publisher", "role": "publisher"}))
        .send()
        .await
        .expect("token")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    browser.click_on("header.top .who button").await.expect("sign out");
    sign_in(&browser, &base, publisher["token"].as_str().expect("token")).await;
    browser.wait_text("#health-summary", "Server").await.expect("publisher overview");
    browser.open(&format!("{base}/ui/#/plugins")).await.expect("plugins");
    browser.find("#plugin-upload").await.expect("a publisher may upload");
    assert!(browser.all("#plugins-list, header.top a[href='#/flows']").await.expect("q").is_empty());
    no_console_errors(&browser, "publisher").await;

    // A flow with a route and branches, to draw.
    let routed = json!({
        "name": "routed",
        "steps": [{"type": "route", "id": "by-total", "routes": [{"when": {"field": "$.total", "op": "gte", "value": 100}, "to": "big"}], "default": "small"}],
        "branches": {
            "big": {"steps": [{"type": "transform", "id": "map-big", "plugin": "json-mapper"}]},
            "small": {"steps": [{"type": "validate", "id": "check-small", "plugin": "schema-validator"}]}
        }
    });
    let created = http.post(format!("{base}/v1/flows")).bearer_auth(&admin).json(&routed).send().await.expect("flow");
    assert!(created.status().is_success(), "routed flow: {}", created.status());

    // Every page at a laptop and a phone width, as the admin.
    browser.click_on("header.top .who button").await.expect("sign out");
    sign_in(&browser, &base, &admin).await;
    let execution_id = {
        let list: serde_json::Value = http
            .get(format!("{base}/v1/flows/orders/executions"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("executions")
            .json()
            .await
            .expect("json");
        list["executions"][0]["id"].as_u64().expect("an execution")
    };
    let pages = [
        ("overview", "#/".to_string(), "#health-summary"),
        ("plugins", "#/plugins".into(), "main table"),
        ("plugin", "#/plugins/schema-validator".into(), "#invoke"),
        ("flows", "#/flows".into(), "main table"),
        ("flow", "#/flows/orders".into(), "#flow-graph"),
        ("routed-flow", "#/flows/routed".into(), "#flow-graph"),
        ("execution", format!("#/executions/{execution_id}"), "#execution"),
        ("monitoring", "#/monitoring".into(), "#chart-invocations"),
        ("trust", "#/trust".into(), "#key-add"),
        ("connections", "#/connections".into(), "#connection-form"),
        ("audit", "#/audit".into(), "#audit-table"),
    ];
    for (width, height, device) in [(1280, 800, "laptop"), (390, 844, "phone")] {
        browser.viewport(width, height, device == "phone").await.expect("viewport");
        for (name, hash, ready) in &pages {
            browser.open(&format!("{base}/ui/{hash}")).await.expect("page");
            browser.find(ready).await.unwrap_or_else(|e| panic!("{name} at {device} width: {e}"));
            // Nothing wider than the screen but what scrolls inside its own box.
            let overflow = browser
                .script("return document.documentElement.scrollWidth - document.documentElement.clientWidth", json!([]))
                .await
                .expect("width");
            assert!(overflow.as_i64().unwrap_or(0) <= 1, "{name} overflows the {device} width by {overflow}px");
            browser.screenshot(&shots.join(format!("{name}-{device}.png"))).await.expect("screenshot");
            no_console_errors(&browser, &format!("{name} at {device} width")).await;
        }
    }
    drop(browser);
    server.kill().await.expect("stop server");
}
