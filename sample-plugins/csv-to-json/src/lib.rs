//! `csv-to-json`: turns CSV text into one JSON record per row.
//!
//! Each input record's value is CSV text (RFC 4180: quoted fields, doubled quotes, CR LF or LF line
//! ends). The first row names the columns; every following row becomes a JSON object record that
//! keeps the input record's key and headers. Config:
//! - `delimiter`: one character, default `,`;
//! - `infer_types`: `true` turns numbers, `true`/`false` and empty fields into JSON numbers,
//!   booleans and `null`; default `false` (every field a string).
//!
//! A row with a different number of fields than the header is an `invalid-input` error naming the
//! input record and line.

use plugboard_plugin_sdk::{Batch, PluginError, RecordIssue, Transformer, config};
use serde_json::{Map, Value};

/// Splits CSV text into rows of fields. Returns the 1-based line each row started on.
fn parse_csv(text: &str, delimiter: char) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.chars().peekable();
    let mut row_has_content = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                in_quotes = true;
                row_has_content = true;
            }
            c if c == delimiter => {
                row.push(std::mem::take(&mut field));
                row_has_content = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if row_has_content || !field.is_empty() {
                    row.push(std::mem::take(&mut field));
                    rows.push((row_line, std::mem::take(&mut row)));
                }
                row_has_content = false;
                line += 1;
                row_line = line;
            }
            _ => {
                field.push(c);
                row_has_content = true;
            }
        }
    }
    if in_quotes {
        return Err(format!("unclosed quote in the row starting on line {row_line}"));
    }
    if row_has_content || !field.is_empty() {
        row.push(field);
        rows.push((row_line, row));
    }
    Ok(rows)
}

fn infer(field: String) -> Value {
    match field.as_str() {
        "" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        text => {
            if let Ok(int) = text.parse::<i64>() {
                Value::from(int)
            } else if let Some(number) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Value::Number(number)
            } else {
                Value::String(field)
            }
        }
    }
}

struct CsvToJson;

impl Transformer for CsvToJson {
    fn transform(input: Batch) -> Result<Batch, PluginError> {
        let delimiter = match config::get("delimiter")?.as_deref() {
            None | Some("") => ',',
            Some(text) if text.chars().count() == 1 => text.chars().next().unwrap_or(','),
            Some(text) => return Err(PluginError::InvalidConfig(format!("delimiter `{text}` is not one character"))),
        };
        let infer_types = config::get("infer_types")?.is_some_and(|v| v == "true");
        let mut output = Vec::new();
        let mut issues = Vec::new();
        for (index, record) in input.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let text = match std::str::from_utf8(&record.value) {
                Ok(text) => text,
                Err(err) => {
                    issues.push(RecordIssue { index, reasons: vec![format!("not UTF-8 text: {err}")] });
                    continue;
                }
            };
            let rows = match parse_csv(text, delimiter) {
                Ok(rows) => rows,
                Err(reason) => {
                    issues.push(RecordIssue { index, reasons: vec![reason] });
                    continue;
                }
            };
            let mut rows = rows.into_iter();
            let Some((_, header)) = rows.next() else { continue };
            let mut reasons = Vec::new();
            for (line, fields) in rows {
                if fields.len() != header.len() {
                    reasons.push(format!("line {line} has {} fields, the header has {}", fields.len(), header.len()));
                    continue;
                }
                let object: Map<String, Value> = header
                    .iter()
                    .cloned()
                    .zip(fields)
                    .map(|(name, field)| (name, if infer_types { infer(field) } else { Value::String(field) }))
                    .collect();
                output.push(record.with_json(&Value::Object(object))?);
            }
            if !reasons.is_empty() {
                issues.push(RecordIssue { index, reasons });
            }
        }
        if issues.is_empty() { Ok(output) } else { Err(PluginError::InvalidInput(issues)) }
    }
}

plugboard_plugin_sdk::export_transformer!(CsvToJson);
