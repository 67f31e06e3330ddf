//! The messages of the change log: what a node publishes, sealed, and how a replica reads it.
//!
//! A message body is the JSON of an [`Envelope`] sealed with the secrets key (XChaCha20-Poly1305,
//! bound to [`SEAL_CONTEXT`]): the stream holds grants, secrets, webhook secrets and token hashes,
//! and an operator with access to NATS must not read them. A sealed body larger than
//! [`MAX_INLINE`] (NATS refuses messages over its `max_payload`, 1 MiB by default) is stored in
//! the object store and the message carries only its name in the [`OBJECT_HEADER`] header.

use super::{BLOBS_BUCKET, Inner, backend};
use crate::store::{Change, QueuedRun, Result, StoreError};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

/// Sealed bodies up to this size travel in the message itself.
pub const MAX_INLINE: usize = 512 * 1024;
/// Names the object holding a large body.
const OBJECT_HEADER: &str = "Plugboard-Object";
/// What a sealed body is bound to (a sealed secret of the embedded store cannot pass for one).
const SEAL_CONTEXT: &[u8] = b"plugboard change log v1";

/// One message: who published it and what.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    /// The publishing node.
    pub node: String,
    /// What it carries.
    pub body: Body,
}

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
    /// The publisher adopts the queued runs and running executions of node `from`.
    Adopt {
        /// The node that stopped.
        from: String,
    },
}

/// A message ready to publish.
pub struct Encoded {
    /// The body.
    pub payload: Vec<u8>,
    /// Headers, when the body lives in the object store.
    pub headers: Option<async_nats::HeaderMap>,
}

/// The subject that makes a delivery unique: the first message on it wins.
pub fn delivery_subject(flow: &str, signature: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(flow.as_bytes());
    hash.update([0]);
    hash.update(signature);
    format!("plugboard.changes.delivery.{}", hex::encode(&hash.finalize()[..20]))
}

/// Seals `envelope`, moving a large body to the object store.
pub(super) async fn encode(inner: &Inner, envelope: &Envelope) -> Result<Encoded> {
    let plain = serde_json::to_vec(envelope).map_err(backend)?;
    let sealed = inner.seal.seal(SEAL_CONTEXT, &plain)?;
    if sealed.len() <= MAX_INLINE {
        return Ok(Encoded { payload: sealed, headers: None });
    }
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(backend)?;
    let name = format!("change-{}", hex::encode(id));
    let mut reader = sealed.as_slice();
    inner.blobs.put(name.as_str(), &mut reader).await.map_err(backend)?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(OBJECT_HEADER, name.as_str());
    Ok(Encoded { payload: Vec::new(), headers: Some(headers) })
}

/// Reads an object of the object store whole.
pub(super) async fn read_object(inner: &Inner, name: &str) -> Result<Vec<u8>> {
    let mut object = inner.blobs.get(name).await.map_err(|err| backend(format!("{BLOBS_BUCKET}/{name}: {err}")))?;
    let mut bytes = Vec::new();
    object.read_to_end(&mut bytes).await.map_err(backend)?;
    Ok(bytes)
}

/// Opens a message of the change log.
///
/// # Errors
/// [`StoreError::Corrupt`] when it does not open with this node's key or does not decode.
pub(super) async fn decode(inner: &Inner, message: &async_nats::jetstream::Message) -> Result<Envelope> {
    let fetched;
    let sealed: &[u8] = match message.headers.as_ref().and_then(|h| h.get(OBJECT_HEADER)) {
        Some(name) => {
            fetched = read_object(inner, name.as_str()).await?;
            &fetched
        }
        None => &message.payload,
    };
    // Unsealed bytes would open as themselves: whoever can publish to NATS must not write state.
    let opened = if crate::store::sealed::SecretsKey::is_sealed(sealed) {
        inner.seal.open(SEAL_CONTEXT, sealed)
    } else {
        Err(StoreError::Closed)
    };
    let plain = opened.map_err(|_| StoreError::Corrupt {
        area: "change log",
        detail: "a change does not open with this node's secrets key: every node needs the same \
                 `secrets_key_file`"
            .into(),
    })?;
    serde_json::from_slice(&plain).map_err(|err| StoreError::Corrupt { area: "change log", detail: err.to_string() })
}
