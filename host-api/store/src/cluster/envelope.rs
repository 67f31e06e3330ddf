//! The messages of the change log: what a node publishes, sealed, and how a replica reads it.
//!
//! A message body is the JSON of a [`Sealed`] sealed with the secrets key (XChaCha20-Poly1305):
//! the stream holds grants, secrets, webhook secrets and token hashes, and an operator with access
//! to NATS must not read them. The seal is bound to [`SEAL_CONTEXT`] *and the message's subject*,
//! so a captured message re-published on another subject does not open. Inside, an
//! [`Envelope`] names its publishing node and that node's [`Envelope::counter`] (the applier
//! refuses one it has seen, see `replay.rs`) and the revision the publisher read
//! ([`Envelope::expected`], which the applier enforces as JetStream did): a captured message
//! re-published on its own subject is refused too. A sealed envelope larger than [`MAX_INLINE`]
//! (NATS refuses messages over its `max_payload`, 1 MiB by default) is stored in the object store
//! and the message carries, sealed, the object's name, size and digest: an object replaced or
//! grown by someone with access to NATS is refused, and none is read past [`MAX_OBJECT`].
//!
//! Whatever does not open or decode is [`Junk`]: the applier skips and counts it.

use super::{BLOBS_BUCKET, Inner, backend};
use crate::{Change, QueuedRun, Result};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

/// Sealed envelopes up to this size travel in the message itself.
pub const MAX_INLINE: usize = 512 * 1024;
/// The largest sealed envelope read from the object store (a change carries no plugin bytes:
/// those are blobs of their own).
pub const MAX_OBJECT: u64 = 64 * 1024 * 1024;
/// The largest plugin file read from the object store (uploads are 64 MiB by default): an object
/// grown to gigabytes by someone with access to NATS is refused, not read.
pub const MAX_BLOB: u64 = 256 * 1024 * 1024;
/// What a sealed body is bound to, with the subject (a sealed secret of the embedded store
/// cannot pass for one).
/// v3: v2 plus key-value commits (`Body::KeyValue`) and ordered flows' runs handed to one node,
/// which a v2 node would skip or decide otherwise: the two must not share a log.
const SEAL_CONTEXT: &[u8] = b"plugboard change log v3\0";
/// The second format's context (with the subject after it, like this one's).
const SEAL_CONTEXT_V2: &[u8] = b"plugboard change log v2\0";
/// The first format's context: a log holding such messages was written by an older Plugboard.
const SEAL_CONTEXT_V1: &[u8] = b"plugboard change log v1";

/// One message: who published it, its place in the publisher's count, and what.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    /// The publishing node.
    pub node: String,
    /// How many messages the node published, this one included (from 1, never reused: a
    /// restarted node continues from the highest its replica applied).
    pub counter: u64,
    /// The last sequence of the subject the publisher expected (the revision it read).
    pub expected: Option<u64>,
    /// What it carries.
    pub body: Body,
}

/// What the seal holds: the envelope, or where it is.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Sealed {
    Inline(Envelope),
    Object {
        /// Name in [`BLOBS_BUCKET`].
        name: String,
        /// Its size in bytes.
        size: u64,
        /// Hex SHA-256 of its bytes.
        digest: String,
    },
}

/// Why a message was skipped (the `reason` label of the skip counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
pub enum Junk {
    /// It does not open with this node's key under its subject (junk, re-routed, another key).
    #[error("does not open under its subject with this node's secrets key")]
    Unreadable,
    /// It opens but does not decode.
    #[error("does not decode")]
    Malformed,
    /// Its object is missing, larger than it says or than [`MAX_OBJECT`], or not its digest.
    #[error("names an object that is missing, too large or not its digest")]
    Object,
    /// Its publisher's counter is not above what was applied from that node: a replay.
    #[error("was applied before (a replay)")]
    Replayed,
    /// The revision it claims is not the subject's last: a replay or a forged header.
    #[error("claims a revision that is not the last one")]
    Stale,
}

impl Junk {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Junk::Unreadable => "unreadable",
            Junk::Malformed => "malformed",
            Junk::Object => "object",
            Junk::Replayed => "replayed",
            Junk::Stale => "stale",
        }
    }
}

/// A message that opened with the first format's context: written by an older Plugboard.
#[derive(Debug, thiserror::Error)]
#[error(
    "the cluster's change log holds messages of an older Plugboard (format v1 or v2), which this \
     version refuses (v1 is not bound to subject and publisher; v2 nodes keep key-value data per \
     node and order flows per node); start this version on a new change log (a new NATS account \
     or server) and move the state over with an export"
)]
pub struct OlderFormat;

/// What a message carries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Body {
    /// An atomic change (blob bytes travel apart, by digest).
    Change(Change),
    /// A webhook delivery queued once cluster-wide (its subject is the delivery's own).
    Delivery {
        /// The queued run.
        run: QueuedRun,
        /// The delivery's signature.
        signature: Vec<u8>,
        /// When its mark may be forgotten.
        expires_at: u64,
    },
    /// An id block reservation: ids `seq << 16 ..` belong to the publisher.
    Ids,
    /// A once-only claim (a cron due time); its subject is the claim's own (see
    /// [`claim_subject`]), and the first message on it wins.
    Claim,
    /// The publisher adopts the queued runs and running executions of node `from`.
    Adopt {
        /// The node that stopped.
        from: String,
    },
    /// One invocation's key-value writes, committed by every replica under the plugin's quota
    /// (see `keyvalue.rs`).
    KeyValue {
        /// The plugin.
        namespace: String,
        /// Its writes, in key order.
        writes: Vec<super::keyvalue::KeyValueWrite>,
        /// The quota's most keys.
        max_keys: u64,
        /// The quota's most bytes.
        max_bytes: u64,
    },
}

/// The subject of a once-only claim of `key`: keyed with the secrets key, so someone with access
/// to NATS cannot compute it and take a due time first; on the change log, which refuses deletes,
/// so a claim cannot be removed to let a second node claim it.
pub(super) fn claim_subject(inner: &Inner, key: &str) -> String {
    let digest = inner.seal.keyed_digest(b"plugboard cluster claims v1", key.as_bytes());
    format!("plugboard.changes.claim.{}", hex::encode(&digest[..20]))
}

/// The subject that makes a delivery unique: the first message on it wins.
pub fn delivery_subject(flow: &str, signature: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(flow.as_bytes());
    hash.update([0]);
    hash.update(signature);
    format!("plugboard.changes.delivery.{}", hex::encode(&hash.finalize()[..20]))
}

fn context(subject: &str) -> Vec<u8> {
    [SEAL_CONTEXT, subject.as_bytes()].concat()
}

/// `plain` sealed as a message of the change log on `subject` under `key`: what a node holding
/// the secrets key publishes (the cluster fuzz target uses it to reach past the seal).
///
/// # Errors
/// When the system has no randomness.
pub fn seal_message(key: &crate::sealed::SecretsKey, subject: &str, plain: &[u8]) -> Result<Vec<u8>> {
    key.seal(&context(subject), plain)
}

/// Seals `envelope` for `subject`, moving a large one to the object store; answers the payload.
pub(super) async fn encode(inner: &Inner, subject: &str, envelope: Envelope) -> Result<Vec<u8>> {
    let context = context(subject);
    let plain = serde_json::to_vec(&Sealed::Inline(envelope)).map_err(backend)?;
    let sealed = inner.seal.seal(&context, &plain)?;
    if sealed.len() <= MAX_INLINE {
        return Ok(sealed);
    }
    let Ok(Sealed::Inline(envelope)) = serde_json::from_slice::<Sealed>(&plain) else {
        return Err(backend("an envelope does not decode back"));
    };
    let object = inner.seal.seal(&context, &serde_json::to_vec(&envelope).map_err(backend)?)?;
    if object.len() as u64 > MAX_OBJECT {
        return Err(crate::StoreError::backend(format!(
            "cluster: a change of {} bytes sealed is larger than the {MAX_OBJECT} a replica reads",
            object.len()
        )));
    }
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(backend)?;
    let name = format!("change-{}", hex::encode(id));
    let mut reader = object.as_slice();
    inner.blobs.put(name.as_str(), &mut reader).await.map_err(backend)?;
    let pointer = Sealed::Object { name, size: object.len() as u64, digest: hex::encode(Sha256::digest(&object)) };
    inner.seal.seal(&context, &serde_json::to_vec(&pointer).map_err(backend)?)
}

/// Why an object could not be read.
#[derive(Debug)]
pub(super) enum ObjectError {
    /// It does not exist: the stream's leader answered so (objects are stored before the change
    /// naming them is published).
    Missing,
    /// It is larger than the reader's limit.
    TooLarge,
    /// Anything else (no leader, a broken connection): worth retrying.
    Failed(crate::StoreError),
}

/// Reads an object of the object store whole, refusing one larger than `limit`.
pub(super) async fn read_object(inner: &Inner, name: &str, limit: u64) -> std::result::Result<Vec<u8>, ObjectError> {
    use async_nats::jetstream::object_store::GetErrorKind;
    let object = inner.blobs.get(name).await.map_err(|err| match err.kind() {
        GetErrorKind::NotFound => ObjectError::Missing,
        _ => ObjectError::Failed(backend(format!("{BLOBS_BUCKET}/{name}: {err}"))),
    })?;
    let mut bytes = Vec::new();
    object
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .await
        .map_err(|err| ObjectError::Failed(backend(err)))?;
    if bytes.len() as u64 > limit {
        return Err(ObjectError::TooLarge);
    }
    Ok(bytes)
}

/// Opens a message of the change log that arrived on `subject`.
///
/// # Errors
/// [`Decoded::Junk`] for what is to be skipped; [`Decoded::Retry`] when its object could not be
/// read for now.
pub(super) async fn decode(inner: &Inner, subject: &str, payload: &[u8]) -> Decoded {
    match decode_inner(inner, subject, payload).await {
        Ok(decoded) => decoded,
        Err(junk) => Decoded::Junk(junk),
    }
}

/// What a message of the change log turned out to be.
pub(super) enum Decoded {
    /// An envelope to apply.
    Envelope(Envelope),
    /// A message of the first format.
    Older(OlderFormat),
    /// Something to skip.
    Junk(Junk),
    /// Its object could not be read now; read it again.
    Retry(crate::StoreError),
}

async fn decode_inner(inner: &Inner, subject: &str, payload: &[u8]) -> std::result::Result<Decoded, Junk> {
    let context = context(subject);
    let open = |sealed: &[u8]| {
        // Unsealed bytes would open as themselves: whoever can publish to NATS must not write state.
        if !crate::sealed::SecretsKey::is_sealed(sealed) {
            return Err(Junk::Unreadable);
        }
        inner.seal.open(&context, sealed).map_err(|_| Junk::Unreadable)
    };
    let plain = match open(payload) {
        Ok(plain) => plain,
        Err(junk) if crate::sealed::SecretsKey::is_sealed(payload) => {
            let v2 = [SEAL_CONTEXT_V2, subject.as_bytes()].concat();
            return if inner.seal.open(SEAL_CONTEXT_V1, payload).is_ok() || inner.seal.open(&v2, payload).is_ok() {
                Ok(Decoded::Older(OlderFormat))
            } else {
                Err(junk)
            };
        }
        Err(junk) => return Err(junk),
    };
    match serde_json::from_slice::<Sealed>(&plain).map_err(|_| Junk::Malformed)? {
        Sealed::Inline(envelope) => Ok(Decoded::Envelope(envelope)),
        Sealed::Object { name, size, digest } => {
            if size > MAX_OBJECT {
                return Err(Junk::Object);
            }
            let bytes = match read_object(inner, &name, size).await {
                Ok(bytes) => bytes,
                Err(ObjectError::Failed(err)) => return Ok(Decoded::Retry(err)),
                Err(ObjectError::Missing | ObjectError::TooLarge) => return Err(Junk::Object),
            };
            if bytes.len() as u64 != size || hex::encode(Sha256::digest(&bytes)) != digest {
                return Err(Junk::Object);
            }
            serde_json::from_slice(&open(&bytes)?).map(Decoded::Envelope).map_err(|_| Junk::Malformed)
        }
    }
}
