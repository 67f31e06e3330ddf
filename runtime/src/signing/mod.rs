//! Signed plugins: one `.wasm` file holding the component, its manifest and an Ed25519 signature.
//!
//! Format (documented in `docs/SIGNING.md`): the file is the component with two custom sections
//! added — `plugboard-manifest` (the manifest as canonical JSON) at the end and `signature` first —
//! following the WebAssembly tool-conventions signature format (`Signatures.md`, the format the
//! wasmsign2 reference implementation reads and writes). The signature covers SHA-256 of every byte
//! after the signature section, so the code, the manifest, and with it the plugin's name and
//! version, are all bound to it: a signature cannot be replayed for another plugin or version.
//!
//! Verification fails closed: unsigned, unknown key, revoked key, bad signature and changed content
//! are each their own [`SignatureError`].

mod artifact;
mod keys;
pub mod sections;
mod trust;

pub use artifact::{Inspection, MANIFEST_SECTION, SIGNATURE_SECTION, Verified, VerifyOptions, inspect, sign, verify};
pub use keys::{PublicKey, SecretKey};
pub use trust::{KeyStatus, TrustStore, TrustedKey, VersionFloor};

/// Why a signed plugin, or a key, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The file has no signature section.
    #[error("the plugin is not signed")]
    Unsigned,
    /// No trusted key made this signature.
    #[error("signed by a key that is not trusted{}", key_id.as_ref().map(|id| format!(" (key id {id})")).unwrap_or_default())]
    UnknownKey {
        /// The key id the signature names, if it names one.
        key_id: Option<String>,
    },
    /// The signing key was revoked.
    #[error("signed by revoked key {key_id}")]
    RevokedKey {
        /// The revoked key's id.
        key_id: String,
    },
    /// The signature does not verify with the key it names.
    #[error("the signature is not valid for key {key_id}")]
    BadSignature {
        /// The key that was tried.
        key_id: String,
    },
    /// The signature is valid but the signed content (code or manifest) changed since.
    #[error("the content does not match what was signed: code or manifest changed after signing")]
    DigestMismatch,
    /// The signature section or the binary framing is malformed.
    #[error("malformed signature data: {0}")]
    Malformed(&'static str),
    /// A key is not a valid Ed25519 key in the expected encoding.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A key file could not be read or written.
    #[error("key file {0}")]
    KeyFile(String),
}

impl SignatureError {
    /// The stable sub-code reported beside the `signature` error code.
    pub fn reason(&self) -> &'static str {
        match self {
            SignatureError::Unsigned => "unsigned",
            SignatureError::UnknownKey { .. } => "unknown-key",
            SignatureError::RevokedKey { .. } => "revoked-key",
            SignatureError::BadSignature { .. } => "bad-signature",
            SignatureError::DigestMismatch => "digest-mismatch",
            SignatureError::Malformed(_) => "malformed",
            SignatureError::InvalidKey(_) => "invalid-key",
            SignatureError::KeyFile(_) => "key-file",
        }
    }
}
