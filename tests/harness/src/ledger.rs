//! The ledger: which records the server acknowledged, which reached the sink, and how long the sink
//! went without progress while work was owed.
//!
//! Senders write acknowledgements and the sink writes arrivals into the same ledger under one lock,
//! so "acknowledged but not yet delivered" (`pending`) is always exact, whichever side comes first
//! (the flow worker may deliver a record before its sender has read the `202`). Records are
//! identified by sender and sequence number, so the ledger keeps a few bytes per record in vectors
//! instead of a hash map of strings: a ten-minute run with 64 senders stays small.
//!
//! The stall clock ([`Ledger::tick`]) only runs while the server is up and something is pending; it
//! restarts whenever a new record arrives, pending work appears, or the server becomes ready.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What is known about one record.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The server acknowledged its delivery.
    acked: bool,
    /// How many times the sink received it.
    seen: u32,
}

/// One record as the sink received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A record the filter keeps, by sender and sequence number.
    Kept { sender: u32, n: u64 },
    /// A record the filter should have dropped.
    Filtered,
    /// Not a record this harness sent.
    Unknown,
}

#[derive(Debug)]
struct Inner {
    /// Per sender, per sequence number (records the filter drops keep an unused slot).
    slots: Vec<Vec<Slot>>,
    acknowledged: u64,
    acknowledged_dropped: u64,
    pending: u64,
    filtered_seen: u64,
    unknown_seen: u64,
    duplicates: u64,
    up: bool,
    /// Where the current stall gap started.
    anchor: Instant,
    longest_gap: Duration,
    longest_gap_ended: Option<Instant>,
    /// When the last acknowledged record (so far) reached the sink.
    last_reached: Option<Instant>,
}

/// Figures read from the ledger.
#[derive(Debug, Clone, Copy)]
pub struct LedgerFigures {
    /// Acknowledged records the filter keeps.
    pub acknowledged: u64,
    /// Acknowledged records the filter drops.
    pub acknowledged_dropped: u64,
    /// Acknowledged, kept, not (yet) seen at the sink.
    pub pending: u64,
    /// Extra deliveries of records already seen.
    pub duplicates: u64,
    /// Records at the sink that the filter should have dropped.
    pub filtered_seen: u64,
    /// Records at the sink that this harness did not send.
    pub unknown_seen: u64,
    /// The longest time the sink saw no new record while work was pending and the server up.
    pub longest_gap: Duration,
    /// When that gap ended (or was last measured).
    pub longest_gap_ended: Option<Instant>,
    /// When the last acknowledged record reached the sink.
    pub last_reached: Option<Instant>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

impl Ledger {
    /// An empty ledger for `senders` senders; the server counts as down until [`Ledger::set_up`].
    pub fn new(senders: usize) -> Ledger {
        Ledger {
            inner: Mutex::new(Inner {
                slots: vec![Vec::new(); senders],
                acknowledged: 0,
                acknowledged_dropped: 0,
                pending: 0,
                filtered_seen: 0,
                unknown_seen: 0,
                duplicates: 0,
                up: false,
                anchor: Instant::now(),
                longest_gap: Duration::ZERO,
                longest_gap_ended: None,
                last_reached: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the server acknowledged the records `ns` of `sender`; `kept(n)` says whether
    /// the flow's filter keeps record `n` (only those are owed to the sink).
    pub fn acknowledge(&self, sender: u32, ns: std::ops::Range<u64>, kept: impl Fn(u64) -> bool) {
        let now = Instant::now();
        let mut inner = self.lock();
        for n in ns {
            if !kept(n) {
                inner.acknowledged_dropped += 1;
                continue;
            }
            let Some(slot) = inner.slot(sender, n) else { continue };
            if slot.acked {
                continue;
            }
            slot.acked = true;
            let seen = slot.seen > 0;
            inner.acknowledged += 1;
            if seen {
                // Delivered before its sender read the answer: it reached the sink already.
                inner.last_reached = Some(now);
            } else {
                if inner.pending == 0 {
                    inner.anchor = now;
                }
                inner.pending += 1;
            }
        }
    }

    /// Records a batch the sink received.
    pub fn arrived(&self, batch: impl IntoIterator<Item = Arrival>) {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut progress = false;
        for arrival in batch {
            match arrival {
                Arrival::Filtered => inner.filtered_seen += 1,
                Arrival::Unknown => inner.unknown_seen += 1,
                Arrival::Kept { sender, n } => {
                    let Some(slot) = inner.slot(sender, n) else {
                        inner.unknown_seen += 1;
                        continue;
                    };
                    slot.seen = slot.seen.saturating_add(1);
                    let (first, acked) = (slot.seen == 1, slot.acked);
                    if !first {
                        inner.duplicates += 1;
                        continue;
                    }
                    progress = true;
                    if acked {
                        inner.pending = inner.pending.saturating_sub(1);
                        inner.last_reached = Some(now);
                    }
                }
            }
        }
        if progress {
            inner.measure(now);
            inner.anchor = now;
        }
    }

    /// The server went down (`false`, just before a kill) or became ready (`true`).
    pub fn set_up(&self, up: bool) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.measure(now);
        inner.up = up;
        inner.anchor = now;
    }

    /// Measures the current gap; call it often (the stall detector does, every 100 ms).
    pub fn tick(&self) {
        let now = Instant::now();
        self.lock().measure(now);
    }

    /// Acknowledged records that have not reached the sink yet.
    pub fn pending(&self) -> u64 {
        self.lock().pending
    }

    /// The figures so far.
    pub fn figures(&self) -> LedgerFigures {
        let inner = self.lock();
        LedgerFigures {
            acknowledged: inner.acknowledged,
            acknowledged_dropped: inner.acknowledged_dropped,
            pending: inner.pending,
            duplicates: inner.duplicates,
            filtered_seen: inner.filtered_seen,
            unknown_seen: inner.unknown_seen,
            longest_gap: inner.longest_gap,
            longest_gap_ended: inner.longest_gap_ended,
            last_reached: inner.last_reached,
        }
    }
}

/// Records further than this past the last one a sender allocated are not ours.
const MAX_SEQUENCE: u64 = 1 << 32;

impl Inner {
    /// The slot of record `n` of `sender`, growing the sender's vector as records are numbered.
    fn slot(&mut self, sender: u32, n: u64) -> Option<&mut Slot> {
        let slots = self.slots.get_mut(usize::try_from(sender).ok()?)?;
        let index = usize::try_from(n).ok().filter(|_| n < MAX_SEQUENCE)?;
        if slots.len() <= index {
            slots.resize(index + 1, Slot::default());
        }
        slots.get_mut(index)
    }

    /// Extends the longest gap with the current one, when the clock runs.
    fn measure(&mut self, now: Instant) {
        if !self.up || self.pending == 0 {
            return;
        }
        let gap = now.saturating_duration_since(self.anchor);
        if gap > self.longest_gap {
            self.longest_gap = gap;
            self.longest_gap_ended = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: u64) -> bool {
        true
    }

    #[test]
    fn pending_counts_acknowledged_records_not_yet_seen_whichever_comes_first() {
        let ledger = Ledger::new(2);
        ledger.arrived([Arrival::Kept { sender: 0, n: 0 }]);
        ledger.acknowledge(0, 0..3, all);
        assert_eq!(ledger.pending(), 2);
        ledger.arrived([Arrival::Kept { sender: 0, n: 1 }, Arrival::Kept { sender: 0, n: 1 }]);
        let figures = ledger.figures();
        assert_eq!((figures.acknowledged, figures.pending, figures.duplicates), (3, 1, 1));
    }

    #[test]
    fn dropped_filtered_and_unknown_records_are_counted_apart() {
        let ledger = Ledger::new(1);
        ledger.acknowledge(0, 0..4, |n| n % 2 == 0);
        ledger.arrived([Arrival::Filtered, Arrival::Unknown, Arrival::Kept { sender: 7, n: 0 }]);
        let figures = ledger.figures();
        assert_eq!((figures.acknowledged, figures.acknowledged_dropped), (2, 2));
        assert_eq!((figures.filtered_seen, figures.unknown_seen), (1, 2));
    }

    #[test]
    fn the_stall_clock_runs_only_while_up_with_work_pending() {
        let ledger = Ledger::new(1);
        ledger.acknowledge(0, 0..1, all);
        std::thread::sleep(Duration::from_millis(30));
        ledger.tick();
        assert_eq!(ledger.figures().longest_gap, Duration::ZERO, "the server is down");
        ledger.set_up(true);
        std::thread::sleep(Duration::from_millis(30));
        ledger.tick();
        assert!(ledger.figures().longest_gap >= Duration::from_millis(30));
        ledger.arrived([Arrival::Kept { sender: 0, n: 0 }]);
        std::thread::sleep(Duration::from_millis(60));
        ledger.tick();
        assert!(ledger.figures().longest_gap < Duration::from_millis(60), "nothing is pending");
    }
}
