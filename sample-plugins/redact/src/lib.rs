//! `redact`: masks e-mail addresses, card numbers and configured fields in JSON records.
//!
//! Every string in a record is scanned:
//! - e-mail addresses become `***@domain` (the domain is kept for debugging routing problems);
//! - card numbers (13 to 19 digits, optionally grouped by spaces or dashes, passing the Luhn check)
//!   keep their last four digits: `************1111`.
//!
//! Config `fields` (optional) is a JSON list of paths whose whole value is replaced by `"[REDACTED]"`
//! wherever present; config `mask_emails` / `mask_cards` set to `false` turn a scanner off.

use plugboard_plugin_sdk::path::Path;
use plugboard_plugin_sdk::{Batch, PluginError, Transformer, config, json};
use serde_json::Value;

const REDACTED: &str = "[REDACTED]";

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

fn is_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '-'
}

/// Replaces the local part of every e-mail address with `***`.
fn mask_emails(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            // The local part is what we already copied back to the last non-local character.
            let local_len = out.chars().rev().take_while(|c| is_local_char(*c)).count();
            let domain_len = chars[i + 1..].iter().take_while(|c| is_domain_char(**c)).count();
            let domain: String = chars[i + 1..i + 1 + domain_len].iter().collect();
            let domain = domain.trim_end_matches(['.', '-']);
            if local_len > 0 && domain.contains('.') && !domain.starts_with('.') {
                let keep = out.chars().count() - local_len;
                out = out.chars().take(keep).collect();
                out.push_str("***@");
                out.push_str(domain);
                i += 1 + domain.chars().count();
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn luhn_valid(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d })
        .sum();
    sum.is_multiple_of(10)
}

/// Masks card numbers: runs of 13-19 digits (spaces or dashes allowed between) passing Luhn.
fn mask_cards(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()) {
            // Longest run of digits and single separators.
            let mut end = i;
            let mut digits = Vec::new();
            let mut last_digit_end = i;
            while end < chars.len() {
                let c = chars[end];
                if let Some(d) = c.to_digit(10) {
                    digits.push(d);
                    last_digit_end = end + 1;
                } else if !((c == ' ' || c == '-') && end + 1 < chars.len() && chars[end + 1].is_ascii_digit()) {
                    break;
                }
                end += 1;
            }
            let bounded = last_digit_end == chars.len() || !chars[last_digit_end].is_ascii_alphanumeric();
            if (13..=19).contains(&digits.len()) && bounded && luhn_valid(&digits) {
                out.extend(std::iter::repeat_n('*', digits.len() - 4));
                out.extend(digits[digits.len() - 4..].iter().filter_map(|d| char::from_digit(*d, 10)));
                i = last_digit_end;
                continue;
            }
            out.extend(&chars[i..last_digit_end]);
            i = last_digit_end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn scan(value: &mut Value, emails: bool, cards: bool) {
    match value {
        Value::String(text) => {
            if emails {
                *text = mask_emails(text);
            }
            if cards {
                *text = mask_cards(text);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| scan(v, emails, cards)),
        Value::Object(map) => map.values_mut().for_each(|v| scan(v, emails, cards)),
        _ => {}
    }
}

struct Redact;

impl Transformer for Redact {
    fn transform(input: Batch) -> Result<Batch, PluginError> {
        let fields: Vec<String> = match config::get("fields")? {
            Some(_) => config::json("fields")?,
            None => Vec::new(),
        };
        let fields = fields.iter().map(|f| Path::parse(f)).collect::<Result<Vec<_>, _>>().map_err(PluginError::from)?;
        if let Some(path) = fields.iter().find(|p| p.is_multi()) {
            return Err(PluginError::InvalidConfig(format!("field path `{}` may not use wildcards", path.as_str())));
        }
        let emails = config::get("mask_emails")?.is_none_or(|v| v != "false");
        let cards = config::get("mask_cards")?.is_none_or(|v| v != "false");
        let values: Vec<Value> = json::parse_batch(&input)?;
        input
            .iter()
            .zip(values)
            .map(|(record, mut value)| {
                for path in &fields {
                    if let Some(slot) = path.get_mut(&mut value) {
                        *slot = Value::String(REDACTED.into());
                    }
                }
                scan(&mut value, emails, cards);
                record.with_json(&value)
            })
            .collect()
    }
}

plugboard_plugin_sdk::export_transformer!(Redact);
