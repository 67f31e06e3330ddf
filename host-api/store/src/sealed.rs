//! Secret values at rest: plugin secrets and webhook secrets are sealed (XChaCha20-Poly1305) with
//! a key kept apart from the database.
//!
//! Threat model. The database is what gets copied: backups, snapshots, a support bundle, a disk
//! image. None of those copies holds a secret in clear, and a sealed value is bound to the key it
//! is stored under (the associated data), so one plugin's sealed secrets cannot be moved under
//! another's name. The key lives in a file of its own — by default `secrets.key` beside the
//! database, created 0600 on first start, or wherever the operator points `secrets_key_file`
//! (a mounted secret, another disk) — so copying the database alone reveals nothing. Someone who
//! can read both the key and the database (root on the host, the server's own user) can read the
//! secrets, as the server itself must. Lose the key and the sealed secrets are lost with it: back
//! it up apart from the database.

use super::StoreError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use std::path::Path;

/// A subkey of `key` for `purpose` (HMAC-SHA256 as a key derivation function).
fn derive(key: &[u8], purpose: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(purpose);
    mac.finalize().into_bytes().into()
}

/// What every sealed value starts with; values without it were stored before sealing existed.
const MAGIC: &[u8] = b"pbsealed1:";
const NONCE_BYTES: usize = 24;

/// The key secret values are sealed with.
#[derive(Clone)]
pub struct SecretsKey {
    cipher: XChaCha20Poly1305,
    /// A key of its own for hashing API tokens, derived from this one (see
    /// [`SecretsKey::token_hash_key`]).
    token_hash_key: [u8; 32],
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(…)")
    }
}

impl SecretsKey {
    /// Reads the key from `file` (64 hex digits), creating it (mode 0600) when it does not exist.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the file cannot be read or written, or holds no valid key.
    pub fn load_or_create(file: &Path) -> Result<SecretsKey, StoreError> {
        let fail = |what: String| StoreError::backend(format!("secrets key {}: {what}", file.display()));
        if !file.exists() {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|err| fail(err.to_string()))?;
            write_private(file, hex::encode(key).as_bytes()).map_err(|err| fail(err.to_string()))?;
            tracing::info!(file = %file.display(), "created the key that seals secrets at rest; back it up apart from the database");
        }
        let text = std::fs::read_to_string(file).map_err(|err| fail(err.to_string()))?;
        let key = hex::decode(text.trim()).map_err(|_| fail("not 64 hex digits".into()))?;
        let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(|_| fail("not a 32-byte key".into()))?;
        Ok(SecretsKey { cipher, token_hash_key: derive(&key, b"plugboard token hashes v1") })
    }

    /// A random key that lives only in memory (tests, throwaway stores).
    ///
    /// # Errors
    /// When the system has no randomness.
    pub fn ephemeral() -> Result<SecretsKey, StoreError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|err| StoreError::backend_in("randomness", err))?;
        let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(|err| StoreError::backend(err.to_string()))?;
        Ok(SecretsKey { cipher, token_hash_key: derive(&key, b"plugboard token hashes v1") })
    }

    /// The key API tokens are hashed under (HMAC-SHA256), derived from this key: a copy of the
    /// database alone then allows no offline guessing of tokens, and nodes that share the
    /// secrets key (a cluster) share it.
    pub fn token_hash_key(&self) -> [u8; 32] {
        self.token_hash_key
    }

    /// A keyed digest of `name` for `purpose`: a name only holders of this key can compute (the
    /// cluster's once-only claim subjects, which outsiders must not be able to take first).
    pub(crate) fn keyed_digest(&self, purpose: &[u8], name: &[u8]) -> [u8; 32] {
        derive(&derive(&self.token_hash_key, purpose), name)
    }

    /// Seals `plain`, bound to the store key `under`.
    pub(crate) fn seal(&self, under: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|err| StoreError::backend_in("randomness", err))?;
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: under })
            .map_err(|_| StoreError::backend("sealing a secret failed"))?;
        Ok([MAGIC, &nonce, &sealed].concat())
    }

    /// Opens a value [`SecretsKey::seal`] stored under `under`; a value stored before sealing
    /// existed (no marker) is answered as it is.
    pub(crate) fn open(&self, under: &[u8], stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some(rest) = stored.strip_prefix(MAGIC) else { return Ok(stored.to_vec()) };
        let unreadable = || StoreError::Corrupt {
            area: "secrets",
            detail: "a sealed secret does not open with this key (wrong or replaced secrets key file?)".into(),
        };
        let (nonce, sealed) = rest.split_at_checked(NONCE_BYTES).ok_or_else(unreadable)?;
        self.cipher.decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: under }).map_err(|_| unreadable())
    }

    /// Whether `stored` is sealed.
    pub fn is_sealed(stored: &[u8]) -> bool {
        stored.starts_with(MAGIC)
    }
}

/// Writes `bytes` to a new file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_under_their_name() {
        let key = SecretsKey::ephemeral().expect("key");
        let sealed = key.seal(b"plugin-a", b"hunter2").expect("seal");
        assert!(SecretsKey::is_sealed(&sealed));
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"), "no clear text at rest");
        assert_eq!(key.open(b"plugin-a", &sealed).expect("open"), b"hunter2");
        assert!(matches!(key.open(b"plugin-b", &sealed), Err(StoreError::Corrupt { .. })), "bound to its name");
        let other = SecretsKey::ephemeral().expect("key");
        assert!(matches!(other.open(b"plugin-a", &sealed), Err(StoreError::Corrupt { .. })), "bound to its key");
        assert_eq!(key.open(b"plugin-a", b"legacy").expect("legacy"), b"legacy");
    }

    #[test]
    fn the_key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secrets.key");
        let first = SecretsKey::load_or_create(&file).expect("create");
        let sealed = first.seal(b"x", b"value").expect("seal");
        let again = SecretsKey::load_or_create(&file).expect("load");
        assert_eq!(again.open(b"x", &sealed).expect("open"), b"value");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).expect("metadata").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(&file, "not a key").expect("write");
        assert!(SecretsKey::load_or_create(&file).is_err());
    }
}
