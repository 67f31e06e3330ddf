//! `plugboard demo`: runs the embedded sample plugins as a small pipeline on sample data.
//!
//! CSV text → `csv-to-json` → `redact` → `json-mapper` → `filter` → `schema-validator` →
//! `aggregate`, printing each step's output and what it used. It shows the runtime end to end with
//! real components and no setup; the control plane (`plugboard serve`) builds on the same pieces.

use crate::samples;
use plugboard_runtime::{Batch, Grant, Record, Runtime, RuntimeConfig};
use serde_json::json;

const ORDERS_CSV: &str = "order,email,card,region,total
A-100,ada@example.com,4111 1111 1111 1111,eu,1250.50
A-101,bob@example.org,5500 0000 0000 0004,us,80
A-102,cy@example.net,,eu,430
A-103,dee@example.com,,us,2200
";

fn step(name: &'static str, config: serde_json::Value) -> (&'static str, Grant) {
    let config = config
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(key, value)| {
                    let text = value.as_str().map_or_else(|| value.to_string(), str::to_string);
                    (key.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default();
    (name, Grant { config, ..Grant::default() })
}

/// Runs the pipeline and prints every step.
///
/// # Errors
/// When a sample fails to load or a step fails.
pub async fn run(out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let steps = [
        step("csv-to-json", json!({"infer_types": "true"})),
        step("redact", json!({})),
        step(
            "json-mapper",
            json!({"mapping": {"id": "$.order", "contact": "$.email", "region": "$.region", "total": "$.total"}}),
        ),
        step("filter", json!({"condition": {"field": "$.total", "op": "gt", "value": 100}})),
        step(
            "schema-validator",
            json!({"schema": {"type": "object", "required": ["id", "total"], "properties": {"total": {"type": "number", "minimum": 0}}}}),
        ),
        step(
            "aggregate",
            json!({"group_by": "$.region", "aggregations": [{"op": "count", "as": "orders"}, {"op": "sum", "field": "$.total", "as": "revenue"}]}),
        ),
    ];
    let mut batch: Batch = vec![Record { key: None, value: ORDERS_CSV.as_bytes().to_vec(), headers: Vec::new() }];
    writeln!(out, "input (1 record of CSV text):\n{ORDERS_CSV}")?;
    for (name, grant) in steps {
        let plugin = samples::load(&runtime, name, &grant)?;
        let invocation = plugin.transform(batch).await;
        let usage = invocation.usage;
        batch = invocation.outcome.map_err(|err| anyhow::anyhow!("{name}: {err} ({})", err.code()))?;
        writeln!(
            out,
            "── {name}: {} records ({} fuel, {:.2?}, {} KiB peak memory)",
            batch.len(),
            usage.fuel_consumed,
            usage.wall_time,
            usage.peak_memory_bytes / 1024
        )?;
        for record in &batch {
            writeln!(out, "   {}", String::from_utf8_lossy(&record.value))?;
        }
    }
    writeln!(
        out,
        "\nEvery step ran as a sandboxed WebAssembly component under fuel, memory, time and output budgets."
    )?;
    writeln!(
        out,
        "Try one yourself: plugboard run COMPONENT.wasm --manifest plugin.toml --config KEY=VALUE --input FILE"
    )?;
    Ok(())
}

/// Installs, configures and activates every embedded sample plugin, signed by a publisher key
/// generated for this data directory (`demo-publisher`, trusted on first start).
///
/// # Errors
/// When signing, installing or configuring fails.
pub async fn install_samples(state: &crate::api::AppState, data_dir: &std::path::Path) -> anyhow::Result<()> {
    use plugboard_runtime::signing::{self, SecretKey};
    let services = &state.services;
    let key_path = data_dir.join("demo-publisher");
    let key = if key_path.exists() {
        SecretKey::from_file(&key_path)?
    } else {
        let key = SecretKey::generate()?;
        key.write_files(&key_path)?;
        key
    };
    let trust = services.access.trust()?;
    if matches!(trust.status(&key.public().key_id()), signing::KeyStatus::Unknown) {
        services.access.add_key("demo publisher", key.public(), "demo").await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    for sample in samples::SAMPLE_PLUGINS {
        let manifest = plugboard_runtime::Manifest::from_toml(sample.manifest)?;
        let signed = signing::sign(sample.component, &manifest, &key)?;
        services
            .plugins
            .install(signed, true, false, "demo")
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", sample.name))?;
        let config = samples::demo_config(sample.name);
        if let Some(values) = config.as_object().filter(|v| !v.is_empty()) {
            let values: std::collections::BTreeMap<String, String> = values
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect();
            services
                .plugins
                .set_grant(
                    sample.name,
                    |grant| grant.config = values,
                    crate::store::AuditAction::Config,
                    "demo config".into(),
                    "demo",
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    Ok(())
}
