//! The errors authors will meet are clear in every language: the faulty test guests
//! (`tests/guests/python/faulty`, `tests/guests/js/faulty`) fail on purpose, one way per config
//! `mode`, and the host reports each failure with its exact variant and code, naming what went
//! wrong: an uncaught exception with its type, message and a stack down to the helper that raised
//! it; a bucket the operator did not grant; a config key the manifest does not list.
//!
//! Both components compile once per cache ([`cached_runtime`]): about 15 s each the first time.

use crate::support::common::{cached_runtime, config, records, values};
use plugboard_runtime::{Error, ErrorCode, Grant, Invocation, PluginError, Record};
use plugboard_tests::*;
use serde_json::json;

/// The host's refusal of bucket `audit`, which the faulty guests' manifests request.
const BUCKET_DENIAL: &str = "key-value bucket `audit` is requested by the plugin's manifest but not granted by the \
                             operator (grant it: `plugboard grant <plugin> --bucket audit`)";

/// The host's refusal of config key `undeclared`, which the manifests do not list.
const KEY_DENIAL: &str = "config key `undeclared` is not among the manifest's `config_keys` or `secret_keys` (add it \
                          to plugin.toml and publish a new version)";

/// What the guest's `mode` makes it do, run on a two-record batch.
async fn run(plugin: &SamplePlugin, grant: &Grant) -> Invocation<Vec<Record>> {
    plugin.load(&cached_runtime(), grant).transform(records(&[json!({"name": "ada"}), json!({"n": 2})])).await
}

/// An uncaught exception: `guest-error` `internal`, its message returned for the caller's checks.
async fn internal_error(plugin: &SamplePlugin) -> String {
    match run(plugin, &config(&[("mode", "raise")])).await.into_result() {
        Err(err @ Error::Guest(PluginError::Internal(_))) => {
            assert_eq!(err.code(), ErrorCode::GuestError);
            let Error::Guest(PluginError::Internal(message)) = err else { unreachable!() };
            message
        }
        other => panic!("{}: expected guest-error internal, got {other:?}", plugin.name),
    }
}

/// Runs `plugin` under `grant` and expects `capability-denied` with the host's `denial` (also in
/// its log) and the plugin's own account `reported`; answers the error for further checks.
async fn assert_denied(plugin: &SamplePlugin, grant: &Grant, denial: &str, reported: &str) -> Error {
    let invocation = run(plugin, grant).await;
    assert!(
        invocation.logs.entries.iter().any(|e| e.context == "host" && e.message == denial),
        "{}: {:?}",
        plugin.name,
        invocation.logs.entries
    );
    match invocation.into_result() {
        Err(err @ Error::Denied { .. }) => {
            assert_eq!(err.code(), ErrorCode::CapabilityDenied);
            let Error::Denied { denial: host, reported: plugin_said } = &err else { unreachable!() };
            assert_eq!((host.as_str(), plugin_said.as_str()), (denial, reported));
            err
        }
        other => panic!("{}: expected capability-denied ({denial}), got {other:?}", plugin.name),
    }
}

/// Bucket `audit` requested by the manifest but not granted: `capability-denied` naming it, the
/// host's reason (the grant lacks it) beside the plugin's `reported` account.
async fn assert_bucket_denied(plugin: &SamplePlugin, reported_by_sdk: &str) {
    let grant = Grant { key_value: vec![], ..config(&[("mode", "bucket")]) };
    let err = assert_denied(plugin, &grant, BUCKET_DENIAL, reported_by_sdk).await;
    assert!(err.to_string().contains("`audit`"), "{err}");
}

/// Config key `undeclared`, not in the manifest: the SDK's `config.get` does not answer `None` /
/// `undefined` but raises `Denied`, and the host reports `capability-denied` naming the key. The
/// SDK passes on the host's own text (`wasi:config` `upstream`); the value the operator set never
/// reaches the error.
async fn assert_key_denied(plugin: &SamplePlugin) {
    let grant = config(&[("mode", "secret"), ("undeclared", "s3cret")]);
    let err = assert_denied(plugin, &grant, KEY_DENIAL, &format!("capability denied: {KEY_DENIAL}")).await;
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

/// Any other mode: the batch unchanged (the guest itself works).
async fn assert_echoes(plugin: &SamplePlugin) {
    let out = run(plugin, &config(&[("mode", "echo")])).await.into_result().expect("echoed");
    assert_eq!(values(&out), vec![json!({"name": "ada"}), json!({"n": 2})]);
}

#[tokio::test]
async fn python_errors_are_clear() {
    assert_echoes(&GUEST_PY_FAULTY).await;

    // A KeyError raised in `price_of`, called by `lookup_price`, called by `transform`: type and
    // message, then the traceback from the plugin's entry point down (files are `/<n>/...`, the
    // order of componentize-py's `-p` paths; source lines are not in the component).
    let message = internal_error(&GUEST_PY_FAULTY).await;
    assert!(message.starts_with("KeyError: 'durian'\nTraceback (most recent call last):\n"), "{message}");
    assert!(message.ends_with("\nKeyError: 'durian'"), "{message}");
    let frames: Vec<&str> = message
        .lines()
        .filter_map(|line| line.strip_prefix("  File \"/1/app.py\", line "))
        .filter_map(|rest| rest.split_once(", in ").map(|(_, function)| function))
        .collect();
    assert_eq!(frames, vec!["transform", "lookup_price", "price_of"], "{message}");
    assert!(!message.contains("plugboard_sdk"), "the SDK's own frames are left out: {message}");

    assert_bucket_denied(&GUEST_PY_FAULTY, "key-value bucket `audit` not granted").await;
    assert_key_denied(&GUEST_PY_FAULTY).await;
}

#[tokio::test]
async fn javascript_errors_are_clear() {
    assert_echoes(&GUEST_JS_FAULTY).await;

    // An Error thrown in `priceOf`, called by `lookupPrice`, called by the transform: name and
    // message, then StarlingMonkey's stack (`function@file:line:column`, innermost first; the line
    // numbers are the bundle's, so they are not asserted; `guard` is the SDK's entry helper).
    let message = internal_error(&GUEST_JS_FAULTY).await;
    assert!(message.starts_with("Error: no price for durian\n"), "{message}");
    let frames: Vec<&str> =
        message.lines().skip(1).filter_map(|line| line.split_once("@app.js:")).map(|(f, _)| f).collect();
    assert_eq!(frames.len(), message.lines().count() - 1, "every frame is in the bundle: {message}");
    assert_eq!(frames[..3], ["priceOf", "lookupPrice", "transform<"], "{message}");

    assert_bucket_denied(&GUEST_JS_FAULTY, "key-value bucket `audit` is not granted").await;
    assert_key_denied(&GUEST_JS_FAULTY).await;
}
