//! Persisted compiled artifacts, so a restart loads plugins without recompiling them.
//!
//! `Component::deserialize` trusts its input completely (it maps the bytes as executable code), so
//! this cache never hands it bytes the runtime did not produce itself. Every entry carries an
//! HMAC-SHA256 over the source component's digest and the compiled bytes, keyed by a random secret
//! created with the cache (`cache.key`, mode 0600). An entry whose tag does not verify (tampered,
//! truncated, written by someone else, or made for another component) is discarded and recompiled.
//! Entries are keyed by the source digest and the engine's compatibility hash, so a wasmtime upgrade
//! or a changed engine setting simply misses.

use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"PBCWASM1";
const TAG_LEN: usize = 32;

/// A directory of compiled components.
#[derive(Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    key: [u8; 32],
    engine_hash: String,
}

impl ArtifactCache {
    /// Opens (creating if needed) the cache in `dir` for `engine`.
    ///
    /// # Errors
    /// [`Error::Internal`] when the directory or its key cannot be created or read.
    pub fn open(dir: PathBuf, engine: &Engine) -> Result<ArtifactCache> {
        std::fs::create_dir_all(&dir)
            .map_err(|err| Error::internal_from(format!("cache dir {}", dir.display()), err))?;
        let key = load_or_create_key(&dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(ArtifactCache { dir, key, engine_hash: format!("{:016x}", hasher.finish()) })
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_hash))
    }

    fn tag(&self, digest: &str, compiled: &[u8]) -> Result<[u8; TAG_LEN]> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).map_err(Error::internal)?;
        mac.update(digest.as_bytes());
        mac.update(compiled);
        Ok(mac.finalize().into_bytes().into())
    }

    /// The compiled component for source `digest`, if a verified entry exists.
    pub(crate) fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        let bytes = std::fs::read(&path).ok()?;
        let verified = bytes.len() > MAGIC.len() + TAG_LEN && bytes.starts_with(MAGIC) && {
            let (tag, compiled) = bytes[MAGIC.len()..].split_at(TAG_LEN);
            self.verify(digest, compiled, tag)
        };
        if !verified {
            tracing::warn!(path = %path.display(), "discarding compiled artifact that fails its integrity check");
            let _ = std::fs::remove_file(&path);
            return None;
        }
        let compiled = &bytes[MAGIC.len() + TAG_LEN..];
        // SAFETY: `compiled` was produced by `Engine::precompile_component` in this cache (the HMAC
        // under our secret key proves it, for this exact source digest), and wasmtime checks that it
        // was made by a compatible engine before using it.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, compiled) };
        match component {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "discarding incompatible compiled artifact");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn verify(&self, digest: &str, compiled: &[u8], tag: &[u8]) -> bool {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else { return false };
        mac.update(digest.as_bytes());
        mac.update(compiled);
        mac.verify_slice(tag).is_ok()
    }

    /// Persists `compiled` (from `Engine::precompile_component` or `Component::serialize`) for
    /// source `digest`; written to a temporary file and renamed, so readers never see half a file.
    ///
    /// # Errors
    /// [`Error::Internal`] on I/O failure.
    pub(crate) fn store(&self, digest: &str, compiled: &[u8]) -> Result<()> {
        let tag = self.tag(digest, compiled)?;
        let path = self.path(digest);
        let tmp = temporary(&path);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(MAGIC)?;
            file.write_all(&tag)?;
            file.write_all(compiled)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|err| {
            let _ = std::fs::remove_file(&tmp);
            Error::internal_from(format!("writing {}", path.display()), err)
        })
    }

    /// Claims compiling `digest` until the returned file is dropped: an exclusive lock on
    /// `<entry>.lock`, so concurrent loads of one component, in this process or in others sharing
    /// the cache, compile it once; the others wait and then read the entry. `None` when the file
    /// system cannot lock (each load then compiles for itself, as without a cache).
    pub(crate) fn claim(&self, digest: &str) -> Option<std::fs::File> {
        let path = self.path(digest).with_extension("lock");
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path);
        match file.and_then(|file| file.lock().map(|()| file)) {
            Ok(file) => Some(file),
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "cannot lock; compiling without a claim");
                None
            }
        }
    }

    /// Where entries live.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

fn load_or_create_key(dir: &std::path::Path) -> Result<[u8; 32]> {
    let path = dir.join("cache.key");
    let read = |path: &std::path::Path| -> Result<Option<[u8; 32]>> {
        match std::fs::read(path) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
                .map(Some)
                .map_err(|_| Error::internal(format!("{} is not a 32-byte key", path.display()))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::internal_from(path.display().to_string(), err)),
        }
    };
    if let Some(key) = read(&path)? {
        return Ok(key);
    }
    // Written whole under a unique name, then linked into place: a hard link never replaces, so
    // when several runtimes (or processes) open one cache at once, the first key wins and every
    // other reads that key, never a half-written one.
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|err| Error::internal_from("the cache key's randomness", err))?;
    let tmp = temporary(&path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| file.write_all(&key).and_then(|()| file.sync_all()));
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            read(&path)?.ok_or_else(|| Error::internal(format!("{} vanished", path.display())))
        }
        Err(err) => Err(Error::internal_from(path.display().to_string(), err)),
    }
}

/// A temporary name beside `path`, unique per process and per call, so concurrent writers (threads
/// or processes sharing the cache) never write into one file.
fn temporary(path: &std::path::Path) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_extension(format!("tmp{}-{n}", std::process::id()))
}
