//! Snapshots of the replica, so a node joining a long-lived cluster does not replay its history.
//!
//! Without them a new node (or one whose replica was lost) applies the change log from its first
//! message, and its start grows with everything the cluster ever did. So one node — the live node
//! with the smallest id, once it has caught up and watched the others' heartbeats for a while, so
//! nodes do not all do the same work — writes its replica's shared state
//! (`store::sled::snapshot`) to the `snapshot` object of the blobs store every
//! [`ClusterSettings::snapshot_every`](super::ClusterSettings) changes, and a node that opens an
//! empty replica imports the latest snapshot and applies the log from the sequence after it.
//!
//! **Not trusted as stored.** Whoever can write to the object store could offer a forged or mixed
//! snapshot. A snapshot is sealed with the secrets key in chunks, each bound to the snapshot's
//! random id, its index and whether it is the last (a chunk of another snapshot, a reordered,
//! missing or cut one does not open), and it carries the sequence it was taken at and, in its meta
//! area, the applied position and replay marks. The change log cannot be deleted or purged, so an
//! older (genuine) snapshot only means more of the log to apply, never another state. A snapshot
//! that does not open is refused with a log line, the replica is emptied again and the node
//! applies the whole log, as before snapshots.
//!
//! **Consistent.** The writer exports between two messages of the applier (which waits meanwhile:
//! sled has no point-in-time reads), to a file beside the replica, and uploads it afterwards
//! while the applier goes on. (The one other writer of the shared areas, the sweep of expired
//! webhook delivery marks, may remove some marks during an export; they are expired either way.)
//! A snapshot is uploaded only when the one stored is older, with its sequence in the object's
//! description for that check (a hint only: what is imported is what the sealed header says). The log itself is not shortened: it is the one record nobody can take
//! back (see the stream's `deny_purge`), and its storage is the operator's to bound.

use super::{BLOBS_BUCKET, Inner, backend};
use crate::sealed::SecretsKey;
use crate::sled::{Entry, SledStore};
use crate::{Result, StoreError};
use async_nats::jetstream::object_store::ObjectStore;
use plugboard_runtime::sync::Locked;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
use tokio::io::AsyncReadExt;

/// The object the latest snapshot is stored as.
pub const SNAPSHOT_OBJECT: &str = "snapshot";
/// A snapshot file starts with this.
const MAGIC: &[u8; 8] = b"PBSNAP1\0";
/// Plain bytes per chunk before it is sealed (one entry larger than this is a chunk of its own).
const CHUNK: usize = 1 << 20;
/// The largest sealed chunk read: one plugin file (the largest entry) and its framing.
const MAX_CHUNK: u64 = super::envelope::MAX_BLOB + (2 << 20);
/// The largest snapshot read.
const MAX_SNAPSHOT: u64 = 64 << 30;

/// When this node writes snapshots, and the one it is writing.
pub(crate) struct Schedule {
    /// Changes between snapshots; 0: never.
    every: u64,
    /// The sequence of the last snapshot written or loaded here.
    last: AtomicU64,
    /// Whether one is being written or uploaded now.
    busy: AtomicBool,
    /// The file a snapshot is written to before its upload.
    scratch: PathBuf,
    /// Since when this node follows the log live (set once it has caught up and watches beats).
    live_since: std::sync::OnceLock<Instant>,
}

impl Schedule {
    pub(crate) fn new(every: u64, since: u64, scratch: PathBuf) -> Schedule {
        let (last, busy, live_since) = (AtomicU64::new(since), AtomicBool::new(false), std::sync::OnceLock::new());
        Schedule { every, last, busy, scratch, live_since }
    }

    /// This node has caught up with the log and watches the others' heartbeats from now on.
    pub(crate) fn live(&self) {
        let _ = self.live_since.set(Instant::now());
    }
}

/// The context a chunk is sealed under.
fn context(id: &[u8; 16], index: u64, last: bool) -> Vec<u8> {
    let mut context = b"plugboard snapshot v1\0".to_vec();
    context.extend_from_slice(id);
    context.extend_from_slice(&index.to_be_bytes());
    context.push(u8::from(last));
    context
}

/// Called by the applier after applying `seq`: writes a snapshot when one is due and this node is
/// the one to write it. The export runs now (the applier waits); the upload runs in a task.
pub(super) fn maybe_write(inner: &std::sync::Arc<Inner>, seq: u64) {
    let schedule = &inner.snapshots;
    if schedule.every == 0 || seq < schedule.last.load(Ordering::SeqCst).saturating_add(schedule.every) {
        return;
    }
    if !writes_snapshots(inner) || schedule.busy.swap(true, Ordering::SeqCst) {
        return;
    }
    let started = Instant::now();
    let exported = tokio::task::block_in_place(|| export(&inner.replica, &inner.seal, seq, &schedule.scratch));
    let (entries, bytes) = match exported {
        Ok(sizes) => sizes,
        Err(err) => {
            tracing::warn!(%err, seq, "writing a cluster snapshot failed");
            schedule.busy.store(false, Ordering::SeqCst);
            return;
        }
    };
    let paused = started.elapsed();
    schedule.last.store(seq, Ordering::SeqCst);
    let inner = inner.clone();
    tokio::spawn(async move {
        let uploaded = upload(&inner.blobs, &inner.snapshots.scratch, seq).await;
        let _ = tokio::fs::remove_file(&inner.snapshots.scratch).await;
        match uploaded {
            Ok(()) => tracing::info!(seq, entries, bytes, ?paused, "wrote a cluster snapshot"),
            Err(err) => tracing::warn!(%err, seq, "uploading a cluster snapshot failed"),
        }
        inner.snapshots.busy.store(false, Ordering::SeqCst);
    });
}

/// Whether this node is the live node with the smallest id, having watched the heartbeats long
/// enough to know (a node still catching up, or just started, writes none).
fn writes_snapshots(inner: &Inner) -> bool {
    let watched = inner.snapshots.live_since.get().is_some_and(|since| since.elapsed() >= super::nodes::NODE_TIMEOUT);
    if !watched {
        return false;
    }
    let beats = inner.beats.locked();
    beats
        .iter()
        .filter(|(_, (_, seen))| seen.elapsed() < super::nodes::NODE_TIMEOUT)
        .all(|(node, _)| node.as_str() >= inner.node.as_str())
}

/// Writes the replica's shared state as of `seq` to `file`, sealed; answers entries and bytes.
fn export(replica: &SledStore, seal: &SecretsKey, seq: u64, file: &std::path::Path) -> Result<(u64, u64)> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(backend)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).map_err(backend)?);
    out.write_all(MAGIC).and_then(|()| out.write_all(&id)).map_err(backend)?;
    let mut written = (MAGIC.len() + id.len()) as u64;
    let (mut index, mut entries) = (0u64, 0u64);
    let mut plain = seq.to_be_bytes().to_vec();
    let mut flush = |plain: &mut Vec<u8>, last: bool| -> Result<()> {
        let sealed = seal.seal(&context(&id, index, last), plain)?;
        let length = u32::try_from(sealed.len()).map_err(backend)?;
        out.write_all(&length.to_be_bytes()).and_then(|()| out.write_all(&sealed)).map_err(backend)?;
        written += 4 + sealed.len() as u64;
        index += 1;
        plain.clear();
        Ok(())
    };
    replica.export_shared(|area, key, value| {
        plain.push(u8::try_from(area.len()).map_err(backend)?);
        plain.extend_from_slice(area.as_bytes());
        for part in [key, value] {
            plain.extend_from_slice(&u32::try_from(part.len()).map_err(backend)?.to_be_bytes());
            plain.extend_from_slice(part);
        }
        entries += 1;
        if plain.len() >= CHUNK { flush(&mut plain, false) } else { Ok(()) }
    })?;
    flush(&mut plain, true)?;
    out.into_inner().map_err(|err| backend(err.into_error()))?.sync_all().map_err(backend)?;
    Ok((entries, written))
}

/// Uploads the snapshot of `seq` in `file`, unless the one stored is as recent.
async fn upload(blobs: &ObjectStore, file: &std::path::Path, seq: u64) -> Result<()> {
    let stored = blobs.info(SNAPSHOT_OBJECT).await.ok().and_then(|info| info.description?.parse::<u64>().ok());
    if stored.is_some_and(|stored| stored >= seq) {
        return Ok(());
    }
    let mut reader = tokio::fs::File::open(file).await.map_err(backend)?;
    let meta = async_nats::jetstream::object_store::ObjectMetadata {
        name: SNAPSHOT_OBJECT.into(),
        description: Some(seq.to_string()),
        ..Default::default()
    };
    blobs.put(meta, &mut reader).await.map_err(backend)?;
    Ok(())
}

/// Imports the latest snapshot into `replica` (which has applied nothing: what an import that
/// stopped halfway left is emptied first), answering its sequence; `None` when there is none. A
/// snapshot that does not open is refused (logged) and the replica emptied again, so the node
/// applies the whole log.
pub(super) async fn load(blobs: &ObjectStore, seal: &SecretsKey, replica: &SledStore) -> Result<Option<u64>> {
    use async_nats::jetstream::object_store::GetErrorKind;
    let started = Instant::now();
    tokio::task::block_in_place(|| replica.clear_shared())?;
    let object = match blobs.get(SNAPSHOT_OBJECT).await {
        Ok(object) => object,
        Err(err) if err.kind() == GetErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(backend(format!("{BLOBS_BUCKET}/{SNAPSHOT_OBJECT}: {err}"))),
    };
    match import(object.take(MAX_SNAPSHOT), seal, replica).await {
        Ok((seq, entries)) => {
            tracing::info!(seq, entries, elapsed = ?started.elapsed(), "started from the cluster snapshot");
            Ok(Some(seq))
        }
        Err(err @ (StoreError::Corrupt { .. } | StoreError::Backend(_))) => {
            tracing::error!(%err, "the cluster snapshot was refused; applying the whole change log instead");
            tokio::task::block_in_place(|| replica.clear_shared())?;
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

fn refused(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt { area: "cluster snapshot", detail: detail.into() }
}

/// Reads, opens and imports a snapshot chunk by chunk; answers its sequence and entries.
async fn import(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    seal: &SecretsKey,
    replica: &SledStore,
) -> Result<(u64, u64)> {
    let mut head = [0u8; 24];
    reader.read_exact(&mut head).await.map_err(|_| refused("shorter than its header"))?;
    let (magic, id) = head.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(refused("not a snapshot"));
    }
    let id: [u8; 16] = id.try_into().map_err(|_| refused("no id"))?;
    let (mut seq, mut entries, mut applied) = (None, 0u64, None);
    for index in 0u64.. {
        let mut length = [0u8; 4];
        reader.read_exact(&mut length).await.map_err(|_| refused("cut before its last chunk"))?;
        let length = u64::from(u32::from_be_bytes(length));
        if length > MAX_CHUNK {
            return Err(refused(format!("a chunk of {length} bytes")));
        }
        let mut sealed = vec![0u8; usize::try_from(length).map_err(backend)?];
        reader.read_exact(&mut sealed).await.map_err(|_| refused("cut inside a chunk"))?;
        if !SecretsKey::is_sealed(&sealed) {
            return Err(refused("an unsealed chunk"));
        }
        let (plain, last) = match seal.open(&context(&id, index, false), &sealed) {
            Ok(plain) => (plain, false),
            Err(_) => {
                (seal.open(&context(&id, index, true), &sealed).map_err(|_| refused("a chunk does not open"))?, true)
            }
        };
        let mut rest = plain.as_slice();
        if index == 0 {
            let (first, after) = rest.split_first_chunk::<8>().ok_or_else(|| refused("no sequence"))?;
            seq = Some(u64::from_be_bytes(*first));
            rest = after;
        }
        let parsed = parse(rest)?;
        entries += parsed.len() as u64;
        applied = tokio::task::block_in_place(|| replica.import_entries(parsed))?.or(applied);
        if last {
            let mut more = [0u8; 1];
            if reader.read(&mut more).await.map_err(backend)? != 0 {
                return Err(refused("bytes after its last chunk"));
            }
            break;
        }
    }
    let seq = seq.ok_or_else(|| refused("no sequence"))?;
    if applied != Some(seq) {
        return Err(refused(format!("taken at change {seq}, but its state is of change {applied:?}")));
    }
    tokio::task::block_in_place(|| replica.finish_import(seq))?;
    Ok((seq, entries))
}

/// The entries of one chunk's plain bytes.
fn parse(mut rest: &[u8]) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>> {
        let (part, after) = rest.split_at_checked(n).ok_or_else(|| refused("an entry is cut"))?;
        *rest = after;
        Ok(part.to_vec())
    };
    while let Some((&length, after)) = rest.split_first() {
        rest = after;
        let area = String::from_utf8(take(&mut rest, usize::from(length))?).map_err(|_| refused("an area name"))?;
        let mut parts = [Vec::new(), Vec::new()];
        for part in &mut parts {
            let length = take(&mut rest, 4)?;
            let length = u32::from_be_bytes(length.try_into().map_err(|_| refused("an entry is cut"))?);
            *part = take(&mut rest, length as usize)?;
        }
        let [key, value] = parts;
        entries.push((area, key, value));
    }
    Ok(entries)
}
