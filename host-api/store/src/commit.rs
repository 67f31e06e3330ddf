//! Group commit: one flusher thread makes writes durable for every waiter at once.
//!
//! Why a thread of our own: sled 0.34's `flush_async` runs each flush on sled's shared thread
//! pool, and concurrent calls can deadlock there (sled issues #1241 and #1308, open in its last
//! release); that stalled the flow worker for good under concurrent webhooks. Here nothing calls
//! `flush_async`. Callers queue a waiter and await it; the one flusher thread takes *every*
//! waiter queued so far, runs one synchronous flush (one fsync), and wakes them all. A writer's
//! changes are in place before it queues its waiter, and the flusher takes its batch before it
//! flushes, so each flush covers every waiter it wakes. Under load, many acknowledgements share
//! one fsync; idle, a lone waiter gets its own at once (no timer adds latency).
//!
//! A failed flush is final: the data it should have made durable may be gone (an fsync error
//! can drop dirty pages), so every later waiter gets the error too and nothing more is
//! acknowledged until a restart.

use super::{CommitStats, Durable, Result, StoreError};
use plugboard_runtime::sync::Locked;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Waiter = tokio::sync::oneshot::Sender<Result<()>>;

#[derive(Default)]
struct Counters {
    fsyncs: AtomicU64,
    commits: AtomicU64,
    flush_micros: AtomicU64,
}

/// The flusher and its queue of waiters.
pub struct GroupCommit {
    waiters: Mutex<Option<mpsc::Sender<Waiter>>>,
    counters: Arc<Counters>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the flusher thread; `flush` makes every write so far durable (one fsync).
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(mut flush: impl FnMut() -> Result<()> + Send + 'static) -> Result<GroupCommit> {
        let (sender, receiver) = mpsc::channel::<Waiter>();
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("plugboard-flusher".into())
            .spawn(move || {
                let mut failure: Option<StoreError> = None;
                // Ends when every sender is gone (the store was closed or dropped).
                while let Ok(first) = receiver.recv() {
                    let mut batch = vec![first];
                    batch.extend(receiver.try_iter());
                    let outcome = match &failure {
                        Some(err) => Err(err.clone()),
                        None => {
                            let started = std::time::Instant::now();
                            let outcome = flush();
                            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                            thread_counters.flush_micros.fetch_add(micros, Ordering::Relaxed);
                            thread_counters.fsyncs.fetch_add(1, Ordering::Relaxed);
                            if let Err(err) = &outcome {
                                tracing::error!(%err, "flushing the database failed; nothing more is acknowledged");
                                failure = Some(err.clone());
                            }
                            outcome
                        }
                    };
                    for waiter in batch {
                        let _ = waiter.send(outcome.clone());
                    }
                }
            })
            .map_err(|err| StoreError::backend_in("starting the flusher thread", err))?;
        Ok(GroupCommit { waiters: Mutex::new(Some(sender)), counters, thread: Some(thread) })
    }

    /// Resolves once every write made before this call is durable.
    pub fn durable(&self) -> Durable {
        let (waiter, woken) = tokio::sync::oneshot::channel();
        let queued = match &*self.waiters.locked() {
            Some(sender) => sender.send(waiter).is_ok(),
            None => false,
        };
        if queued {
            self.counters.commits.fetch_add(1, Ordering::Relaxed);
        }
        Box::pin(async move {
            if !queued {
                return Err(StoreError::Closed);
            }
            woken.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    /// Queues a last flush and stops the flusher after it; later calls to
    /// [`GroupCommit::durable`] fail with [`StoreError::Closed`].
    pub fn close(&self) -> Durable {
        let last = self.durable();
        self.waiters.locked().take();
        last
    }

    /// Flushes and waiters so far.
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            fsyncs: self.counters.fsyncs.load(Ordering::Relaxed),
            commits: self.counters.commits.load(Ordering::Relaxed),
            flush_micros: self.counters.flush_micros.load(Ordering::Relaxed),
            ..CommitStats::default()
        }
    }
}

impl Drop for GroupCommit {
    /// Stops the flusher and waits for it: what it holds (the database, with its file lock) is
    /// released when the store is, so the same directory can be opened again at once.
    fn drop(&mut self) {
        self.waiters.locked().take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_share_flushes_and_all_wake() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let counted = flushes.clone();
        let commit = Arc::new(
            GroupCommit::start(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(5));
                Ok(())
            })
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| unreachable!("{e}")),
        );
        let waiters: Vec<_> = (0..200).map(|_| tokio::spawn(commit.durable())).collect();
        for waiter in waiters {
            assert!(matches!(waiter.await, Ok(Ok(()))));
        }
        let stats = commit.stats();
        assert_eq!(stats.commits, 200);
        assert!(stats.fsyncs < 200, "200 waiters shared flushes: {stats:?}");
        assert_eq!(stats.fsyncs as usize, flushes.load(Ordering::SeqCst));
        assert!(matches!(commit.close().await, Ok(())));
        assert!(matches!(commit.durable().await, Err(StoreError::Closed)));
    }

    #[tokio::test]
    async fn a_failed_flush_fails_every_later_waiter() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let commit = GroupCommit::start(move || {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 { Err(StoreError::backend("disk")) } else { Ok(()) }
        })
        .map_err(|e| e.to_string())
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(commit.durable().await.is_err());
        assert!(commit.durable().await.is_err(), "a later flush does not make lost writes durable");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
