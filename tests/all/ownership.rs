//! Who may publish a plugin name, and what activating an older version takes: a name stays with
//! its publisher until the plugin itself is deleted, and the version floor guards activation too.

use crate::support::common::{audit_actions, strip_signature};
use crate::support::server::{ADMIN, Api, hex_bytes, signed_as};
use plugboard_runtime::signing::SecretKey;
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::json;

/// Trusts a new key and answers it.
async fn another_publisher(api: &Api) -> SecretKey {
    let other = SecretKey::generate().expect("key");
    let public = hex_bytes(&other.public().to_bytes());
    let (status, body) = api.post("/v1/keys", ADMIN, json!({"name": "other", "public_key": public})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    other
}

fn filter_signed_by(key: &SecretKey, version: &str) -> Vec<u8> {
    let manifest =
        plugboard_runtime::Manifest { version: semver::Version::parse(version).expect("semver"), ..FILTER.manifest() };
    plugboard_runtime::signing::sign(&FILTER.bytes(), &manifest, key).expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_stays_with_its_publisher_until_the_plugin_is_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let other = another_publisher(&api).await;
    let (status, body) = api.upload(signed_as(FILTER, "0.1.0"), "", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = api
        .put("/v1/plugins/filter/config", json!({"values": {"condition": "$.a > 1"}, "secrets": {"token": "s3cret"}}))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Every version deleted one by one: the name is still the publisher's, with its grant and data.
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/plugins/filter/versions/0.1.0", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.upload(filter_signed_by(&other, "0.2.0"), "", ADMIN).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::CONFLICT, json!("conflict")),
        "another key takes over: {body}"
    );
    let (status, body) = api.upload(signed_as(FILTER, "0.2.0"), "", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "the publisher comes back: {body}");
    let (_, plugin) = api.get("/v1/plugins/filter", ADMIN).await;
    assert_eq!(plugin["grants"]["secrets"], json!(["token"]), "the publisher's own state is kept: {plugin}");

    // Deleting the plugin frees the name, and takes its grant, secrets and data with it.
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/plugins/filter", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.upload(filter_signed_by(&other, "0.3.0"), "", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, plugin) = api.get("/v1/plugins/filter", ADMIN).await;
    assert_eq!(plugin["grants"]["secrets"], json!([]), "nothing inherited: {plugin}");
    assert_eq!(plugin["grants"]["config"], json!({}), "nothing inherited: {plugin}");

    // A plugin whose versions are all gone can still be deleted as a whole, and it is audited.
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/plugins/filter/versions/0.3.0", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/plugins/filter", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/plugins/filter", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(audit_actions(&api).await.iter().filter(|(a, t)| a == "delete" && t == "filter").count(), 2);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_uploads_cannot_take_a_signed_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = plugboard_host_api::server::ServeConfig { allow_unsigned: true, ..Api::config(dir.path()) };
    let api = Api::start_configured(config, plugboard_host_api::api::ServerLimits::default()).await;
    api.trust_test_key().await;
    let (status, body) = api.upload(signed_as(FILTER, "0.1.0"), "", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api.upload(strip_signature(&signed_as(FILTER, "0.2.0")), "", ADMIN).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::CONFLICT, json!("conflict")), "{body}");
    // And a name first published unsigned is not taken over by a key either.
    let manifest = plugboard_runtime::Manifest { name: "loose".into(), ..FILTER.manifest() };
    let signed = plugboard_runtime::signing::sign(&FILTER.bytes(), &manifest, test_key()).expect("sign");
    let (status, body) = api.upload(strip_signature(&signed), "", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let manifest = plugboard_runtime::Manifest {
        name: "loose".into(),
        version: semver::Version::new(0, 2, 0),
        ..FILTER.manifest()
    };
    let signed = plugboard_runtime::signing::sign(&FILTER.bytes(), &manifest, test_key()).expect("sign");
    let (status, body) = api.upload(signed, "", ADMIN).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::CONFLICT, json!("conflict")), "{body}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activating_an_older_version_needs_the_audited_override() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let (status, _) = api.upload(signed_as(FILTER, "0.1.0"), "", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api.upload(signed_as(FILTER, "0.2.0"), "?activate=true", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body) = api.post("/v1/plugins/filter/versions/0.1.0/activate", ADMIN, json!({})).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::CONFLICT, json!("rollback")), "{body}");
    let (status, body) = api.upload(signed_as(FILTER, "0.1.0"), "?activate=true", ADMIN).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::CONFLICT, json!("rollback")), "re-upload: {body}");
    let (_, plugin) = api.get("/v1/plugins/filter", ADMIN).await;
    assert_eq!(plugin["active_version"], "0.2.0", "nothing changed");

    let (status, body) =
        api.post("/v1/plugins/filter/versions/0.1.0/activate?allow_rollback=true", ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let actions = audit_actions(&api).await;
    assert!(actions.contains(&("rollback-override".into(), "filter".into())), "{actions:?}");
    assert!(actions.contains(&("activate".into(), "filter@0.1.0".into())), "{actions:?}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_stored_before_owners_existed_get_one_at_start() {
    use plugboard_host_api::store::{Change, Op, Storage};
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let other = another_publisher(&api).await;
    let (status, _) = api.upload(signed_as(FILTER, "0.1.0"), "", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED);
    api.stop().await;
    // As an older version left it: a version, no stored owner.
    {
        let store = crate::support::server::reopen(&dir.path().join("db")).await;
        store.apply(Change::new().with(Op::ForgetPlugin("filter".into()))).expect("forget the owner");
        store.close().await.expect("close");
    }
    let api = Api::start(dir.path()).await;
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/plugins/filter/versions/0.1.0", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.upload(filter_signed_by(&other, "0.2.0"), "", ADMIN).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::CONFLICT, json!("conflict")), "{body}");
    api.stop().await;
}
