//! Refusing replays: the highest counter applied from each publishing node, and which of the
//! counters just below it were applied too.
//!
//! Every envelope carries its publisher's counter (see `envelope.rs`). A node's messages reach
//! the stream in the order it sent them (one connection; its sends are serialised), so the
//! counter of the next one is above all before it; a window of [`WINDOW`] counters below the
//! highest still tolerates a reorder (as IPsec's anti-replay window does) without ever accepting
//! one counter twice. The window is written to the replica with the change it admitted
//! ([`ClusterMark::Seen`]), so a restarted or rebuilt replica refuses the same messages, and every
//! replica, applying the same log in the same order, decides the same.

use crate::ClusterMark;

/// Counters below the highest that are still accepted once.
pub const WINDOW: u64 = 64;

/// What was applied from one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeenWindow {
    /// The highest counter applied.
    pub highest: u64,
    /// Bit `i`: counter `highest - 1 - i` was applied.
    pub below: u64,
}

impl SeenWindow {
    /// Whether `counter` may be applied; notes it when so.
    pub fn admit(&mut self, counter: u64) -> bool {
        if counter == 0 {
            return false;
        }
        if counter > self.highest {
            let shift = counter - self.highest;
            let moved = if shift >= WINDOW { 0 } else { self.below << shift };
            // The old highest becomes bit `shift - 1`.
            let old = if self.highest > 0 && shift <= WINDOW { 1u64 << (shift - 1) } else { 0 };
            self.below = moved | old;
            self.highest = counter;
            return true;
        }
        let distance = self.highest - counter;
        if distance == 0 || distance > WINDOW {
            return false;
        }
        let bit = 1u64 << (distance - 1);
        if self.below & bit != 0 {
            return false;
        }
        self.below |= bit;
        true
    }

    /// The mark that writes this window for `node` to the replica.
    pub fn mark(self, node: &str) -> ClusterMark {
        ClusterMark::Seen { node: node.to_string(), highest: self.highest, below: self.below }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_is_admitted_once_in_any_order_within_the_window() {
        let mut window = SeenWindow::default();
        assert!(!window.admit(0));
        assert!(window.admit(1));
        assert!(!window.admit(1), "a replay");
        assert!(window.admit(3));
        assert!(window.admit(2), "a reorder within the window");
        assert!(!window.admit(2));
        assert!(!window.admit(3));
        assert!(!window.admit(1));
        assert!(window.admit(3 + WINDOW + 5));
        assert!(!window.admit(3), "below the window: refused");
        assert!(window.admit(3 + WINDOW + 4));
        assert!(!window.admit(3 + WINDOW + 4));
        for counter in 1..=1000 {
            let mut fresh = SeenWindow::default();
            assert!(fresh.admit(counter));
            assert!(!fresh.admit(counter));
        }
    }

    #[test]
    fn a_long_run_in_order_refuses_every_earlier_counter() {
        let mut window = SeenWindow::default();
        for counter in 1..=500 {
            assert!(window.admit(counter));
        }
        for counter in 1..=500 {
            assert!(!window.admit(counter), "{counter}");
        }
        assert_eq!(window.highest, 500);
        assert_eq!(window.below, u64::MAX, "the whole window was applied");
    }
}
