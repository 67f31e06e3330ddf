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
