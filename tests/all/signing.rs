//! Signed plugins, each case on a real artifact: what verifies, what is refused and why, and
//! interoperability with the wasmsign2 reference implementation of the format.

use crate::support::common::{config, records, runtime, strip_signature, values};
use plugboard_runtime::signing::{
    self, MANIFEST_SECTION, SIGNATURE_SECTION, SecretKey, SignatureError, TrustStore, VerifyOptions, VersionFloor,
    sections,
};
use plugboard_runtime::{Error, ErrorCode, Kind, Manifest};
use plugboard_tests::*;
use serde_json::json;
use std::io::Cursor;

fn verify(file: &[u8]) -> Result<signing::Verified, Error> {
    signing::verify(file, &test_trust(), VerifyOptions::default())
}

fn refusal(file: &[u8]) -> SignatureError {
    match verify(file) {
        Err(err @ Error::Signature(_)) => {
            assert_eq!(err.code(), ErrorCode::Signature);
            let Error::Signature(reason) = err else { unreachable!() };
            reason
        }
        other => panic!("expected a signature error, got {other:?}"),
    }
}

/// (offset, length) of the payload of the named custom section in `file`.
fn section_span(file: &[u8], name: &str) -> (usize, usize) {
    let (_, parsed) = sections::parse(file).expect("parses");
    let section = parsed.iter().find(|s| s.name == Some(name)).expect("section present");
    let offset = section.payload.as_ptr() as usize - file.as_ptr() as usize;
    (offset, section.payload.len())
}

#[tokio::test]
async fn a_signed_plugin_verifies_loads_and_runs() {
    let file = JSON_MAPPER.signed();
    let verified = verify(&file).expect("valid");
    assert_eq!(verified.manifest, JSON_MAPPER.manifest());
    assert_eq!(verified.key_id.as_deref(), Some(test_key().public().key_id().as_str()));
    assert_eq!(verified.digest, plugboard_runtime::digest(&file));

    let plugin = runtime()
        .load_signed(&file, &test_trust(), &config(&[("mapping", r#"{"v": "$.a"}"#)]), VerifyOptions::default())
        .expect("loads");
    assert_eq!(plugin.signer(), Some(test_key().public().key_id().as_str()));
    let out = plugin.transform(records(&[json!({"a": 3})])).await.into_result().expect("runs");
    assert_eq!(values(&out), vec![json!({"v": 3})]);
    // Signing twice gives the same content: re-signing replaces, never stacks, sections.
    assert_eq!(signing::sign(&file, &JSON_MAPPER.manifest(), test_key()).expect("re-sign"), file);
}

#[test]
fn a_byte_flipped_in_code_is_a_digest_mismatch() {
    let mut file = FILTER.signed();
    let (manifest_at, _) = section_span(&file, MANIFEST_SECTION);
    let (signature_at, signature_len) = section_span(&file, SIGNATURE_SECTION);
    let code_byte = (signature_at + signature_len + manifest_at) / 2;
    file[code_byte] ^= 0x01;
    assert_eq!(refusal(&file), SignatureError::DigestMismatch);
}

#[test]
fn a_byte_flipped_in_the_manifest_is_a_digest_mismatch() {
    let mut file = FILTER.signed();
    let (at, len) = section_span(&file, MANIFEST_SECTION);
    let text = String::from_utf8(file[at..at + len].to_vec()).expect("JSON manifest");
    let version_at = at + text.find("\"0.1.0\"").expect("version in manifest") + 1;
    file[version_at] = b'9'; // 0.1.0 -> 9.1.0: a valid manifest, just not the signed one
    assert_eq!(refusal(&file), SignatureError::DigestMismatch);
}

#[test]
fn a_byte_flipped_in_the_signature_is_a_bad_signature() {
    let mut file = FILTER.signed();
    let (at, len) = section_span(&file, SIGNATURE_SECTION);
    file[at + len - 1] ^= 0x01; // the last byte of the Ed25519 signature
    assert_eq!(refusal(&file), SignatureError::BadSignature { key_id: test_key().public().key_id() });
}

#[test]
fn a_key_the_operator_did_not_add_is_unknown() {
    let stranger = SecretKey::generate().expect("key");
    let file = signing::sign(&FILTER.bytes(), &FILTER.manifest(), &stranger).expect("signed");
    assert_eq!(refusal(&file), SignatureError::UnknownKey { key_id: Some(stranger.public().key_id()) });
    // An empty trust store trusts nothing at all.
    let empty = signing::verify(&FILTER.signed(), &TrustStore::new(), VerifyOptions::default());
    assert!(matches!(empty, Err(Error::Signature(SignatureError::UnknownKey { .. }))));
}

#[test]
fn a_revoked_key_is_refused_for_new_and_installed_plugins() {
    let file = FILTER.signed();
    let mut trust = test_trust();
    let runtime = runtime();
    assert!(runtime.load_signed(&file, &trust, &config(&[]), VerifyOptions::default()).is_ok());
    let key_id = test_key().public().key_id();
    assert!(trust.revoke(&key_id).expect("known key").revoked_at.is_some());
    // Every load verifies, so an installed plugin does not come back after revocation either.
    match runtime.load_signed(&file, &trust, &config(&[]), VerifyOptions::default()) {
        Err(Error::Signature(SignatureError::RevokedKey { key_id: id })) => assert_eq!(id, key_id),
        other => panic!("expected revoked-key, got {other:?}"),
    }
    // Revocation is permanent: the key cannot be re-added.
    assert!(matches!(trust.add("again", test_key().public()), Err(Error::Conflict(_))));
    assert!(matches!(trust.revoke("000000000000000000000000"), Err(Error::NotFound(_))));
}

#[test]
fn an_older_version_is_a_rollback_unless_overridden() {
    let mut floor = VersionFloor::default();
    let v = |text: &str| semver::Version::parse(text).expect("semver");
    floor.admit("filter", &v("1.2.0"), false).expect("first install");
    floor.admit("filter", &v("1.2.0"), false).expect("same version again");
    match floor.admit("filter", &v("1.1.9"), false) {
        Err(err @ Error::Rollback { .. }) => assert_eq!(err.code(), ErrorCode::Rollback),
        other => panic!("expected rollback, got {other:?}"),
    }
    floor.admit("filter", &v("1.1.9"), true).expect("explicit override");
    assert_eq!(floor.highest("filter"), Some(&v("1.2.0")), "an override does not lower the floor");
    floor.admit("other", &v("0.1.0"), false).expect("floors are per plugin");
}

#[test]
fn a_signature_cannot_be_replayed_for_another_plugin_or_version() {
    // Swap in another plugin's manifest (same bytes otherwise): the signed digest no longer matches.
    let file = FILTER.signed();
    let (_, parsed) = sections::parse(&file).expect("parses");
    let mut renamed = Manifest { name: "json-mapper".into(), ..FILTER.manifest() };
    renamed.description = "pretends to be json-mapper".into();
    let mut forged = file[..8].to_vec();
    for section in parsed.iter().filter(|s| s.name != Some(MANIFEST_SECTION)) {
        forged.extend_from_slice(section.raw);
    }
    forged.extend(sections::custom_section(MANIFEST_SECTION, &serde_json::to_vec(&renamed).expect("json")));
    assert_eq!(refusal(&forged), SignatureError::DigestMismatch);

    // Graft filter's signature onto json-mapper: refused too.
    let other = JSON_MAPPER.signed();
    let (_, other_sections) = sections::parse(&other).expect("parses");
    let mut grafted = other[..8].to_vec();
    grafted.extend_from_slice(parsed[0].raw);
    for section in other_sections.iter().skip(1) {
        grafted.extend_from_slice(section.raw);
    }
    assert_eq!(refusal(&grafted), SignatureError::DigestMismatch);
}

#[test]
fn unsigned_files_load_only_behind_the_developer_flag() {
    let unsigned = strip_signature(&FILTER.signed());
    assert_eq!(refusal(&unsigned), SignatureError::Unsigned);
    let runtime = runtime();
    assert!(matches!(
        runtime.load_signed(&unsigned, &test_trust(), &config(&[]), VerifyOptions::default()),
        Err(Error::Signature(SignatureError::Unsigned))
    ));
    let plugin = runtime
        .load_signed(&unsigned, &TrustStore::new(), &config(&[]), VerifyOptions { allow_unsigned: true })
        .expect("developer flag");
    assert_eq!(plugin.signer(), None);
    assert_eq!(plugin.manifest().name, "filter");
    // A bare component has no manifest at all: still refused, with the reason.
    let bare = signing::verify(&FILTER.bytes(), &TrustStore::new(), VerifyOptions { allow_unsigned: true });
    assert!(matches!(bare, Err(Error::ManifestInvalid { .. })), "{bare:?}");
}

#[test]
fn malformed_inputs_are_typed_errors() {
    assert!(matches!(verify(&[]), Err(Error::InvalidComponent { .. })));
    let file = FILTER.signed();
    assert!(matches!(verify(&file[..file.len() / 2]), Err(Error::InvalidComponent { .. })));
    assert!(matches!(verify(b"not wasm at all"), Err(Error::InvalidComponent { .. })));
    let core = wat::parse_str("(module)").expect("wat");
    assert_eq!(refusal(&core), SignatureError::Unsigned);
    assert!(matches!(signing::sign(&core, &FILTER.manifest(), test_key()), Err(Error::InvalidComponent { .. })));
    // A signature section that lies about its contents.
    let mut garbage = file[..8].to_vec();
    garbage.extend(sections::custom_section(SIGNATURE_SECTION, &[1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f]));
    garbage.extend_from_slice(&strip_signature(&file)[8..]);
    assert!(matches!(refusal(&garbage), SignatureError::Malformed(_)));
}

#[test]
fn signing_refuses_a_component_of_another_kind() {
    let manifest = Manifest { kind: Kind::Sink, ..JSON_MAPPER.manifest() };
    match signing::sign(&JSON_MAPPER.bytes(), &manifest, test_key()) {
        Err(err @ Error::WorldMismatch { manifest: Kind::Sink, component: Some(Kind::Transformer), .. }) => {
            assert_eq!(err.code(), ErrorCode::WorldMismatch)
        }
        other => panic!("expected world-mismatch, got {other:?}"),
    }
}

#[test]
fn plugboard_signatures_verify_with_wasmsign2() {
    let file = CSV_TO_JSON.signed();
    let public = wasmsign2::PublicKey::from_bytes(&test_key().public().to_bytes()).expect("same key encoding");
    public.verify(&mut Cursor::new(&file), None).expect("wasmsign2 accepts a Plugboard signature");
    // With wasmsign2's default key id, which is Plugboard's key id too.
    let with_id = public.clone().attach_default_key_id();
    assert_eq!(hex_id(with_id.key_id()), test_key().public().key_id());
    with_id.verify(&mut Cursor::new(&file), None).expect("matching key ids");
    // And wasmsign2 rejects what Plugboard rejects.
    let mut tampered = file.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(public.verify(&mut Cursor::new(&tampered), None).is_err());
}

fn hex_id(id: Option<&Vec<u8>>) -> String {
    id.map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect()).unwrap_or_default()
}

#[tokio::test]
async fn wasmsign2_signatures_verify_with_plugboard() {
    // A component with Plugboard's manifest section, signed by wasmsign2 with the same key pair.
    let unsigned = strip_signature(&CSV_TO_JSON.signed());
    let secret = wasmsign2::SecretKey::from_bytes(&test_key().to_bytes()).expect("same key pair encoding");
    let module = wasmsign2::Module::deserialize(&mut Cursor::new(&unsigned)).expect("wasmsign2 reads components");
    for key_id in [None, Some(test_key().public().key_id_bytes())] {
        let signed = secret.sign(module.clone(), key_id.as_ref()).expect("wasmsign2 signs");
        let mut file = Vec::new();
        signed.serialize(&mut file).expect("serialise");
        let verified = verify(&file).expect("Plugboard accepts a wasmsign2 signature");
        assert_eq!(verified.manifest.name, "csv-to-json");
        assert_eq!(verified.key_id.as_deref(), Some(test_key().public().key_id().as_str()));
        let plugin =
            runtime().load_signed(&file, &test_trust(), &config(&[]), VerifyOptions::default()).expect("loads");
        let input = vec![plugboard_runtime::Record { key: None, value: b"a\n1".to_vec(), headers: vec![] }];
        assert_eq!(values(&plugin.transform(input).await.into_result().expect("runs")), vec![json!({"a": "1"})]);
    }
}
