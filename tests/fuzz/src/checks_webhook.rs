//! The `webhook` target's per-input check, apart from `checks.rs` because it needs
//! `plugboard-host-api`, whose build script builds the sample plugins for wasm32-wasip2 (a target
//! the nightly toolchain here lacks): the fuzz crate builds it only with the `webhook` feature,
//! on the stable toolchain (see README.md). The replay test includes this file too.

/// `webhook`: `tolerance (8 bytes LE) ‖ secret \n flow \n timestamp \n signature \n body`.
/// The headers and signature as given, then a delivery signed now with the same fields must
/// verify, and not for another flow.
pub fn webhook(data: &[u8]) {
    use plugboard_host_api::domain::webhook::{HookRefusal, check_headers, sign_hook, verify_hook};
    let (tolerance, rest) = match data.split_first_chunk::<8>() {
        Some((bytes, rest)) => (u64::from_le_bytes(*bytes), rest),
        None => (300, data),
    };
    let mut fields = rest.splitn(5, |b| *b == b'\n');
    let mut next = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let (secret, flow, timestamp, signature) = (next(), next(), next(), next());
    let body = rest.splitn(5, |b| *b == b'\n').nth(4).unwrap_or_default();

    let _ = check_headers(&timestamp, &signature);
    let _ = verify_hook(&secret, &flow, &timestamp, &signature, body, tolerance);

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tolerance = tolerance.clamp(60, 3600);
    let signed = sign_hook(&secret, &flow, now, body);
    let stamp = format!(" {now} ");
    let verified = verify_hook(&secret, &flow, &stamp, &signed, body, tolerance)
        .unwrap_or_else(|err| panic!("a delivery signed now does not verify: {err:?}"));
    assert!(verified.usable_until >= now);
    let other = format!("{flow}x");
    assert_eq!(
        verify_hook(&secret, &other, &stamp, &signed, body, tolerance).err(),
        Some(HookRefusal::BadSignature),
        "a delivery verified for another flow"
    );
}

/// The schemes `webhook_schemes` picks from; the generic `hmac` takes its spec from the input.
const SCHEMES: [&str; 10] = [
    "plugboard",
    "standard-webhooks",
    "github",
    "stripe",
    "slack",
    "shopify",
    "cloudevents",
    "basic",
    "api-key",
    "hmac",
];

/// `webhook_schemes`: `scheme selector ‖ [hmac spec JSON line] ‖ header lines ("name: value") ‖
/// blank line ‖ body`,
/// through that scheme's header check, signature check and body parsing, with a Standard
/// Webhooks-shaped secret (usable as every scheme's key). Besides "no panic": a delivery the
/// secret authenticates is not authenticated by another secret.
///
/// Answers whether the secret authenticated the delivery (the replay test checks that the
/// signed seeds do, so they reach the cross-secret check).
pub fn webhook_schemes(data: &[u8]) -> bool {
    use plugboard_host_api::domain::webhook::body::parse;
    use plugboard_host_api::domain::webhook::secrets::WebhookSecrets;
    use plugboard_host_api::domain::webhook::verify::{RequestHeaders, authenticate_headers};
    use plugboard_runtime::flow::WebhookTrigger;

    let (selector, mut rest) = data.split_first().map_or((0, data), |(first, rest)| (*first, rest));
    let scheme = SCHEMES[usize::from(selector) % SCHEMES.len()];
    let mut trigger = serde_json::json!({"scheme": scheme, "tolerance_secs": 300});
    if scheme == "api-key" {
        trigger["api_key_header"] = "x-api-key".into();
    }
    if scheme == "hmac" {
        // The spec is the first line, as a flow would describe it; one a flow could not hold
        // (it does not parse or validate) never reaches the checks.
        let line = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&rest[..line]) else { return false };
        trigger["hmac"] = spec;
        rest = rest.get(line + 1..).unwrap_or_default();
    }
    let trigger = match serde_json::from_value::<WebhookTrigger>(trigger) {
        Ok(trigger) if trigger.validate().is_ok() => trigger,
        _ if scheme == "hmac" => return false,
        _ => panic!("the {scheme} trigger"),
    };
    let split = rest.windows(2).position(|pair| pair == b"\n\n").unwrap_or(rest.len());
    let (head, body) = (&rest[..split], rest.get(split + 2..).unwrap_or_default());
    let headers = RequestHeaders::new(String::from_utf8_lossy(head).lines().filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
    }));
    let spec = trigger.spec();
    let _ = parse(spec.body, &headers, &trigger.headers, body);
    let secret = WebhookSecrets::single("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let other = WebhookSecrets::single("whsec_b3RoZXIgc2VjcmV0IG9mIHRoaXJ0eS10d28gYnl0ZXM=");
    let tolerance = u64::MAX / 2;
    let Ok(pending) = authenticate_headers(&spec, &headers, &secret, tolerance) else { return false };
    let Ok(authenticated) = pending.clone().verify(&secret, "flow", body) else { return false };
    let by_other = authenticate_headers(&spec, &headers, &other, tolerance)
        .and_then(|pending| pending.verify(&other, "flow", body));
    assert!(by_other.is_err(), "a {scheme} delivery authenticated under two secrets: {authenticated:?}");
    true
}
