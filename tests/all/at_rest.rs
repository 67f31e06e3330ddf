//! What the data directory holds at rest: nothing readable by other users, no secret in clear,
//! and `/metrics` behind a token when the operator asks for it.

use crate::support::flows::{SECRET, deliver, now, webhook_flow};
use crate::support::server::{ADMIN, Api};
use plugboard_host_api::api::ServerLimits;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_private_and_holds_no_secret_in_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let api = Api::start(&data).await;
    let sink = crate::support::common::TestServer::start(|_| (200, "{}".into())).await;
    webhook_flow(&api, &sink.url("/in")).await;
    let plugin_secret = "plugin-secret-value-9f2c";
    let (status, body) =
        api.put("/v1/plugins/hook-sink/config", json!({"secrets": {"api_token": plugin_secret}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    api.stop().await;

    #[cfg(unix)]
    {
        assert_eq!(mode(&data), 0o700, "the data directory");
        for file in files(&data) {
            assert_eq!(mode(&file) & 0o077, 0, "{} is readable by others", file.display());
        }
        assert_eq!(mode(&data.join("secrets.key")), 0o600);
    }
    for file in files(&data.join("db")) {
        let bytes = std::fs::read(&file).expect("read");
        for secret in [SECRET, plugin_secret] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in clear in {}",
                file.display()
            );
        }
    }

    // After a restart the sealed secrets still work.
    let api = Api::start(&data).await;
    let (status, body) = deliver(&api, "hooked", SECRET, now(), &json!({"records": [{"n": 1}]})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (_, plugin) = api.get("/v1/plugins/hook-sink", ADMIN).await;
    assert_eq!(plugin["grants"]["secrets"], json!(["api_token"]));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secrets_key_can_live_apart_and_metrics_can_need_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("elsewhere").join("plugboard.key");
    std::fs::create_dir_all(key_file.parent().expect("parent")).expect("mkdir");
    let mut config = Api::config(&dir.path().join("data"));
    config.secrets_key_file = Some(key_file.clone());
    config.metrics_require_token = true;
    let api = Api::start_configured(config, ServerLimits::default()).await;
    assert!(key_file.exists(), "the key is created where the operator said");
    assert!(!dir.path().join("data").join("secrets.key").exists());
    let (status, _) = api.call(reqwest::Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = api.client.get(api.url("/metrics")).bearer_auth(ADMIN).send().await.expect("metrics");
    assert_eq!(response.status(), StatusCode::OK);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_secrets_key_stops_the_start_instead_of_failing_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let sink = crate::support::common::TestServer::start(|_| (200, "{}".into())).await;
    webhook_flow(&api, &sink.url("/in")).await;
    api.stop().await;
    std::fs::remove_file(dir.path().join("secrets.key")).expect("lose the key");
    let refused = plugboard_host_api::server::start(&Api::config(dir.path()), ServerLimits::default()).await;
    let message = format!("{:#}", refused.err().expect("the start is refused"));
    assert!(message.contains("sealed with another key"), "{message}");
}
