//! Hostile guests: each runs into one budget and gets that budget's typed error, the host stays
//! up, and the next invocation of a good plugin on the same runtime succeeds.

use crate::support::common::{config, records, runtime, runtime_with, values};
use plugboard_runtime::{
    BudgetLimits, Error, ErrorCode, Grant, KeyValueQuota, LimitSource, MAX_HOST_RESOURCES, Plugin, PluginError, Record,
    Runtime, TrapKind,
};
use plugboard_tests::*;
use serde_json::json;

fn hostile(runtime: &Runtime, mode: &str, budget: BudgetLimits) -> Plugin {
    let mut grant = config(&[("mode", mode)]);
    grant.budget = budget;
    GUEST_HOSTILE.load(runtime, &grant)
}

/// A good plugin still works on `runtime`.
async fn assert_runtime_healthy(runtime: &Runtime) {
    let mapper = JSON_MAPPER.load(runtime, &config(&[("mapping", r#"{"v": "$.a"}"#)]));
    let out = mapper.transform(records(&[json!({"a": 1})])).await.into_result().expect("healthy runtime");
    assert_eq!(values(&out), vec![json!({"v": 1})]);
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline() {
    let runtime = runtime_with(|c| c.caps.fuel = u64::MAX / 2);
    let plugin = hostile(&runtime, "loop", BudgetLimits { timeout_ms: Some(200), ..Default::default() });
    let invocation = plugin.transform(records(&[json!(1)])).await;
    match invocation.outcome {
        Err(Error::Timeout { deadline, set_by: LimitSource::Grant }) => assert_eq!(deadline.as_millis(), 200),
        ref other => panic!("expected timeout, got {other:?}"),
    }
    assert!(invocation.usage.fuel_consumed > 0);
    assert_runtime_healthy(&runtime).await;
}

#[tokio::test]
async fn a_loop_of_slow_host_calls_stops_at_the_first_call_past_the_deadline() {
    // Each iteration burns little fuel but makes the host copy 4 MiB, so the guest would run long
    // between fuel yields; the deadline stops it at its next host call instead.
    let runtime = runtime_with(|c| c.caps.fuel = u64::MAX / 2);
    let plugin = hostile(&runtime, "host-spin", BudgetLimits { timeout_ms: Some(200), ..Default::default() });
    let invocation = plugin.transform(records(&[json!(1)])).await;
    match invocation.outcome {
        Err(Error::Timeout { deadline, set_by: LimitSource::Grant }) => assert_eq!(deadline.as_millis(), 200),
        ref other => panic!("expected timeout, got {other:?}"),
    }
    // Each iteration costs a few dozen fuel, so the next fuel yield would come only after tens of
    // thousands of 4 MiB calls (seconds); the hook stops it after a few hundred.
    let calls = invocation.logs.entries.len() as u64 + invocation.logs.dropped;
    assert!(calls < 5_000, "stopped at the first host call past the deadline, not at a fuel yield: {calls} calls");
    assert_runtime_healthy(&runtime).await;
}

#[tokio::test]
async fn infinite_loop_runs_out_of_fuel() {
    let runtime = runtime();
    let plugin = hostile(&runtime, "loop", BudgetLimits { fuel: Some(20_000_000), ..Default::default() });
    let invocation = plugin.transform(records(&[json!(1)])).await;
    assert!(
        matches!(invocation.outcome, Err(Error::OutOfFuel { fuel: 20_000_000, set_by: LimitSource::Grant })),
        "{:?}",
        invocation.outcome
    );
    // The message says which party set the limit and how to raise it.
    let message = invocation.outcome.as_ref().err().map(ToString::to_string).unwrap_or_default();
    assert!(message.contains("the operator's grant") && message.contains("plugboard grant"), "{message}");
    assert_eq!(invocation.usage.fuel_consumed, 20_000_000);
    assert_runtime_healthy(&runtime).await;
}

#[tokio::test]
async fn unbounded_growth_hits_the_memory_limit() {
    let runtime = runtime();
    let limit = 32 << 20;
    let plugin = hostile(&runtime, "grow", BudgetLimits { memory_bytes: Some(limit), ..Default::default() });
    let invocation = plugin.transform(records(&[json!(1)])).await;
    match &invocation.outcome {
        Err(err @ Error::MemoryLimit { limit: l, requested, set_by: LimitSource::Grant }) => {
            assert_eq!(*l, limit);
            assert!(*requested > limit);
            assert_eq!(err.code(), ErrorCode::MemoryLimit);
        }
        other => panic!("expected memory-limit, got {other:?}"),
    }
    assert!(invocation.usage.peak_memory_bytes <= limit);
    assert!(invocation.usage.peak_memory_bytes > limit / 2);
    assert_runtime_healthy(&runtime).await;
}

#[tokio::test]
async fn deep_recursion_is_a_stack_overflow_trap() {
    let runtime = runtime();
    let plugin = hostile(&runtime, "recurse", BudgetLimits::default());
    match plugin.transform(records(&[json!(1)])).await.outcome {
        Err(err @ Error::GuestTrap { kind: TrapKind::StackOverflow, .. }) => {
            assert_eq!(err.code(), ErrorCode::GuestTrap)
        }
        other => panic!("expected a stack-overflow trap, got {other:?}"),
    }
    assert_runtime_healthy(&runtime).await;
}

#[tokio::test]
async fn huge_output_is_output_too_large() {
    let runtime = runtime();
    let plugin = hostile(&runtime, "output", BudgetLimits::default());
    // 100 MiB is beyond the copy budget (twice the 16 MiB output budget and 4 MiB): the host stops
    // copying there instead of taking all of it and measuring afterwards.
    match plugin.transform(records(&[json!(1)])).await.outcome {
        Err(err @ Error::CopyBudget { limit }) => {
            assert_eq!(limit, plugboard_runtime::budget::copy_budget(&runtime.config().caps));
            assert_eq!(err.code(), ErrorCode::OutputTooLarge);
        }
        other => panic!("expected output-too-large, got {other:?}"),
    }
    // Within the copy budget (a host whose input cap is 64 MiB) but over the output budget:
    // measured after the copy.
    let roomy = runtime_with(|config| config.caps.max_input_bytes = 64 << 20);
    let plugin = hostile(&roomy, "output", BudgetLimits::default());
    match plugin.transform(records(&[json!(1)])).await.outcome {
        Err(Error::OutputTooLarge { size, limit, set_by: LimitSource::Host }) => {
            assert_eq!(size, (100 << 20) + plugboard_runtime::record::RECORD_OVERHEAD_BYTES as u64);
            assert_eq!(limit, roomy.config().caps.max_output_bytes);
        }
        other => panic!("expected output-too-large, got {other:?}"),
    }
    assert_runtime_healthy(&runtime).await;
}

#[tokio::test]
async fn oversized_input_is_refused_before_the_guest_runs() {
    let runtime = runtime();
    let plugin = hostile(&runtime, "echo", BudgetLimits { max_input_bytes: Some(1000), ..Default::default() });
    // 2002 bytes of JSON and the 64-byte overhead of a record.
    let big = records(&[json!("x".repeat(2000))]);
    let invocation = plugin.transform(big).await;
    assert!(
        matches!(invocation.outcome, Err(Error::InputTooLarge { size: 2066, limit: 1000, set_by: LimitSource::Grant })),
        "{:?}",
        invocation.outcome
    );
    assert_eq!(invocation.usage.fuel_consumed, 0);
}

#[tokio::test]
async fn empty_records_are_not_free_and_batches_are_capped() {
    let runtime = runtime();
    // A thousand empty records weigh a thousand times the per-record overhead.
    let plugin = hostile(&runtime, "echo", BudgetLimits { max_input_bytes: Some(10_000), ..Default::default() });
    let empty: Vec<_> =
        (0..1000).map(|_| plugboard_runtime::Record { key: None, value: Vec::new(), headers: Vec::new() }).collect();
    let invocation = plugin.transform(&empty).await;
    assert!(
        matches!(
            invocation.outcome,
            Err(Error::InputTooLarge { size: 64_000, limit: 10_000, set_by: LimitSource::Grant })
        ),
        "{:?}",
        invocation.outcome
    );
    // And no batch may hold more records than the cap, in or out.
    let plugin = hostile(&runtime, "echo", BudgetLimits { max_records: Some(999), ..Default::default() });
    let outcome = plugin.transform(&empty).await.outcome;
    assert!(
        matches!(
            outcome,
            Err(Error::TooManyRecords { count: 1000, limit: 999, output: false, set_by: LimitSource::Grant })
        ),
        "{outcome:?}"
    );
    assert_eq!(outcome.err().map(|err| err.code()), Some(ErrorCode::InputTooLarge));
}

#[tokio::test]
async fn a_panic_is_an_unreachable_trap() {
    let runtime = runtime();
    let plugin = hostile(&runtime, "panic", BudgetLimits::default());
    let invocation = plugin.transform(records(&[json!(1)])).await;
    assert!(
        matches!(invocation.outcome, Err(Error::GuestTrap { kind: TrapKind::Unreachable, .. })),
        "{:?}",
        invocation.outcome
    );
    // The panic message went to stderr, which the host captured into the logs.
    assert!(
        invocation.logs.entries.iter().any(|e| e.context == "stderr" && e.message.contains("panics on purpose")),
        "{:?}",
        invocation.logs
    );
    // The error carries it with its location, and a short backtrace of the guest's own functions,
    // demangled and without the panic machinery.
    match &invocation.outcome {
        Err(err @ Error::GuestTrap { message, backtrace, .. }) => {
            assert!(message.starts_with("panicked at hostile/src/lib.rs:"), "{message}");
            assert!(message.ends_with("the hostile guest panics on purpose"), "{message}");
            assert!(err.to_string().starts_with("plugin trapped (unreachable): panicked at"), "{err}");
            assert!(
                backtrace
                    .first()
                    .is_some_and(|frame| frame == "<hostile::Hostile as plugboard_plugin_sdk::Transformer>::transform"),
                "{backtrace:?}"
            );
            assert!(
                backtrace.iter().all(|frame| !frame.starts_with("std::") && !frame.contains("::h")),
                "{backtrace:?}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_runtime_healthy(&runtime).await;
}

#[tokio::test]
async fn logs_are_captured_and_bounded() {
    let runtime = runtime();
    let spam = hostile(&runtime, "log-spam", BudgetLimits::default());
    let invocation = spam.transform(records(&[json!(1)])).await;
    assert!(invocation.outcome.is_ok());
    assert_eq!(invocation.logs.entries.len(), plugboard_runtime::host::logs::MAX_LOG_ENTRIES);
    assert_eq!(invocation.logs.dropped, 10_000 - plugboard_runtime::host::logs::MAX_LOG_ENTRIES as u64);
    assert_eq!(invocation.logs.entries[0].message, "line 0");

    let stdio = hostile(&runtime, "stdout", BudgetLimits::default());
    let logs = stdio.transform(records(&[])).await.logs;
    let lines: Vec<_> = logs.entries.iter().map(|e| (e.context.as_str(), e.message.as_str())).collect();
    assert_eq!(lines, vec![("stdout", "hello from stdout"), ("stderr", "hello from stderr")]);
}

#[tokio::test]
async fn ungranted_config_is_denied_inside_the_call() {
    let runtime = runtime();
    let plugin = hostile(&runtime, "ungranted-config", BudgetLimits::default());
    let invocation = plugin.transform(records(&[json!(1)])).await;
    // The manifest does not request the key: the error says so, and where to add it.
    match &invocation.outcome {
        Err(err @ Error::Denied { denial, .. }) => {
            assert_eq!(err.code(), ErrorCode::CapabilityDenied);
            assert!(denial.contains("`not-granted` is not among the manifest's `config_keys`"), "{denial}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(invocation.logs.entries.iter().any(|e| e.context == "host" && e.message.contains("`not-granted`")));

    // Requested but unset reads as none; granted reads its value.
    let mut grant = config(&[("mode", "echo")]);
    grant.config.insert("undeclared".into(), "ignored".into());
    let echo = GUEST_HOSTILE.load(&runtime, &grant);
    assert_eq!(echo.effective().config.keys().collect::<Vec<_>>(), vec!["mode"]);
    assert!(echo.transform(records(&[json!(1)])).await.outcome.is_ok());
}

/// A transformer component with three memories (two in one core module, one in another) that
/// each grow by `pages` 64 KiB pages when called, then return an empty batch.
fn multi_memory_component(pages: u32) -> Vec<u8> {
    wat::parse_str(multi_memory_wat(pages)).expect("valid component text")
}

/// The `plugboard:plugin/types` import and the aliases a hand-written transformer component needs.
const TRANSFORMER_IMPORTS: &str = r#"  (type $types-ty (instance
    (type (;0;) (list u8))
    (type (;1;) (record (field "name" string) (field "value" 0)))
    (export (;2;) "header" (type (eq 1)))
    (type (;3;) (option 0))
    (type (;4;) (list 2))
    (type (;5;) (record (field "key" 3) (field "value" 0) (field "headers" 4)))
    (export (;6;) "record" (type (eq 5)))
    (type (;7;) (list 6))
    (export (;8;) "batch" (type (eq 7)))
    (type (;9;) (list string))
    (type (;10;) (record (field "index" u32) (field "reasons" 9)))
    (export (;11;) "record-issue" (type (eq 10)))
    (type (;12;) (list 11))
    (type (;13;) (variant (case "invalid-input" 12) (case "invalid-config" string) (case "retryable" string) (case "denied" string) (case "internal" string)))
    (export (;14;) "plugin-error" (type (eq 13)))
  ))
  (import "plugboard:plugin/types@0.1.0" (instance $types (type $types-ty)))
  (alias export $types "batch" (type $batch))
  (alias export $types "plugin-error" (type $plugin-error))"#;

/// A bump allocator over the global `$bump`, as the canonical ABI's `realloc`.
const BUMP_REALLOC: &str = r#"(func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $ptr i32)
      (local.set $ptr
        (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                 (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $ptr) (local.get 3)))
      (local.get $ptr))"#;

/// The text of [`multi_memory_component`].
pub fn multi_memory_wat(pages: u32) -> String {
    format!(
        r#"(component
{TRANSFORMER_IMPORTS}  (core module $other
    (memory (export "memory") 1)
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
  (core instance $other (instantiate $other))
  (core module $main
    (import "other" "grow" (func $grow_other (param i32) (result i32)))
    (memory $first (export "memory") 1)
    (memory $second 1)
    (global $bump (mut i32) (i32.const 1024))
    {BUMP_REALLOC}
    (func (export "transform") (param i32 i32) (result i32)
      (drop (memory.grow $first (i32.const {pages})))
      (drop (memory.grow $second (i32.const {pages})))
      (drop (call $grow_other (i32.const {pages})))
      (i32.const 16)))
  (core instance $main (instantiate $main (with "other" (instance $other))))
  (type $transform-ty (func (param "input" $batch) (result (result $batch (error $plugin-error)))))
  (func $transform (type $transform-ty)
    (canon lift (core func $main "transform") (memory (core memory $main "memory")) (realloc (core func $main "realloc"))))
  (instance $exports (export "transform" (func $transform)))
  (export "plugboard:plugin/transform@0.1.0" (instance $exports)))"#
    )
}

/// A transformer component that returns 64 records (or, with `as_error`, an `invalid-input` error
/// with 64 reasons) all pointing at one 64 MiB buffer: legal in the canonical ABI, 4 GiB to copy.
fn aliased_output_component(as_error: bool) -> Vec<u8> {
    let (entries, result) = if as_error {
        // 64 reasons (string: ptr, len) at 1024; one record-issue at 512; err(invalid-input([issue])).
        (
            "(i32.store (local.get $at) (i32.const 65536)) (i32.store offset=4 (local.get $at) (i32.const 67108864))",
            "(i32.store (i32.const 512) (i32.const 0)) (i32.store (i32.const 516) (i32.const 1024)) \
             (i32.store (i32.const 520) (i32.const 64)) (i32.store8 (i32.const 16) (i32.const 1)) \
             (i32.store8 (i32.const 20) (i32.const 0)) (i32.store (i32.const 24) (i32.const 512)) \
             (i32.store (i32.const 28) (i32.const 1))",
        )
    } else {
        // 64 records (key: none; value: ptr, len; headers: empty) of 28 bytes at 1024; ok(records).
        (
            "(i32.store offset=12 (local.get $at) (i32.const 65536)) (i32.store offset=16 (local.get $at) (i32.const 67108864))",
            "(i32.store8 (i32.const 16) (i32.const 0)) (i32.store (i32.const 20) (i32.const 1024)) \
             (i32.store (i32.const 24) (i32.const 64))",
        )
    };
    let stride = if as_error { 8 } else { 28 };
    let text = format!(
        r#"(component
{TRANSFORMER_IMPORTS}
  (core module $main
    (memory (export "memory") 1026)
    (global $bump (mut i32) (i32.const 67174400))
    {BUMP_REALLOC}
    (func (export "transform") (param i32 i32) (result i32)
      (local $i i32) (local $at i32)
      (memory.fill (i32.const 65536) (i32.const 120) (i32.const 67108864))
      (block $done (loop $next
        (br_if $done (i32.eq (local.get $i) (i32.const 64)))
        (local.set $at (i32.add (i32.const 1024) (i32.mul (local.get $i) (i32.const {stride}))))
        {entries}
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
      {result}
      (i32.const 16)))
  (core instance $main (instantiate $main))
  (type $transform-ty (func (param "input" $batch) (result (result $batch (error $plugin-error)))))
  (func $transform (type $transform-ty)
    (canon lift (core func $main "transform") (memory (core memory $main "memory")) (realloc (core func $main "realloc"))))
  (instance $exports (export "transform" (func $transform)))
  (export "plugboard:plugin/transform@0.1.0" (instance $exports)))"#
    );
    wat::parse_str(text).expect("valid component text")
}

#[tokio::test]
async fn aliased_output_is_stopped_by_the_copy_budget() {
    let runtime = runtime();
    let manifest =
        plugboard_runtime::Manifest::from_toml("name = \"aliased\"\nversion = \"0.1.0\"\nkind = \"transformer\"")
            .expect("manifest");
    let expected = plugboard_runtime::budget::copy_budget(&runtime.config().caps);
    for as_error in [false, true] {
        let plugin =
            runtime.load(&aliased_output_component(as_error), manifest.clone(), &Grant::default()).expect("load");
        let invocation = plugin.transform(records(&[json!(1)])).await;
        match invocation.outcome {
            Err(err @ Error::CopyBudget { limit }) => {
                assert_eq!(limit, expected);
                assert_eq!(err.code(), ErrorCode::OutputTooLarge);
            }
            other => panic!("expected the copy budget (as_error: {as_error}), got {other:?}"),
        }
    }
    assert_runtime_healthy(&runtime).await;
}

#[tokio::test]
async fn several_memories_together_hit_the_memory_limit() {
    let runtime = runtime();
    let manifest =
        plugboard_runtime::Manifest::from_toml("name = \"multi-memory\"\nversion = \"0.1.0\"\nkind = \"transformer\"")
            .expect("manifest");
    let limit = 8 << 20;
    let grant = Grant { budget: BudgetLimits { memory_bytes: Some(limit), ..Default::default() }, ..Grant::default() };

    // Each memory grows to 3 MiB + 64 KiB: each fits the 8 MiB budget alone, the three together do not.
    let greedy = runtime.load(&multi_memory_component(48), manifest.clone(), &grant).expect("load");
    let invocation = greedy.transform(records(&[json!(1)])).await;
    match invocation.outcome {
        Err(Error::MemoryLimit { limit: l, requested, .. }) => {
            assert_eq!(l, limit);
            assert_eq!(requested, 3 * (64 << 10) + 3 * (48 * (64 << 10)));
        }
        other => panic!("expected memory-limit, got {other:?}"),
    }
    assert_eq!(invocation.usage.peak_memory_bytes, 3 * (64 << 10) + 2 * (48 * (64 << 10)));

    // The same component within budget returns its (empty) batch.
    let modest = runtime.load(&multi_memory_component(16), manifest, &grant).expect("load");
    let invocation = modest.transform(records(&[json!(1)])).await;
    assert_eq!(invocation.outcome.expect("within budget"), vec![]);
    assert_eq!(invocation.usage.peak_memory_bytes, 3 * (64 << 10) + 3 * (16 * (64 << 10)));
    assert_runtime_healthy(&runtime).await;
}

#[tokio::test]
async fn key_value_state_persists_in_granted_buckets_only() {
    let runtime = runtime();
    let mut grant = config(&[("mode", "kv-count")]);
    grant.key_value = vec!["counters".into(), "not-requested".into()];
    let counter = GUEST_HOSTILE.load(&runtime, &grant);
    assert_eq!(counter.effective().key_value, vec!["counters".to_string()], "a grant cannot add a bucket");
    for expected in 1..=3 {
        let out = counter.transform(records(&[])).await.into_result().expect("counts");
        assert_eq!(values(&out), vec![json!(expected)]);
    }
    // Not granted (even though requested): a denial inside the call.
    let ungranted = GUEST_HOSTILE.load(&runtime, &config(&[("mode", "kv-count")]));
    let invocation = ungranted.transform(records(&[])).await;
    match &invocation.outcome {
        Err(Error::Denied { denial, .. }) => {
            assert!(denial.contains("`counters` is requested by the plugin's manifest but not granted"), "{denial}")
        }
        other => panic!("expected a denial naming the grant, got {other:?}"),
    }
    assert!(invocation.logs.entries.iter().any(|e| e.context == "host" && e.message.contains("`counters`")));
    let mut grant = config(&[("mode", "kv-other-bucket")]);
    grant.key_value = vec!["counters".into()];
    let other = GUEST_HOSTILE.load(&runtime, &grant);
    match other.transform(records(&[])).await.outcome {
        Err(Error::Denied { denial, .. }) => {
            assert!(denial.contains("not among the manifest's `key_value`"), "{denial}")
        }
        other => panic!("expected a denial naming the manifest, got {other:?}"),
    }
    // The count survived the denied calls.
    let out = counter.transform(records(&[])).await.into_result().expect("counts");
    assert_eq!(values(&out), vec![json!(4)]);
}

/// The hostile guest in `mode` with the `counters` bucket granted.
fn kv_guest(runtime: &Runtime, mode: &str) -> Plugin {
    let mut grant = config(&[("mode", mode)]);
    grant.key_value = vec!["counters".into()];
    GUEST_HOSTILE.load(runtime, &grant)
}

/// Runs `kv-fill` with values of `value_bytes`: how many keys it wrote and the error that stopped it.
async fn kv_fill(plugin: &Plugin, value_bytes: usize) -> (u64, Option<String>, plugboard_runtime::Logs) {
    let value = Record { key: None, value: vec![b'v'; value_bytes], headers: Vec::new() };
    let invocation = plugin.transform(vec![value]).await;
    let out = invocation.outcome.expect("kv-fill reports");
    let (written, error) = serde_json::from_slice(&out[0].value).expect("[written, error]");
    (written, error, invocation.logs)
}

#[tokio::test]
async fn key_value_quota_caps_each_plugins_keys() {
    let runtime = runtime_with(|c| c.key_value_quota = KeyValueQuota { max_keys: 300, max_bytes: 64 << 20 });
    let filler = kv_guest(&runtime, "kv-fill");
    let (written, error, logs) = kv_fill(&filler, 10).await;
    assert_eq!(written, 300);
    let error = error.expect("refused");
    assert!(error.contains("quota exceeded") && error.contains("300 keys"), "{error}");
    assert!(logs.entries.iter().any(|e| e.context == "host" && e.message.contains("quota exceeded")), "{logs:?}");
    // Still full in the next invocation, and for every use of the plugin's namespace: a new key
    // from another mode fails with the guest-visible error.
    assert_eq!(kv_fill(&filler, 0).await.0, 0);
    match kv_guest(&runtime, "kv-count").transform(records(&[])).await.outcome {
        Err(Error::Guest(PluginError::Internal(message))) => assert!(message.contains("quota exceeded"), "{message}"),
        other => panic!("expected the quota error, got {other:?}"),
    }
    // Another plugin's quota is its own.
    let mut grant = config(&[("mode", "kv-count")]);
    grant.key_value = vec!["counters".into()];
    let mut manifest = GUEST_HOSTILE.manifest();
    manifest.name = "hostile-two".into();
    let other = runtime.load(&GUEST_HOSTILE.bytes(), manifest, &grant).expect("load");
    assert_eq!(values(&other.transform(records(&[])).await.into_result().expect("counts")), vec![json!(1)]);
}

#[tokio::test]
async fn key_value_quota_caps_each_plugins_bytes() {
    let runtime = runtime_with(|c| c.key_value_quota = KeyValueQuota { max_keys: 10_000, max_bytes: 100_000 });
    let filler = kv_guest(&runtime, "kv-fill");
    // Each entry is an 11-byte key and a 10,000-byte value: the tenth would pass 100,000 bytes.
    let (written, error, _) = kv_fill(&filler, 10_000).await;
    assert_eq!(written, 9);
    assert!(error.expect("refused").contains("100000 bytes"));
    // Small entries still fit in what is left.
    let (written, _, _) = kv_fill(&filler, 10).await;
    assert_eq!(written, (100_000 - 9 * 10_011) / 21);
}

#[tokio::test]
async fn list_keys_continues_after_the_last_key_even_when_the_listed_keys_are_deleted() {
    // The default quota: 10,000 keys per plugin.
    let runtime = runtime();
    let (written, error, _) = kv_fill(&kv_guest(&runtime, "kv-fill"), 0).await;
    assert_eq!((written, error.is_some()), (10_000, true));
    let out = kv_guest(&runtime, "kv-drain").transform(records(&[])).await.into_result().expect("drains");
    let (seen, pages, made_up): (u64, u64, Option<String>) =
        serde_json::from_slice(&out[0].value).expect("[seen, pages, error]");
    // Ten full pages and an empty one: every key once, although each page was deleted before the
    // next was asked for (an offset cursor would skip half).
    assert_eq!((seen, pages), (10_000, 11));
    assert!(made_up.expect("a made-up cursor is an error").contains("cursor"));
    let (written, _, _) = kv_fill(&kv_guest(&runtime, "kv-fill"), 0).await;
    assert_eq!(written, 10_000, "deleting gave the quota back");
}

#[tokio::test]
async fn every_key_value_operation_checks_its_key_and_open_checks_the_bucket_name() {
    let runtime = runtime();
    let out = kv_guest(&runtime, "kv-checks").transform(records(&[])).await.into_result().expect("checks");
    let results: Vec<(String, String)> = serde_json::from_slice(&out[0].value).expect("[[operation, answer]]");
    let answer = |op: &str| results.iter().find(|(o, _)| o == op).map(|(_, a)| a.clone()).unwrap_or_default();
    for op in ["get", "set", "exists", "delete"] {
        assert!(answer(op).contains("keys are at most 1024 bytes"), "{op}: {}", answer(op));
    }
    assert!(answer("open-empty").contains("must not be empty"), "{results:?}");
    assert!(answer("open-nul").contains("must not contain NUL"), "{results:?}");
}

#[tokio::test]
async fn hoarding_host_resources_ends_the_invocation_with_a_typed_limit() {
    let runtime = runtime();
    let plugin = hostile(&runtime, "handles", BudgetLimits::default());
    let invocation = plugin.transform(records(&[json!(1)])).await;
    match &invocation.outcome {
        Err(err @ Error::TooManyResources { limit }) => {
            assert_eq!(*limit, MAX_HOST_RESOURCES as u64);
            assert_eq!(err.code(), ErrorCode::MemoryLimit);
        }
        other => panic!("expected too-many-resources, got {other:?}"),
    }
    assert_runtime_healthy(&runtime).await;
}

#[tokio::test]
async fn a_guest_blocked_in_a_host_call_still_meets_its_deadline() {
    let runtime = runtime();
    let plugin = hostile(&runtime, "sleep", BudgetLimits { timeout_ms: Some(300), ..Default::default() });
    match plugin.transform(records(&[json!(1)])).await.outcome {
        Err(Error::Timeout { deadline, .. }) => assert_eq!(deadline.as_millis(), 300),
        other => panic!("expected timeout, got {other:?}"),
    }
    assert_runtime_healthy(&runtime).await;
}
