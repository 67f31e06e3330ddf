//! Server answers as the readable text the client commands print unless `--json` is given.
//!
//! Tables are left-aligned with an upper-case header, one row per item, so they read well and
//! still cut cleanly with `awk`/`cut`. Times are RFC 3339 in UTC (`2026-12-01T09:30:00Z`): the
//! server stores Unix seconds, which nobody reads at a glance, and UTC keeps the text identical on
//! every machine (a table pasted into a ticket means the same thing to everyone).

use plugboard_api_types::access::{AuditPage, KeyList, TokenList, TokenScope};
use plugboard_api_types::connections::MetricsHistory;
use plugboard_api_types::plugins::{BudgetLimits, ConfigView, Grants, Health, Invoked, PluginDetail, PluginList};
use serde_json::Value;

/// Formats rows as a left-aligned table with a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone()));
    }
    out
}

/// A JSON value as table text (`-` for null).
///
/// Strings are escaped (control and bidirectional-override characters): they may carry a
/// plugin's log lines or messages, which must not drive the operator's terminal.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => plugboard_runtime::host::logs::escaped(s),
        other => other.to_string(),
    }
}

/// Unix seconds as RFC 3339 in UTC (`-` for null; the value as is when it is not a time).
pub fn time(value: &Value) -> String {
    value
        .as_i64()
        .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
        .map_or_else(|| text(value), |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Items of `answer[key]` as rows made by `row`.
pub fn rows(answer: &Value, key: &str, row: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    answer[key].as_array().map(|items| items.iter().map(row).collect()).unwrap_or_default()
}

/// A trap's backtrace (innermost first) as numbered, indented lines; empty when there is none.
pub fn backtrace(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|frames| frames.iter().enumerate().map(|(i, frame)| format!("    {i}: {}", text(frame))).collect())
        .unwrap_or_default()
}

/// Captured plugin log entries (`{level, context, message}`), one indented line each.
pub fn logs(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| match entry {
                    Value::Object(_) => {
                        format!(
                            "    [{} {}] {}",
                            text(&entry["level"]),
                            text(&entry["context"]),
                            text(&entry["message"])
                        )
                    }
                    other => format!("    {}", text(other)),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Text as table text, escaped as [`text`] escapes strings.
pub fn plain(text: &str) -> String {
    plugboard_runtime::host::logs::escaped(text)
}

/// An optional value as table text (`-` for none).
pub fn maybe(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "-".into(), |v| plain(&v.to_string()))
}

/// Unix seconds as RFC 3339 in UTC.
pub fn when(seconds: u64) -> String {
    time(&Value::from(seconds))
}

/// Names joined with `, `; `-` when there are none.
pub fn names<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|item| plain(&item.to_string())).collect();
    if items.is_empty() { "-".into() } else { items.join(", ") }
}

/// A value of the wire's enums (`transformer`, `invoker`, `flow-create`) as it is spelled there.
pub fn spelled(value: &impl serde::Serialize) -> String {
    text(&serde_json::to_value(value).unwrap_or_default())
}

/// `KEY=VALUE` pairs joined with `, `; `empty` when there are none.
fn pairs<V: std::fmt::Display>(map: &std::collections::BTreeMap<String, V>, empty: &str) -> String {
    if map.is_empty() {
        return empty.into();
    }
    map.iter().map(|(k, v)| format!("{}={}", plain(k), plain(&v.to_string()))).collect::<Vec<_>>().join(", ")
}

/// A grant's budget: its limits, or `server defaults`.
fn budget(budget: &BudgetLimits) -> String {
    let limits = serde_json::to_value(budget).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default();
    if limits.is_empty() {
        return "server defaults".into();
    }
    limits.iter().map(|(k, v)| format!("{k}={}", text(v))).collect::<Vec<_>>().join(", ")
}

/// `plugboard ls` as a table.
pub fn render_plugins(answer: &PluginList) -> String {
    let rows: Vec<Vec<String>> = answer
        .plugins
        .iter()
        .map(|p| {
            vec![
                plain(&p.name),
                maybe(p.kind.as_ref().map(spelled)),
                maybe(p.active_version.as_ref()),
                names(&p.versions),
            ]
        })
        .collect();
    table(&["name", "kind", "active", "versions"], &rows)
}

/// `plugboard show NAME`: the plugin, its grants and health, then its versions.
pub fn render_plugin(answer: &PluginDetail) -> String {
    let grants = &answer.grants;
    let manifest = answer.manifest.as_ref().map(|m| &m.0).unwrap_or(&Value::Null);
    let health = match &answer.health {
        Health::Ready { .. } => "ready",
        Health::Failed { .. } => "failed",
        Health::Inactive => "inactive",
    };
    let usage = &answer.usage;
    let mut out = format!(
        "{} ({}), active {}, {health}\n{}\n\
         outbound hosts: {}\nkey-value buckets: {}\nbudget: {}\nconfig: {}\nsecrets (values hidden): {}\n\
         usage: {} invocations, {} errors, {} fuel\n\n",
        plain(&answer.name),
        text(&manifest["kind"]),
        maybe(answer.active_version.as_ref()),
        text(&manifest["description"]),
        names(&grants.grants.outbound_hosts),
        names(&grants.grants.key_value),
        budget(&grants.grants.budget),
        pairs(&grants.config, "-"),
        names(&grants.secrets),
        usage.invocations,
        usage.errors,
        usage.fuel,
    );
    let versions: Vec<Vec<String>> = answer
        .versions
        .iter()
        .map(|v| vec![plain(&v.version), maybe(v.key_id.as_ref()), when(v.uploaded_at), plain(&v.digest)])
        .collect();
    out.push_str(&table(&["version", "key id", "uploaded", "digest"], &versions));
    out
}

/// `plugboard grant`: what the plugin may now use.
pub fn render_grants(answer: &Grants) -> String {
    format!(
        "outbound hosts: {}{}\nkey-value buckets: {}\nconnections: {}\nbudget: {}",
        names(&answer.outbound_hosts),
        if answer.allow_private { " (names may resolve to private addresses)" } else { "" },
        names(&answer.key_value),
        pairs(&answer.connections, "-"),
        budget(&answer.budget),
    )
}

/// `plugboard config set`: the values, and the secret keys (never their values).
pub fn render_config(answer: &ConfigView) -> String {
    format!("config: {}\nsecrets (values hidden): {}", pairs(&answer.values, "-"), names(&answer.secrets))
}

/// `plugboard invoke`: the output records (or page, or report) as JSON, then usage and logs.
pub fn render_invocation(answer: &Invoked) -> String {
    let mut output = serde_json::to_value(answer).unwrap_or_default();
    if let Some(object) = output.as_object_mut() {
        object.remove("usage");
        object.remove("logs");
    }
    let usage = &answer.usage;
    let mut out = format!(
        "{}\nusage: {} fuel, {:.1} ms, {} bytes peak memory",
        serde_json::to_string_pretty(&output).unwrap_or_default(),
        usage.fuel,
        usage.wall_time_ms,
        usage.peak_memory_bytes
    );
    if !answer.logs.is_empty() {
        out.push_str("\nlogs:\n");
        let lines: Vec<String> = answer
            .logs
            .iter()
            .map(|line| format!("    [{} {}] {}", spelled(&line.level), plain(&line.context), plain(&line.message)))
            .collect();
        out.push_str(&lines.join("\n"));
    }
    out
}

/// `plugboard keys ls` as a table.
pub fn render_keys(answer: &KeyList) -> String {
    let rows: Vec<Vec<String>> = answer
        .keys
        .iter()
        .map(|k| {
            let state = if k.revoked_at.is_none() { "trusted" } else { "revoked" };
            vec![plain(&k.key_id), plain(&k.name), state.to_string(), when(k.added_at), maybe(k.revoked_at.map(when))]
        })
        .collect();
    table(&["key id", "name", "state", "added", "revoked"], &rows)
}

/// `plugboard tokens ls` as a table.
pub fn render_tokens(answer: &TokenList) -> String {
    let rows: Vec<Vec<String>> =
        answer.tokens.iter().map(|t| vec![plain(&t.name), spelled(&t.role), scope(t.scope.as_ref())]).collect();
    table(&["name", "role", "scope"], &rows)
}

/// A token's scope: `plugins a, b; flows c`, or `everything its role allows` for none.
fn scope(scope: Option<&TokenScope>) -> String {
    let Some(scope) = scope else { return "everything its role allows".into() };
    let list = |items: &[String]| if items.is_empty() { "none".to_string() } else { names(items) };
    format!("plugins {}; flows {}", list(&scope.plugins), list(&scope.flows))
}

/// ` (scoped to …)` after a token's name, or nothing for an unscoped token.
pub fn scope_suffix(value: Option<&TokenScope>) -> String {
    value.map_or_else(String::new, |value| format!(" (scoped to {})", scope(Some(value))))
}

/// `plugboard audit` as a table, with the next page's cursor when there is one.
pub fn render_audit(answer: &AuditPage) -> String {
    let rows: Vec<Vec<String>> = answer
        .entries
        .iter()
        .map(|e| {
            vec![
                when(e.at),
                plain(&e.actor),
                spelled(&e.action),
                plain(&e.target),
                maybe(e.key_id.as_ref()),
                plain(&e.detail),
            ]
        })
        .collect();
    let mut out = table(&["at", "actor", "action", "target", "key id", "detail"], &rows);
    if let Some(cursor) = answer.next_cursor {
        out.push_str(&format!("\n(more: --cursor {cursor})"));
    }
    out
}

/// `plugboard metrics`: one row per sample, errors as `code n` pairs.
pub fn render_metrics(answer: &MetricsHistory) -> String {
    let millis = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |ms| format!("{ms:.2}"));
    let rows: Vec<Vec<String>> = answer
        .samples
        .iter()
        .map(|s| {
            let errors: Vec<String> = s.errors.iter().map(|(code, n)| format!("{} {n}", plain(code))).collect();
            vec![
                when(s.at),
                s.invocations.to_string(),
                if errors.is_empty() { "-".into() } else { errors.join(", ") },
                millis(s.latency_p50_ms),
                millis(s.latency_p99_ms),
                s.queue_depth.to_string(),
                s.dead_letters.to_string(),
            ]
        })
        .collect();
    let header = ["at", "invocations", "errors", "p50 ms", "p99 ms", "queued", "dead letters"];
    format!("{}\n(one sample every {} s)", table(&header, &rows), answer.interval_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn guest_text_cannot_drive_the_terminal() {
        assert_eq!(text(&json!("red \u{1b}[31m\nline")), "red \\u{1b}[31m\\nline");
        let logged = logs(&json!([{"level": "info", "context": "p", "message": "\u{1b}]0;title\u{7}"}]));
        assert_eq!(logged, vec!["    [info p] \\u{1b}]0;title\\u{7}".to_string()]);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(time(&json!(1_796_196_399)), "2026-12-02T07:26:39Z");
        assert_eq!(time(&Value::Null), "-");
        assert_eq!(time(&json!("soon")), "soon");
    }

    #[test]
    fn tables_align_columns() {
        let printed = table(&["a", "long header"], &[vec!["wide cell".into(), "x".into()]]);
        assert_eq!(printed, "A          LONG HEADER\nwide cell  x");
    }
}
