//! Invocation: one fresh Store per call, run under the effective budget, failures classified.
//!
//! Every call builds a new Store (a trapped Store is never reused), sets its fuel and memory limiter from the plugin's effective budget, instantiates from the plugin's
//! `InstancePre`, calls the export, and turns whatever happened into an [`Invocation`]: the output
//! or a typed [`Error`], plus usage and the captured logs, in every case. The invocation's
//! key-value writes commit only when the outcome is a success within the output budget (see the
//! state guarantee in [`crate::host::keyvalue`]).

use crate::error::{Error, Result};
use crate::failure::{DeadlineExceeded, classify};
use crate::host::logs::Logs;
use crate::manifest::Kind;
use crate::plugin::{Plugin, Pre};
use crate::record::{Batch, DelayedRetry, Page, PluginError, WriteReport, batch_size};
use crate::state::InvocationState;
use std::time::{Duration, Instant};
use wasmtime::{CallHook, Store};

/// Resources one invocation used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Fuel units consumed.
    pub fuel_consumed: u64,
    /// Wall-clock time, instantiation included.
    pub wall_time: Duration,
    /// Highest total linear memory, over all memories, in bytes.
    pub peak_memory_bytes: u64,
}

/// The result of one invocation: the outcome, with usage and logs either way.
#[derive(Debug)]
pub struct Invocation<T> {
    /// The output, or why there is none.
    pub outcome: Result<T>,
    /// What the invocation used.
    pub usage: Usage,
    /// What the plugin (and the host, about it) logged.
    pub logs: Logs,
}

impl<T> Invocation<T> {
    /// The outcome alone.
    ///
    /// # Errors
    /// The invocation's error.
    pub fn into_result(self) -> Result<T> {
        self.outcome
    }

    fn rejected(error: Error) -> Invocation<T> {
        Invocation { outcome: Err(error), usage: Usage::default(), logs: Logs::default() }
    }
}

impl Plugin {
    /// Runs a transformer on `input` (a batch, or a borrowed one: the records are copied into the
    /// guest either way, so a caller that may retry keeps its batch without cloning it).
    pub async fn transform(&self, input: impl std::borrow::Borrow<Batch> + Send + Sync) -> Invocation<Batch> {
        let input = input.borrow();
        let call = async |store: &mut Store<InvocationState>| match &self.inner.pre {
            Pre::Transformer(pre) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin.plugboard_plugin_transform().call_transform(&mut *store, input).await
            }
            Pre::Earlier(pre) => pre.transform(store, input).await,
            _ => unreachable!("checked by entry"),
        };
        if let Some(rejected) = self.entry(Kind::Transformer, "transform") {
            return rejected;
        }
        self.invoke(Size::of(input), |out: &Batch| Size::of(out), call).await
    }

    /// Instantiates the plugin in a fresh store under its budget, as every invocation does, and
    /// drops it without calling it: what an invocation costs before the guest runs (the languages
    /// benchmark compares it across languages).
    ///
    /// # Errors
    /// What instantiation fails with (the pool exhausted, a start function trapping).
    pub async fn instantiate_only(&self) -> Result<()> {
        let mut store = self.new_store()?;
        let instantiated = match &self.inner.pre {
            Pre::Transformer(pre) => pre.instantiate_async(&mut store).await.map(drop),
            Pre::Source(pre) => pre.instantiate_async(&mut store).await.map(drop),
            Pre::Sink(pre) => pre.instantiate_async(&mut store).await.map(drop),
            Pre::Earlier(pre) => pre.instantiate(&mut store).await,
        };
        instantiated.map_err(Error::internal)
    }

    /// Reads one page from a source, starting at `cursor`.
    pub async fn read(&self, cursor: Option<String>, max_records: u32) -> Invocation<Page> {
        if let Some(rejected) = self.entry(Kind::Source, "read") {
            return rejected;
        }
        let input_size = Size { bytes: cursor.as_ref().map_or(0, |c| c.len() as u64), records: 0 };
        let page_size = |page: &Page| Size {
            bytes: batch_size(&page.records) + page.next_cursor.as_ref().map_or(0, |c| c.len() as u64),
            records: page.records.len() as u64,
        };
        self.invoke(input_size, page_size, async |store| match &self.inner.pre {
            Pre::Source(pre) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                let result =
                    plugin.plugboard_plugin_reader().call_read(&mut *store, cursor.as_deref(), max_records).await?;
                Ok(result.map(|page| Page { records: page.records, next_cursor: page.next_cursor }))
            }
            Pre::Earlier(pre) => pre.read(store, cursor.as_deref(), max_records).await,
            _ => unreachable!("checked by entry"),
        })
        .await
    }

    /// Writes `input` to a sink.
    pub async fn write(&self, input: impl std::borrow::Borrow<Batch> + Send + Sync) -> Invocation<WriteReport> {
        if let Some(rejected) = self.entry(Kind::Sink, "write") {
            return rejected;
        }
        let input = input.borrow();
        self.invoke(
            Size::of(input),
            |_| Size::default(),
            async |store| match &self.inner.pre {
                Pre::Sink(pre) => {
                    let plugin = pre.instantiate_async(&mut *store).await?;
                    let result = plugin.plugboard_plugin_writer().call_write(&mut *store, input).await?;
                    Ok(result.map(|report| WriteReport { accepted: report.accepted, failed: report.failed }))
                }
                Pre::Earlier(pre) => pre.write(store, input).await,
                _ => unreachable!("checked by entry"),
            },
        )
        .await
    }

    /// `None` when the plugin is a `kind` and has the `operation` entry point; otherwise the
    /// rejected invocation.
    fn entry<T>(&self, kind: Kind, operation: &str) -> Option<Invocation<T>> {
        let is = match &self.inner.pre {
            Pre::Transformer(_) => Kind::Transformer,
            Pre::Source(_) => Kind::Source,
            Pre::Sink(_) => Kind::Sink,
            Pre::Earlier(pre) => pre.kind(),
        };
        (is != kind).then(|| {
            Invocation::rejected(Error::invalid_component(format!(
                "`{}` is a {}; it has no `{operation}` entry point",
                self.inner.manifest.name,
                self.inner.manifest.kind.as_str()
            )))
        })
    }

    async fn invoke<T>(
        &self,
        input_size: Size,
        output_size: impl FnOnce(&T) -> Size,
        call: impl AsyncFnOnce(&mut Store<InvocationState>) -> wasmtime::Result<std::result::Result<T, PluginError>>,
    ) -> Invocation<T> {
        let (budget, sources) = (self.inner.effective.budget, self.inner.effective.budget_sources);
        if input_size.bytes > budget.max_input_bytes {
            return Invocation::rejected(Error::InputTooLarge {
                size: input_size.bytes,
                limit: budget.max_input_bytes,
                set_by: sources.max_input_bytes,
            });
        }
        if input_size.records > budget.max_records {
            let (count, limit, set_by) = (input_size.records, budget.max_records, sources.max_records);
            return Invocation::rejected(Error::TooManyRecords { count, limit, output: false, set_by });
        }
        let started = Instant::now();
        let mut store = match self.new_store() {
            Ok(store) => store,
            Err(err) => return Invocation::rejected(err),
        };
        // The deadline: guest code yields every FUEL_YIELD_INTERVAL fuel units and a guest waiting
        // in a host call (an HTTP exchange, a clock poll) is pending, so the timeout reaches both;
        // dropping the call cancels the guest, and the Store is discarded. A guest looping over
        // cheap-in-fuel but slow host calls is stopped by the call hook set in `new_store`.
        let guarded = tokio::time::timeout(budget.timeout, call(&mut store)).await;
        let wall_time = started.elapsed();
        let fuel_left = store.get_fuel().unwrap_or(0);
        let state = store.data_mut();
        state.capture_stdio();
        let usage = Usage {
            fuel_consumed: budget.fuel.saturating_sub(fuel_left),
            wall_time,
            peak_memory_bytes: state.limiter.peak(),
        };
        let mut logs = state.logs.take();
        let effective = &self.inner.effective;
        let secrets = crate::redact::Secrets::new(&self.inner.manifest.capabilities.secret_keys, &effective.config)
            .with(state.outbound.credentials_sent());
        // Before anything reads them (a trap's message is cut from stderr), the logs are blanked.
        secrets.blank_logs(&mut logs);
        let outcome = match guarded {
            Err(_elapsed) => Err(Error::Timeout { deadline: budget.timeout, set_by: sources.timeout }),
            Ok(Err(err)) => Err(after_denial(
                classify(&err, state.limiter.exceeded(), &budget, &sources, &logs.entries),
                state.logs.first_denial(),
                &secrets,
            )),
            Ok(Ok(Err(plugin_error))) => {
                Err(after_denial(Error::Guest(plugin_error), state.logs.first_denial(), &secrets))
            }
            Ok(Ok(Ok(output))) => {
                let size = output_size(&output);
                if size.bytes > budget.max_output_bytes {
                    let (limit, set_by) = (budget.max_output_bytes, sources.max_output_bytes);
                    Err(Error::OutputTooLarge { size: size.bytes, limit, set_by })
                } else if size.records > budget.max_records {
                    let (limit, set_by) = (budget.max_records, sources.max_records);
                    Err(Error::TooManyRecords { count: size.records, limit, output: true, set_by })
                } else {
                    // The one place that knows the invocation succeeded: only now do its key-value
                    // writes commit. Every other arm drops them with the Store.
                    state.commit_key_value().map(|()| output)
                }
            }
        };
        let outcome = outcome.map_err(|err| with_remote_delay(err, state.outbound.remote_delay()));
        let outcome = outcome.map_err(|err| after_lookups_full(err, state.outbound.lookups_full()));
        // What the commit logged (a refused commit warns) comes after the guest's lines.
        let mut later = state.logs.take();
        secrets.blank_logs(&mut later);
        logs.append(later);
        let outcome = outcome.map_err(|err| secrets.blank_error(err));
        if let Err(err) = &outcome {
            tracing::debug!(plugin = %self.inner.manifest.name, code = %err.code(), %err, "invocation failed");
        }
        Invocation { outcome, usage, logs }
    }

    fn new_store(&self) -> Result<Store<InvocationState>> {
        let shared = &self.inner.shared;
        let budget = self.inner.effective.budget;
        let mut state = InvocationState::new(self.inner.effective.clone(), shared);
        if let Some(store) = &self.key_value {
            state.key_value = store.clone();
        }
        let mut store = Store::new(&shared.engine, state);
        store.set_max_component_handles(crate::state::MAX_COMPONENT_HANDLES);
        store.limiter(|state| &mut state.limiter);
        store.set_fuel(budget.fuel).map_err(Error::internal)?;
        store.set_hostcall_fuel(usize::try_from(crate::budget::copy_budget(&budget)).unwrap_or(usize::MAX));
        store.fuel_async_yield_interval(Some(crate::engine::FUEL_YIELD_INTERVAL)).map_err(Error::internal)?;
        // Host calls cost the guest little fuel, so a loop of slow ones could run long between
        // yields: past the deadline, every call into the host traps instead.
        let deadline = Instant::now() + budget.timeout;
        store.call_hook(move |_, hook| match hook {
            CallHook::CallingHost if Instant::now() >= deadline => Err(DeadlineExceeded.into()),
            _ => Ok(()),
        });
        Ok(store)
    }
}

/// What a batch (or page) weighs against a budget.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    /// Bytes, with the per-record overhead ([`crate::Record::byte_size`]).
    bytes: u64,
    /// Records.
    records: u64,
}

impl Size {
    fn of(batch: &[crate::Record]) -> Size {
        Size { bytes: batch_size(batch), records: batch.len() as u64 }
    }
}

/// A retryable failure of an invocation whose remote asked for a delay (`429`/`503` with
/// `Retry-After`, see [`crate::host::retry_after`]) waits at least that long: a plain
/// `retryable` becomes `retry-after`, and a shorter `retry-after` is lengthened.
fn with_remote_delay(err: Error, remote: Option<Duration>) -> Error {
    let Some(remote) = remote else { return err };
    let remote_ms = u64::try_from(remote.as_millis()).unwrap_or(u64::MAX);
    match err {
        Error::Guest(PluginError::Retryable(message)) => {
            Error::Guest(PluginError::RetryAfter(DelayedRetry { message, delay_ms: remote_ms }))
        }
        Error::Guest(PluginError::RetryAfter(retry)) => Error::Guest(PluginError::RetryAfter(DelayedRetry {
            delay_ms: retry.delay_ms.max(remote_ms),
            message: retry.message,
        })),
        other => other,
    }
}

/// A failure after the host found no place for one of the invocation's DNS lookups
/// ([`crate::host::lookup_shares`]) is the host's capacity: `overloaded`, which callers and flows
/// retry, when the plugin reported the `connection-limit-reached` it saw as `retryable` or
/// `internal`, or did not handle it (a trap). What else the plugin judged stands: a retry with the
/// delay a remote asked for (`retry-after`, which [`with_remote_delay`] made of a plain
/// `retryable` first), denied (a remote's 401), its input or config; so do budget overruns and a
/// capability denial in the same invocation (a retry would meet the denial again).
fn after_lookups_full(err: Error, full: Option<crate::host::lookup_shares::LookupsFull>) -> Error {
    let Some(full) = full else { return err };
    match err {
        Error::Guest(PluginError::Retryable(_) | PluginError::Internal(_)) | Error::GuestTrap { .. } => {
            Error::Overloaded(format!("an outbound request found no place for its DNS lookup: {full}"))
        }
        other => other,
    }
}

/// A failure after the host refused the invocation a capability is blamed on the refusal, with
/// the plugin's own account beside it: that account rarely names what was refused (an SDK that
/// does not recognise the refusal reports `internal`; an import error a Python plugin leaves
/// unhandled traps). `retryable` stands, so a plugin that tolerated one refusal and then met a
/// transient failure of a granted system is still retried; so do the plugin's judgement of its
/// input or config and budget overruns.
fn after_denial(err: Error, denial: Option<String>, secrets: &crate::redact::Secrets) -> Error {
    let Some(denial) = denial else { return err };
    // Blanked before the plugin's account is cut: a secret across the cut would leave its start.
    let (err, denial) = (secrets.blank_error(err), secrets.blank(&denial));
    let reported = match &err {
        Error::Guest(PluginError::Denied(message) | PluginError::Internal(message))
        | Error::GuestTrap { message, .. } => message,
        _ => return err,
    };
    let reported = crate::host::logs::escape_and_cap(reported, crate::host::logs::MAX_PLUGIN_MESSAGE_CHARS);
    Error::Denied { denial, reported }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_across_the_cut_of_a_reported_message_is_blanked_not_cut() {
        let config = [("token".to_string(), "tok_0123456789abcdef".to_string())].into();
        let secrets = crate::redact::Secrets::new(&["token".to_string()], &config);
        // The secret starts 10 characters before the 1 KiB cap of the plugin's account.
        let message = format!("{}tok_0123456789abcdef and more", "x".repeat(1014));
        let err = after_denial(
            Error::Guest(PluginError::Internal(message)),
            Some("request to https://api.example denied".into()),
            &secrets,
        );
        let Error::Denied { reported, .. } = err else { unreachable!("a denial") };
        assert!(!reported.contains("tok_0123"), "{reported}");
    }
}
