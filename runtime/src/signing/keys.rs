//! Publisher keys: Ed25519, serialised as the WebAssembly signature convention does.
//!
//! - public key: `0x01 ‖ 32-byte key` (33 bytes);
//! - key pair (the secret key file): `0x81 ‖ 32-byte secret ‖ 32-byte public` (65 bytes).
//!
//! A key's id is the first 12 bytes of HMAC-SHA256 keyed with the public key over `"key_id"` —
//! the default key id of the wasmsign2 reference implementation, so ids agree across tools. It is
//! shown as 24 hex digits.

use super::SignatureError;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

const PUBLIC_KEY_TAG: u8 = 0x01;
const KEY_PAIR_TAG: u8 = 0x81;

/// A publisher's public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl PublicKey {
    /// Parses `0x01 ‖ key`.
    ///
    /// # Errors
    /// [`SignatureError::InvalidKey`] for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, SignatureError> {
        let (tag, key) = bytes.split_first().ok_or(SignatureError::InvalidKey("empty public key"))?;
        if *tag != PUBLIC_KEY_TAG {
            return Err(SignatureError::InvalidKey("not an Ed25519 public key (expected tag 0x01)"));
        }
        let key: [u8; 32] =
            key.try_into().map_err(|_| SignatureError::InvalidKey("an Ed25519 public key is 32 bytes"))?;
        VerifyingKey::from_bytes(&key)
            .map(PublicKey)
            .map_err(|_| SignatureError::InvalidKey("not a valid Ed25519 point"))
    }

    /// `0x01 ‖ key`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![PUBLIC_KEY_TAG];
        out.extend_from_slice(self.0.as_bytes());
        out
    }

    /// The 12-byte key id as raw bytes (what the signature section stores).
    pub fn key_id_bytes(&self) -> Vec<u8> {
        // HMAC keyed with the public key over the label, as wasmsign2 computes its default key id.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.as_bytes()) else { return Vec::new() };
        mac.update(b"key_id");
        mac.finalize().into_bytes()[..12].to_vec()
    }

    /// The key id as 24 hex digits.
    pub fn key_id(&self) -> String {
        hex::encode(self.key_id_bytes())
    }

    /// Reads a public key file.
    ///
    /// # Errors
    /// [`SignatureError::KeyFile`] when it cannot be read, [`SignatureError::InvalidKey`] when it
    /// is not a public key.
    pub fn from_file(path: &Path) -> Result<PublicKey, SignatureError> {
        let bytes = read_key_file(path)?;
        if bytes.first() == Some(&KEY_PAIR_TAG) {
            return Err(SignatureError::InvalidKey("this is a secret key file; pass the `.pub` file"));
        }
        PublicKey::from_bytes(&bytes)
    }

    /// Strict Ed25519 verification (rejects malleable and small-order signatures).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else { return false };
        self.0.verify_strict(message, &signature).is_ok()
    }
}

/// A publisher's key pair, for signing.
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public {})", self.public().key_id())
    }
}

impl SecretKey {
    /// A fresh random key pair.
    ///
    /// # Errors
    /// [`SignatureError::InvalidKey`] when the OS has no randomness to give.
    pub fn generate() -> Result<SecretKey, SignatureError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| SignatureError::InvalidKey("no randomness available"))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Parses `0x81 ‖ secret ‖ public`, checking that the halves belong together.
    ///
    /// # Errors
    /// [`SignatureError::InvalidKey`] for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<SecretKey, SignatureError> {
        let (tag, pair) = bytes.split_first().ok_or(SignatureError::InvalidKey("empty secret key"))?;
        if *tag == PUBLIC_KEY_TAG {
            return Err(SignatureError::InvalidKey("this is a public key file; pass the secret key"));
        }
        if *tag != KEY_PAIR_TAG {
            return Err(SignatureError::InvalidKey("not an Ed25519 key pair (expected tag 0x81)"));
        }
        let pair: [u8; 64] =
            pair.try_into().map_err(|_| SignatureError::InvalidKey("an Ed25519 key pair is 64 bytes"))?;
        SigningKey::from_keypair_bytes(&pair)
            .map(SecretKey)
            .map_err(|_| SignatureError::InvalidKey("the public half does not match the secret half"))
    }

    /// `0x81 ‖ secret ‖ public`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![KEY_PAIR_TAG];
        out.extend_from_slice(&self.0.to_keypair_bytes());
        out
    }

    /// Reads a secret key file.
    ///
    /// # Errors
    /// See [`SecretKey::from_bytes`]; [`SignatureError::KeyFile`] when it cannot be read.
    pub fn from_file(path: &Path) -> Result<SecretKey, SignatureError> {
        SecretKey::from_bytes(&read_key_file(path)?)
    }

    /// Writes the key pair to `path` (mode 0600, refusing to overwrite) and the public key to
    /// `path.pub`.
    ///
    /// # Errors
    /// [`SignatureError::KeyFile`] when either file cannot be written.
    pub fn write_files(&self, path: &Path) -> Result<std::path::PathBuf, SignatureError> {
        use std::io::Write;
        let key_file_error = |err: std::io::Error| SignatureError::KeyFile(format!("{}: {err}", path.display()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(key_file_error)?;
        file.write_all(&self.to_bytes()).and_then(|()| file.sync_all()).map_err(key_file_error)?;
        let mut public_path = path.as_os_str().to_owned();
        public_path.push(".pub");
        let public_path = std::path::PathBuf::from(public_path);
        std::fs::write(&public_path, self.public().to_bytes())
            .map_err(|err| SignatureError::KeyFile(format!("{}: {err}", public_path.display())))?;
        Ok(public_path)
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).to_bytes().to_vec()
    }
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, SignatureError> {
    std::fs::read(path).map_err(|err| SignatureError::KeyFile(format!("{}: {err}", path.display())))
}
