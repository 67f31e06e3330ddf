//! Signing, verifying and inspecting a plugin file.
//!
//! Layout of a signed plugin (all sections top-level):
//!
//! ```text
//! header (8 bytes) | custom "signature" | component sections … | custom "plugboard-manifest"
//!                                       \_________________ signed content ________________/
//! ```
//!
//! The `signature` payload follows the tool-conventions format: `spec_version=1`,
//! `content_type=1`, `hash_fn=1` (SHA-256), then signed hash sets, each a list of 32-byte hashes and
//! signatures `(key_id, alg=1 Ed25519, signature)`; each signature covers
//! `"wasmsig" ‖ 01 ‖ 01 ‖ 01 ‖ hashes`. Plugboard writes one hash (the whole signed content, no
//! delimiters) and one signature naming its key id; it accepts any signature set whose hashes
//! include the content's hash under a trusted key.

use super::SignatureError;
use super::keys::{PublicKey, SecretKey};
use super::sections::{self, Section};
use super::trust::{KeyStatus, TrustStore};
use crate::error::{Error, Result};
use crate::manifest::{Kind, Manifest};
use sha2::{Digest, Sha256};

/// Name of the custom section holding the signature.
pub const SIGNATURE_SECTION: &str = "signature";
/// Name of the custom section holding the manifest (canonical JSON).
pub const MANIFEST_SECTION: &str = "plugboard-manifest";

const DOMAIN: &[u8] = b"wasmsig";
const SPEC_VERSION: u8 = 0x01;
const CONTENT_TYPE: u8 = 0x01;
const HASH_SHA256: u8 = 0x01;
const ALG_ED25519: u8 = 0x01;
/// Limits on what a signature section may claim, so a hostile one cannot make us allocate much.
const MAX_HASH_SETS: usize = 16;
const MAX_HASHES: usize = 64;
const MAX_SIGNATURES: usize = 64;

/// The message a signature covers for a list of hashes.
fn signed_message(hashes: &[[u8; 32]]) -> Vec<u8> {
    let mut message = DOMAIN.to_vec();
    message.extend_from_slice(&[SPEC_VERSION, CONTENT_TYPE, HASH_SHA256]);
    for hash in hashes {
        message.extend_from_slice(hash);
    }
    message
}

/// The manifest in canonical form: compact JSON, fields in declaration order.
fn canonical_manifest(manifest: &Manifest) -> Result<Vec<u8>> {
    serde_json::to_vec(manifest).map_err(Error::internal)
}

/// Embeds `manifest` in `component` and signs the result with `key`.
///
/// Any earlier signature or manifest section is replaced, so re-signing is idempotent.
///
/// # Errors
/// [`Error::ManifestInvalid`] for an invalid manifest, [`Error::InvalidComponent`] for bytes that
/// are not a component, [`Error::WorldMismatch`] when the component does not implement the
/// manifest's world or imports what that world does not offer.
pub fn sign(component: &[u8], manifest: &Manifest, key: &SecretKey) -> Result<Vec<u8>> {
    manifest.validate()?;
    let inspection = inspect(component)?;
    if !inspection.is_component {
        return Err(Error::invalid_component("a core module, not a component; build with --target wasm32-wasip2"));
    }
    crate::world::check(&inspection.imports, &inspection.exports, manifest.kind)?;
    let (header, parsed) = sections::parse(component).map_err(|err| Error::invalid_component(err.to_string()))?;
    let mut content = Vec::with_capacity(component.len() + 1024);
    for section in parsed.iter().filter(|s| !matches!(s.name, Some(SIGNATURE_SECTION | MANIFEST_SECTION))) {
        content.extend_from_slice(section.raw);
    }
    content.extend(sections::custom_section(MANIFEST_SECTION, &canonical_manifest(manifest)?));

    let hash: [u8; 32] = Sha256::digest(&content).into();
    let signature = key.sign(&signed_message(&[hash]));
    let mut record = Vec::new();
    sections::write_bytes(&mut record, &key.public().key_id_bytes());
    record.push(ALG_ED25519);
    sections::write_bytes(&mut record, &signature);
    let mut hash_set = Vec::new();
    sections::write_varuint32(&mut hash_set, 1);
    hash_set.extend_from_slice(&hash);
    sections::write_varuint32(&mut hash_set, 1);
    sections::write_bytes(&mut hash_set, &record);
    let mut data = vec![SPEC_VERSION, CONTENT_TYPE, HASH_SHA256];
    sections::write_varuint32(&mut data, 1);
    sections::write_bytes(&mut data, &hash_set);

    let mut out = header.to_vec();
    out.extend(sections::custom_section(SIGNATURE_SECTION, &data));
    out.extend(content);
    Ok(out)
}

/// One signature record from a signature section.
struct SignatureRecord<'a> {
    key_id: Option<String>,
    signature: &'a [u8],
}

/// One signed hash set: the hashes, and the signatures over them.
type SignedHashes<'a> = (Vec<[u8; 32]>, Vec<SignatureRecord<'a>>);

/// The signed hash sets of a signature section.
fn parse_signature_data(data: &[u8]) -> std::result::Result<Vec<SignedHashes<'_>>, SignatureError> {
    let malformed = SignatureError::Malformed;
    let [version, content_type, hash_fn, ..] = data else { return Err(malformed("signature section too short")) };
    if (*version, *content_type, *hash_fn) != (SPEC_VERSION, CONTENT_TYPE, HASH_SHA256) {
        return Err(malformed("unsupported signature version, content type or hash function"));
    }
    let mut pos = 3;
    let set_count = sections::read_varuint32(data, &mut pos)? as usize;
    if set_count > MAX_HASH_SETS {
        return Err(malformed("too many signed hash sets"));
    }
    let mut sets = Vec::with_capacity(set_count);
    for _ in 0..set_count {
        let set = sections::read_bytes(data, &mut pos)?;
        let mut at = 0;
        let hash_count = sections::read_varuint32(set, &mut at)? as usize;
        if hash_count > MAX_HASHES {
            return Err(malformed("too many hashes"));
        }
        let mut hashes = Vec::with_capacity(hash_count);
        for _ in 0..hash_count {
            let hash = set.get(at..at + 32).ok_or(malformed("truncated hash"))?;
            hashes.push(<[u8; 32]>::try_from(hash).map_err(|_| malformed("truncated hash"))?);
            at += 32;
        }
        let signature_count = sections::read_varuint32(set, &mut at)? as usize;
        if signature_count > MAX_SIGNATURES {
            return Err(malformed("too many signatures"));
        }
        let mut signatures = Vec::with_capacity(signature_count);
        for _ in 0..signature_count {
            let record = sections::read_bytes(set, &mut at)?;
            let mut r = 0;
            let key_id = sections::read_bytes(record, &mut r)?;
            let alg = *record.get(r).ok_or(malformed("truncated signature record"))?;
            r += 1;
            let signature = sections::read_bytes(record, &mut r)?;
            if alg == ALG_ED25519 {
                let key_id = (!key_id.is_empty()).then(|| hex::encode(key_id));
                signatures.push(SignatureRecord { key_id, signature });
            }
        }
        sets.push((hashes, signatures));
    }
    if pos != data.len() {
        return Err(malformed("trailing bytes after the signatures"));
    }
    Ok(sets)
}

/// What the caller allows beyond properly signed plugins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Accept unsigned files (their embedded manifest is still required and validated). For plugin
    /// development only: every such load logs a warning.
    pub allow_unsigned: bool,
}

/// A verified plugin file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed manifest.
    pub manifest: Manifest,
    /// Id of the key that signed it; `None` only for unsigned files allowed by [`VerifyOptions`].
    pub key_id: Option<String>,
    /// Hex SHA-256 of the whole file.
    pub digest: String,
}

/// Verifies `file` against `trust` and returns its manifest.
///
/// # Errors
/// [`Error::Signature`] for an unsigned file (unless allowed), an untrusted or revoked key, a bad
/// signature, or content changed after signing; [`Error::InvalidComponent`] for bytes that are not a
/// WebAssembly binary; [`Error::ManifestInvalid`] when the manifest section is missing or invalid.
pub fn verify(file: &[u8], trust: &TrustStore, options: VerifyOptions) -> Result<Verified> {
    if file.is_empty() {
        return Err(Error::invalid_component("the file is empty"));
    }
    let (_, parsed) = sections::parse(file).map_err(|err| Error::invalid_component(err.to_string()))?;
    let key_id = match parsed.first() {
        Some(first @ Section { name: Some(SIGNATURE_SECTION), .. }) => {
            let content = &file[8 + first.raw.len()..];
            Some(check_signature(first.payload, content, trust)?)
        }
        _ if options.allow_unsigned => {
            tracing::warn!("LOADING AN UNSIGNED PLUGIN: signature checks are disabled by the developer flag");
            None
        }
        _ => return Err(Error::Signature(SignatureError::Unsigned)),
    };
    let manifest_section = parsed.iter().rev().find(|s| s.name == Some(MANIFEST_SECTION)).ok_or_else(|| {
        Error::manifest("the file has no `plugboard-manifest` section; sign it with `plugboard sign`")
    })?;
    let manifest: Manifest =
        serde_json::from_slice(manifest_section.payload).map_err(|err| Error::manifest(err.to_string()))?;
    manifest.validate()?;
    Ok(Verified { manifest, key_id, digest: crate::plugin::digest(file) })
}

/// Checks the signature section `data` over `content`; returns the signer's key id.
fn check_signature(data: &[u8], content: &[u8], trust: &TrustStore) -> Result<String> {
    let sets = parse_signature_data(data).map_err(Error::Signature)?;
    let mut refusal = SignatureError::UnknownKey { key_id: None };
    let mut valid: Vec<([u8; 32], String)> = Vec::new();
    for (hashes, signatures) in &sets {
        let message = signed_message(hashes);
        for record in signatures {
            let candidates: Vec<(String, PublicKey)> = match &record.key_id {
                Some(id) => match trust.status(id) {
                    KeyStatus::Trusted(key) => vec![(id.clone(), key)],
                    KeyStatus::Revoked => {
                        refusal = SignatureError::RevokedKey { key_id: id.clone() };
                        continue;
                    }
                    KeyStatus::Unknown => {
                        if !matches!(refusal, SignatureError::RevokedKey { .. } | SignatureError::BadSignature { .. }) {
                            refusal = SignatureError::UnknownKey { key_id: Some(id.clone()) };
                        }
                        continue;
                    }
                },
                None => trust.trusted_keys().map(|k| (k.key_id.clone(), k.key)).collect(),
            };
            for (id, key) in candidates {
                if key.verify(&message, record.signature) {
                    valid.extend(hashes.iter().map(|h| (*h, id.clone())));
                } else if record.key_id.is_some() {
                    refusal = SignatureError::BadSignature { key_id: id };
                }
            }
        }
    }
    if valid.is_empty() {
        return Err(Error::Signature(refusal));
    }
    let hash: [u8; 32] = Sha256::digest(content).into();
    valid
        .into_iter()
        .find(|(h, _)| *h == hash)
        .map(|(_, id)| id)
        .ok_or(Error::Signature(SignatureError::DigestMismatch))
}

/// What `plugboard inspect` shows about a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Inspection {
    /// A component (`true`) or a core module.
    pub is_component: bool,
    /// The Plugboard world it implements, if any.
    pub kind: Option<Kind>,
    /// That world's full name, with the contract version the component was built against
    /// (`plugboard:plugin/transformer@0.1.0`).
    pub world: Option<String>,
    /// Top-level import names.
    pub imports: Vec<String>,
    /// Top-level export names.
    pub exports: Vec<String>,
    /// The embedded manifest, if any (not verified by inspection).
    pub manifest: Option<Manifest>,
    /// Key id named by the first signature, if signed (not verified by inspection).
    pub key_id: Option<String>,
    /// Hex SHA-256 of the file.
    pub digest: String,
}

/// Reads a file's structure without verifying it.
///
/// # Errors
/// [`Error::InvalidComponent`] when the bytes are not a valid WebAssembly binary.
pub fn inspect(file: &[u8]) -> Result<Inspection> {
    use wasmparser::{Parser, Payload};
    if file.is_empty() {
        return Err(Error::invalid_component("the file is empty"));
    }
    if file.len() < 8 || &file[..4] != b"\0asm" {
        return Err(Error::invalid_component("not a WebAssembly binary (no `\\0asm` header)"));
    }
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut is_component = false;
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(file) {
        let payload = payload.map_err(|err| Error::invalid_component(err.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } if depth == 0 => {
                is_component = encoding == wasmparser::Encoding::Component;
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    imports
                        .push(import.map_err(|err| Error::invalid_component(err.to_string()))?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    exports
                        .push(export.map_err(|err| Error::invalid_component(err.to_string()))?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    let implemented = crate::world::implemented(&exports);
    let kind = implemented.map(|(kind, _)| kind);
    let world = implemented.map(|(kind, contract)| kind.world_at(contract));
    let parsed = sections::parse(file).ok();
    let section =
        |name: &str| parsed.as_ref().and_then(|(_, s)| s.iter().rev().find(|s| s.name == Some(name)).copied());
    let manifest = section(MANIFEST_SECTION).and_then(|s| serde_json::from_slice(s.payload).ok());
    let key_id = section(SIGNATURE_SECTION)
        .and_then(|s| parse_signature_data(s.payload).ok())
        .and_then(|sets| sets.into_iter().flat_map(|(_, sigs)| sigs).find_map(|r| r.key_id));
    Ok(Inspection {
        is_component,
        kind,
        world,
        imports,
        exports,
        manifest,
        key_id,
        digest: crate::plugin::digest(file),
    })
}
