//! Server answers as the readable text the client commands print unless `--json` is given.
//!
//! Tables are left-aligned with an upper-case header, one row per item, so they read well and
//! still cut cleanly with `awk`/`cut`. Times are RFC 3339 in UTC (`2026-12-01T09:30:00Z`): the
//! server stores Unix seconds, which nobody reads at a glance, and UTC keeps the text identical on
//! every machine (a table pasted into a ticket means the same thing to everyone).

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

/// A JSON list of strings (or values) joined with `, `; `-` when empty.
pub fn list(value: &Value) -> String {
    let items: Vec<String> = value.as_array().map(|v| v.iter().map(text).collect()).unwrap_or_default();
    if items.is_empty() { "-".into() } else { items.join(", ") }
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

/// `plugboard ls` as a table.
pub fn render_plugins(answer: &Value) -> String {
    let rows = rows(answer, "plugins", |p| {
        vec![text(&p["name"]), text(&p["kind"]), text(&p["active_version"]), list(&p["versions"])]
    });
    table(&["name", "kind", "active", "versions"], &rows)
}

/// `plugboard show NAME`: the plugin, its grants and health, then its versions.
pub fn render_plugin(answer: &Value) -> String {
    let grants = &answer["grants"];
    let budget = grants["budget"].as_object().filter(|b| !b.is_empty()).map_or_else(
        || "server defaults".to_string(),
        |b| b.iter().map(|(k, v)| format!("{k}={}", text(v))).collect::<Vec<_>>().join(", "),
    );
    let config = grants["config"].as_object().filter(|c| !c.is_empty()).map_or_else(
        || "-".to_string(),
        |c| c.iter().map(|(k, v)| format!("{k}={}", text(v))).collect::<Vec<_>>().join(", "),
    );
    let usage = &answer["usage"];
    let mut out = format!(
        "{} ({}), active {}, {}\n{}\n\
         outbound hosts: {}\nkey-value buckets: {}\nbudget: {}\nconfig: {}\nsecrets (values hidden): {}\n\
         usage: {} invocations, {} errors, {} fuel\n\n",
        text(&answer["name"]),
        text(&answer["manifest"]["kind"]),
        text(&answer["active_version"]),
        text(&answer["health"]["status"]),
        text(&answer["manifest"]["description"]),
        list(&grants["outbound_hosts"]),
        list(&grants["key_value"]),
        budget,
        config,
        list(&grants["secrets"]),
        text(&usage["invocations"]),
        text(&usage["errors"]),
        text(&usage["fuel"]),
    );
    let versions = rows(answer, "versions", |v| {
        vec![text(&v["version"]), text(&v["key_id"]), time(&v["uploaded_at"]), text(&v["digest"])]
    });
    out.push_str(&table(&["version", "key id", "uploaded", "digest"], &versions));
    out
}

/// `plugboard grant`: what the plugin may now use.
pub fn render_grants(answer: &Value) -> String {
    let budget = answer["budget"].as_object().filter(|b| !b.is_empty()).map_or_else(
        || "server defaults".to_string(),
        |b| b.iter().map(|(k, v)| format!("{k}={}", text(v))).collect::<Vec<_>>().join(", "),
    );
    format!(
        "outbound hosts: {}{}\nkey-value buckets: {}\nconnections: {}\nbudget: {budget}",
        list(&answer["outbound_hosts"]),
        if answer["allow_private"] == true { " (names may resolve to private addresses)" } else { "" },
        list(&answer["key_value"]),
        answer["connections"].as_object().filter(|c| !c.is_empty()).map_or_else(
            || "-".to_string(),
            |c| c.iter().map(|(k, v)| format!("{k}={}", text(v))).collect::<Vec<_>>().join(", ")
        )
    )
}

/// `plugboard config set`: the values, and the secret keys (never their values).
pub fn render_config(answer: &Value) -> String {
    let values = answer["values"].as_object().filter(|c| !c.is_empty()).map_or_else(
        || "-".to_string(),
        |c| c.iter().map(|(k, v)| format!("{k}={}", text(v))).collect::<Vec<_>>().join(", "),
    );
    format!("config: {values}\nsecrets (values hidden): {}", list(&answer["secrets"]))
}

/// `plugboard invoke`: the output records (or page, or report) as JSON, then usage and logs.
pub fn render_invocation(answer: &Value) -> String {
    let mut output = answer.clone();
    if let Some(object) = output.as_object_mut() {
        object.remove("usage");
        object.remove("logs");
    }
    let usage = &answer["usage"];
    let mut out = format!(
        "{}\nusage: {} fuel, {:.1} ms, {} bytes peak memory",
        serde_json::to_string_pretty(&output).unwrap_or_default(),
        text(&usage["fuel"]),
        usage["wall_time_ms"].as_f64().unwrap_or_default(),
        text(&usage["peak_memory_bytes"])
    );
    let lines = logs(&answer["logs"]);
    if !lines.is_empty() {
        out.push_str("\nlogs:\n");
        out.push_str(&lines.join("\n"));
    }
    out
}

/// `plugboard keys ls` as a table.
pub fn render_keys(answer: &Value) -> String {
    let rows = rows(answer, "keys", |k| {
        let state = if k["revoked_at"].is_null() { "trusted" } else { "revoked" };
        vec![text(&k["key_id"]), text(&k["name"]), state.to_string(), time(&k["added_at"]), time(&k["revoked_at"])]
    });
    table(&["key id", "name", "state", "added", "revoked"], &rows)
}

/// `plugboard tokens ls` as a table.
pub fn render_tokens(answer: &Value) -> String {
    let rows = rows(answer, "tokens", |t| vec![text(&t["name"]), text(&t["role"]), scope(&t["scope"])]);
    table(&["name", "role", "scope"], &rows)
}

/// A token's scope: `plugins a, b; flows c`, or `everything its role allows` for none.
fn scope(scope: &Value) -> String {
    if scope.is_null() {
        return "everything its role allows".into();
    }
    let names = |key: &str| {
        let list: Vec<String> = scope[key].as_array().into_iter().flatten().map(text).collect();
        if list.is_empty() { "none".to_string() } else { list.join(", ") }
    };
    format!("plugins {}; flows {}", names("plugins"), names("flows"))
}

/// ` (scoped to …)` after a token's name, or nothing for an unscoped token.
pub fn scope_suffix(value: &Value) -> String {
    if value.is_null() { String::new() } else { format!(" (scoped to {})", scope(value)) }
}

/// `plugboard audit` as a table, with the next page's cursor when there is one.
pub fn render_audit(answer: &Value) -> String {
    let rows = rows(answer, "entries", |e| {
        vec![
            time(&e["at"]),
            text(&e["actor"]),
            text(&e["action"]),
            text(&e["target"]),
            text(&e["key_id"]),
            text(&e["detail"]),
        ]
    });
    let mut out = table(&["at", "actor", "action", "target", "key id", "detail"], &rows);
    if !answer["next_cursor"].is_null() {
        out.push_str(&format!("\n(more: --cursor {})", text(&answer["next_cursor"])));
    }
    out
}

/// `plugboard metrics`: one row per sample, errors as `code n` pairs.
pub fn render_metrics(answer: &Value) -> String {
    let millis = |v: &Value| v.as_f64().map_or_else(|| "-".to_string(), |ms| format!("{ms:.2}"));
    let rows = rows(answer, "samples", |s| {
        let errors = s["errors"]
            .as_object()
            .map(|codes| codes.iter().map(|(code, n)| format!("{} {n}", text(&Value::String(code.clone())))).collect())
            .unwrap_or_else(Vec::new)
            .join(", ");
        vec![
            time(&s["at"]),
            text(&s["invocations"]),
            if errors.is_empty() { "-".into() } else { errors },
            millis(&s["latency_p50_ms"]),
            millis(&s["latency_p99_ms"]),
            text(&s["queue_depth"]),
            text(&s["dead_letters"]),
        ]
    });
    let header = ["at", "invocations", "errors", "p50 ms", "p99 ms", "queued", "dead letters"];
    format!("{}\n(one sample every {} s)", table(&header, &rows), text(&answer["interval_seconds"]))
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
