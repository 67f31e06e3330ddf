//! Following other cluster nodes: what this node keeps in memory — loaded plugins, API tokens,
//! the queue's depth — follows the changes another node made (see `store::cluster`).
//!
//! A loaded plugin is reloaded from the store as it is now whenever another node activates,
//! deactivates, re-grants or deletes it, and every loaded plugin is checked again when the trust
//! store changes, so a key revoked on any node stops its plugins on every node. With the embedded
//! store there are no other nodes and this does nothing.
//!
//! Reloading a plugin may compile it (hundreds of milliseconds); that happens in a task of its
//! own, fed the names to reload, so tokens, credentials and unloads of revoked keys' plugins —
//! what a revocation needs — are followed at once, never behind other nodes' compilations.

use super::Services;
use crate::store::{Op, StoreEvent};
use std::collections::BTreeSet;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

impl Services {
    /// Applies other nodes' changes to this node's caches until `stop` turns true.
    pub async fn follow_cluster(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some(mut events) = self.store.events() else { return };
        let (refresh, names) = unbounded_channel();
        let refresher = tokio::spawn(self.clone().refresh_plugins(names));
        let _stop_refresher = AbortOnDrop(refresher);
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = stop.wait_for(|stop| *stop) => return,
            };
            match event {
                Ok(StoreEvent::Remote(change)) => self.follow_change(&change.ops, &refresh),
                Ok(StoreEvent::Adopted { runs, executions }) => {
                    if let Err(err) = self.flows.interrupt_adopted(&executions) {
                        tracing::error!(%err, "marking an adopted node's executions interrupted");
                    }
                    self.queue.adopt(&runs);
                }
                Ok(StoreEvent::HandedOver { runs }) => {
                    for (flow, count) in runs {
                        self.queue.release(&flow, count);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "fell behind other nodes' changes: reloading every plugin, token and queue depth"
                    );
                    self.resync_queue();
                    self.reload_everything(&refresh);
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Reloads the plugins named, one at a time, several names sent meanwhile at once.
    async fn refresh_plugins(self, mut names: UnboundedReceiver<String>) {
        while let Some(name) = names.recv().await {
            let mut pending = BTreeSet::from([name]);
            while let Ok(more) = names.try_recv() {
                pending.insert(more);
            }
            for name in pending {
                self.plugins.refresh(&name).await;
            }
        }
    }

    fn follow_change(&self, ops: &[Op], refresh: &UnboundedSender<String>) {
        let mut plugins = BTreeSet::new();
        let mut tokens = false;
        for op in ops {
            match op {
                Op::SetActive { name, .. }
                | Op::PutGrant { name, .. }
                | Op::RemoveVersion { name, .. }
                | Op::ForgetPlugin(name) => {
                    plugins.insert(name.clone());
                }
                // Unloaded at once, before any reload: a revocation must not wait for compilations.
                Op::PutTrust(trust) => plugins.extend(self.plugins.unload_untrusted(trust)),
                Op::PutTokens(_) => tokens = true,
                Op::PutConnection { .. } | Op::RemoveConnection(_) => self.credentials.reload(),
                _ => {}
            }
        }
        if tokens && let Err(err) = self.access.reload_tokens() {
            tracing::error!(%err, "reloading tokens another node changed");
        }
        for name in plugins {
            let _ = refresh.send(name);
        }
    }

    fn resync_queue(&self) {
        if let Err(err) = self.queue.resync() {
            tracing::error!(%err, "counting this node's queued runs again");
        }
    }

    fn reload_everything(&self, refresh: &UnboundedSender<String>) {
        self.credentials.reload();
        if let Err(err) = self.access.reload_tokens() {
            tracing::error!(%err, "reloading tokens");
        }
        let mut names: BTreeSet<String> = self.plugins.loaded_names().into_iter().collect();
        match self.store.all_versions() {
            Ok(versions) => names.extend(versions.into_iter().map(|v| v.name)),
            Err(err) => tracing::error!(%err, "listing plugins"),
        }
        for name in names {
            let _ = refresh.send(name);
        }
    }
}

/// Aborts the task when the follower returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
