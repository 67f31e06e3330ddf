//! Memory accounting across *all* of a component's linear memories.
//!
//! wasmtime's stock `StoreLimits` caps each memory on its own; a component that instantiates
//! several core modules (or one module with several memories) could then use a multiple of its
//! budget. [`MemoryLimiter`] keeps one running total for the whole store, fails any growth that
//! would take the total past the budget with a typed [`MemoryLimitExceeded`] error (which becomes
//! the guest's trap and is classified as `memory-limit`), and remembers the peak for usage reports.

use wasmtime::ResourceLimiter;

/// Raised inside the store when a growth would pass the memory budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory budget of {limit} bytes exceeded: growth to {requested} bytes refused")]
pub struct MemoryLimitExceeded {
    /// Budget in bytes.
    pub limit: u64,
    /// Total the refused growth asked for.
    pub requested: u64,
}

/// Most table elements one store may hold; tables are host memory too.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;
/// Most core instances, memories and tables one plugin may create.
const MAX_INSTANCES: usize = 64;
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 64;

/// The per-store limiter.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
    total: u64,
    peak: u64,
    exceeded: Option<MemoryLimitExceeded>,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes over all memories.
    pub fn new(limit: u64) -> MemoryLimiter {
        MemoryLimiter { limit, total: 0, peak: 0, exceeded: None }
    }

    /// Highest total reached, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// The refused growth, if any happened.
    pub fn exceeded(&self) -> Option<MemoryLimitExceeded> {
        self.exceeded
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        let requested = self.total.saturating_add(growth);
        if requested > self.limit {
            let exceeded = MemoryLimitExceeded { limit: self.limit, requested };
            self.exceeded = Some(exceeded);
            return Err(wasmtime::Error::new(exceeded));
        }
        self.total = requested;
        self.peak = self.peak.max(requested);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_growth_over_all_memories() {
        let mut limiter = MemoryLimiter::new(10 * 65536);
        assert!(limiter.memory_growing(0, 4 * 65536, None).expect("fits"));
        assert!(limiter.memory_growing(0, 4 * 65536, None).expect("fits"));
        let err = limiter.memory_growing(4 * 65536, 7 * 65536, None).expect_err("over budget");
        let exceeded = err.downcast_ref::<MemoryLimitExceeded>().copied();
        assert_eq!(exceeded, Some(MemoryLimitExceeded { limit: 10 * 65536, requested: 11 * 65536 }));
        assert_eq!(limiter.peak(), 8 * 65536);
    }
}
