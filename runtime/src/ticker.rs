//! The epoch ticker: one thread per runtime that advances the engine's epoch at a fixed rate.
//!
//! Deadlines are counted in epoch ticks (wasmtime checks the epoch at function entries and loop
//! back-edges, which is far cheaper than reading a clock). The runtime owns its ticker and the
//! ticker stops and joins on drop, so no thread outlives the runtime and nothing is process-global.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::Engine;

/// Advances an engine's epoch every `tick` until dropped.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine` every `tick`.
    ///
    /// # Errors
    /// When the OS refuses to start the thread.
    pub fn start(engine: Engine, tick: Duration) -> std::io::Result<EpochTicker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("plugboard-epoch".into()).spawn(move || {
            // Any message, or the sender dropping, stops the ticker.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                engine.increment_epoch();
            }
        })?;
        Ok(EpochTicker { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
