//! How many DNS lookups may be in flight: host-wide, and for each plugin its share of that.
//!
//! A lookup of a name whose server never answers waits for the resolver's timeout. Bounded only
//! host-wide, one plugin asking for such names from many invocations takes every place and every
//! other plugin's requests fail for as long as its lookups hang. So each plugin (by name, all its
//! versions together) may hold at most [`LookupLimits::per_plugin`] places of the
//! [`LookupLimits::host_wide`] ones, and the last `per_plugin` places go only to plugins that
//! hold none: several plugins hanging at once still leave a place for each of the next ones. A
//! lookup that finds no place fails at once rather than queueing behind lookups that hang.
//!
//! A place is held by a [`LookupPlace`] and given back when it is dropped. The resolver is
//! asynchronous (`host::resolver`), so dropping the lookup drops the place: an invocation that
//! ends (timeout, trap, the caller gone) frees its places with it.
//!
//! A refused lookup is the host's capacity, not the plugin's fault nor a denial: the invocation
//! that then fails is `overloaded`, which callers and flows retry (see `invoke.rs`).

use crate::sync::Locked;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Bounds on DNS lookups in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupLimits {
    /// On the whole host.
    pub host_wide: usize,
    /// For one plugin (all its versions and invocations together).
    pub per_plugin: usize,
}

impl Default for LookupLimits {
    fn default() -> LookupLimits {
        // A lookup takes a socket and a few hundred bytes while it waits: 64 is far from any
        // limit of the host, and 8 per plugin lets eight plugins hang all their lookups at once
        // before a ninth waits.
        LookupLimits { host_wide: 64, per_plugin: 8 }
    }
}

/// Why a lookup found no place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LookupsFull {
    /// The plugin holds its whole share.
    #[error("the plugin has {0} DNS lookups in flight, its whole share of the host")]
    PluginShare(usize),
    /// Every place on the host is held.
    #[error("the host has {0} DNS lookups in flight, all it allows")]
    HostWide(usize),
}

/// The places, counted host-wide and by plugin.
#[derive(Debug)]
pub(crate) struct LookupShares {
    limits: LookupLimits,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Only plugins holding a place: an entry goes when its count reaches zero.
    by_plugin: HashMap<String, usize>,
}

impl LookupShares {
    /// Shares under `limits`, made coherent: a plugin may hold at least one place and at most
    /// the host's.
    pub(crate) fn new(limits: LookupLimits) -> Arc<LookupShares> {
        let host_wide = limits.host_wide.max(1);
        let limits = LookupLimits { host_wide, per_plugin: limits.per_plugin.clamp(1, host_wide) };
        Arc::new(LookupShares { limits, counts: Mutex::default() })
    }

    /// A place for one lookup of `plugin`, or why there is none.
    pub(crate) fn take(self: &Arc<LookupShares>, plugin: &str) -> Result<LookupPlace, LookupsFull> {
        let mut counts = self.counts.locked();
        let held = counts.by_plugin.get(plugin).copied().unwrap_or(0);
        if held >= self.limits.per_plugin {
            return Err(LookupsFull::PluginShare(held));
        }
        // The reserve: a plugin already holding places leaves the last `per_plugin` to others.
        let reserve = if held > 0 { self.limits.per_plugin.min(self.limits.host_wide - 1) } else { 0 };
        if counts.total + reserve >= self.limits.host_wide {
            return Err(LookupsFull::HostWide(counts.total));
        }
        counts.total += 1;
        *counts.by_plugin.entry(plugin.to_owned()).or_default() += 1;
        Ok(LookupPlace { shares: self.clone(), plugin: plugin.to_owned() })
    }

    /// Lookups in flight on the host.
    pub(crate) fn in_flight(&self) -> usize {
        self.counts.locked().total
    }

    fn give_back(&self, plugin: &str) {
        let mut counts = self.counts.locked();
        counts.total = counts.total.saturating_sub(1);
        if let Some(held) = counts.by_plugin.get_mut(plugin) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.by_plugin.remove(plugin);
            }
        }
    }
}

/// One lookup's place, given back on drop.
#[derive(Debug)]
pub(crate) struct LookupPlace {
    shares: Arc<LookupShares>,
    plugin: String,
}

impl Drop for LookupPlace {
    fn drop(&mut self) {
        self.shares.give_back(&self.plugin);
    }
}

/// One plugin's access to the shares (by its name): what an invocation's outbound policy holds.
#[derive(Debug, Clone)]
pub(crate) struct PluginLookups {
    pub(crate) shares: Arc<LookupShares>,
    pub(crate) plugin: Arc<str>,
}

impl PluginLookups {
    pub(crate) fn take(&self) -> Result<LookupPlace, LookupsFull> {
        self.shares.take(&self.plugin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_holds_at_most_its_share_and_the_host_at_most_its_bound() {
        let shares = LookupShares::new(LookupLimits { host_wide: 5, per_plugin: 2 });
        let (hog, other, third, fourth) = ("hog", "other", "third", "fourth");
        let held: Vec<_> = (0..2).map(|_| shares.take(hog).expect("within the share")).collect();
        assert_eq!(shares.take(hog).map(drop), Err(LookupsFull::PluginShare(2)));
        let other_place = shares.take(other).expect("another plugin still has a place");
        // 3 of 5 taken: the last 2 are kept for plugins holding none.
        assert_eq!(shares.take(other).map(drop), Err(LookupsFull::HostWide(3)));
        let third_place = shares.take(third).expect("a plugin holding none takes from the reserve");
        let fourth_place = shares.take(fourth).expect("and the next one too");
        assert_eq!(shares.take("fifth").map(drop), Err(LookupsFull::HostWide(5)));
        drop((held, third_place, fourth_place));
        assert_eq!(shares.in_flight(), 1);
        drop(other_place);
        assert_eq!(shares.in_flight(), 0);
        let odd = LookupShares::new(LookupLimits { host_wide: 0, per_plugin: 0 });
        assert!(odd.take(hog).is_ok(), "limits are made coherent: one place at least");
        let counts = shares.counts.locked();
        assert!(counts.by_plugin.is_empty(), "no entry outlives its places: {counts:?}");
    }
}
