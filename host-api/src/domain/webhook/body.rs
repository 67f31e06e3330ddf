//! A delivery's body as it arrives, turned into records: Plugboard's `{"records": [...]}`, one
//! event (a JSON value, or a form as Slack slash commands and Twilio send them), or CloudEvents in
//! any of the HTTP binding's three modes. Also what the scheme finds in it: the event type, the
//! sender's delivery id, a handshake to answer.

use super::verify::RequestHeaders;
use crate::domain::{DomainError, Result};
use base64::Engine as _;
use plugboard_runtime::flow::webhook::{BodyShape, Handshake, Locator};
use serde_json::{Map, Value};

/// Most fields of a form body; a form with more is refused (each would be a JSON field).
pub const MAX_FORM_FIELDS: usize = 1000;

/// Record headers: `(name, value)` pairs.
pub type Headers = Vec<(String, String)>;

/// A body read as records.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The records, in order.
    pub records: Vec<Value>,
    /// Each record's headers (as many entries as records).
    pub headers: Vec<Headers>,
    /// The whole JSON body, where the scheme finds fields (event mode).
    document: Option<Value>,
    /// Each CloudEvent's `(source, id, type)`.
    events: Vec<(String, String, String)>,
}

/// Reads `body` as `shape` says; `copy` names request headers every record carries.
///
/// # Errors
/// [`DomainError::Invalid`] for a body that is not what the shape expects.
pub fn parse(shape: BodyShape, headers: &RequestHeaders, copy: &[String], body: &[u8]) -> Result<Parsed> {
    let content_type = headers.get("content-type").unwrap_or_default().to_ascii_lowercase();
    let mut parsed = match shape {
        BodyShape::Records => records(body)?,
        BodyShape::Event if content_type.starts_with("application/x-www-form-urlencoded") => {
            let form = form(body)?;
            Parsed { records: vec![form.clone()], headers: vec![Vec::new()], document: Some(form), events: Vec::new() }
        }
        BodyShape::Event => {
            let value = json(body)?;
            Parsed {
                records: vec![value.clone()],
                headers: vec![Vec::new()],
                document: Some(value),
                events: Vec::new(),
            }
        }
        BodyShape::Cloudevents => cloudevents(&content_type, headers, body)?,
    };
    let copied: Headers = copy
        .iter()
        .filter_map(|name| {
            let name = name.to_ascii_lowercase();
            headers.get(&name).map(|value| (name, value.to_string()))
        })
        .collect();
    if !copied.is_empty() {
        for record_headers in &mut parsed.headers {
            record_headers.extend(copied.iter().cloned());
        }
    }
    Ok(parsed)
}

impl Parsed {
    /// Whether any record carries a header (runs without any store none).
    pub fn has_headers(&self) -> bool {
        self.headers.iter().any(|h| !h.is_empty())
    }

    /// The event types, by the scheme's locators (the first that finds one); one per CloudEvent.
    pub fn event_types(&self, locators: &[Locator], headers: &RequestHeaders) -> Vec<String> {
        if locators.contains(&Locator::CloudEvent) {
            return self.events.iter().map(|(_, _, kind)| kind.clone()).collect();
        }
        locators.iter().find_map(|locator| self.find(locator, headers)).into_iter().collect()
    }

    /// The sender's delivery id, by the scheme's locator (all events' `source`+`id` for a batch).
    pub fn delivery_id(&self, locator: &Locator, headers: &RequestHeaders) -> Option<String> {
        if *locator == Locator::CloudEvent {
            let ids: Vec<String> = self.events.iter().map(|(source, id, _)| format!("{source}\u{0}{id}")).collect();
            return (!ids.is_empty()).then(|| ids.join("\u{1}"));
        }
        self.find(locator, headers).filter(|id| !id.is_empty())
    }

    fn find(&self, locator: &Locator, headers: &RequestHeaders) -> Option<String> {
        match locator {
            Locator::Header(name) => headers.get(name).map(str::to_string),
            Locator::Field(pointer) => match self.document.as_ref()?.pointer(pointer)? {
                Value::String(text) => Some(text.clone()),
                other => Some(other.to_string()),
            },
            Locator::SignatureItem(_) | Locator::CloudEvent => None,
        }
    }

    /// Keeps the events (records) whose type is in `accepted`; answers how many are left.
    pub fn keep_events(&mut self, types: &[String], accepted: &[String]) -> usize {
        if types.len() == self.records.len() && !self.events.is_empty() {
            let records = std::mem::take(&mut self.records);
            let headers = std::mem::take(&mut self.headers);
            for ((record, record_headers), kind) in records.into_iter().zip(headers).zip(types) {
                if accepted.contains(kind) {
                    self.records.push(record);
                    self.headers.push(record_headers);
                }
            }
            return self.records.len();
        }
        if types.iter().any(|t| accepted.contains(t)) { self.records.len() } else { 0 }
    }

    /// The answer to a handshake this body (or its event type) is, if it is one.
    pub fn handshake(&self, handshake: &Handshake, event_types: &[String]) -> Option<Value> {
        match handshake {
            Handshake::Ping(event) => event_types.iter().any(|t| t == event).then(|| serde_json::json!({"pong": true})),
            Handshake::Challenge { kind, field } => {
                let document = self.document.as_ref()?;
                if document.get("type").and_then(Value::as_str) != Some(kind.as_str()) {
                    return None;
                }
                let challenge = document.get(field)?.clone();
                Some(serde_json::json!({ field.as_str(): challenge }))
            }
        }
    }
}

fn json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|err| DomainError::Invalid(format!("invalid JSON body: {err}")))
}

fn records(body: &[u8]) -> Result<Parsed> {
    let expected = || DomainError::Invalid("expected {\"records\": [...]} or a JSON array".into());
    let records = match json(body)? {
        Value::Array(records) => records,
        Value::Object(mut object) => match object.remove("records") {
            Some(Value::Array(records)) => records,
            _ => return Err(expected()),
        },
        _ => return Err(expected()),
    };
    Ok(Parsed { headers: vec![Vec::new(); records.len()], records, document: None, events: Vec::new() })
}

/// A form as a JSON object: a field given once is a string, given again an array of strings.
fn form(body: &[u8]) -> Result<Value> {
    let mut object = Map::new();
    for (count, (name, value)) in form_urlencoded::parse(body).enumerate() {
        if count >= MAX_FORM_FIELDS {
            return Err(DomainError::Invalid(format!("a form body has at most {MAX_FORM_FIELDS} fields")));
        }
        let value = Value::String(value.into_owned());
        match object.get_mut(name.as_ref()) {
            None => {
                object.insert(name.into_owned(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
        }
    }
    Ok(Value::Object(object))
}

/// The CloudEvents attributes that are not `data`, written as binary mode's `ce-*` headers.
fn attributes(event: &Map<String, Value>) -> Result<(Headers, (String, String, String))> {
    let text = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_string);
    let (Some(id), Some(source), Some(kind), Some(version)) =
        (text("id"), text("source"), text("type"), text("specversion"))
    else {
        return Err(DomainError::Invalid("a CloudEvent needs id, source, type and specversion".into()));
    };
    if !version.starts_with('1') {
        return Err(DomainError::Invalid(format!("CloudEvents specversion {version} is not supported (1.0 is)")));
    }
    let mut headers = Vec::new();
    for (name, value) in event {
        if name == "data" || name == "data_base64" {
            continue;
        }
        let value = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        headers.push((format!("ce-{name}"), value));
    }
    Ok((headers, (source, id, kind)))
}

/// An event's `data` as a record value: JSON as it is; `data_base64` decoded (JSON if it parses,
/// else a string).
fn event_data(event: &Map<String, Value>) -> Result<Value> {
    if let Some(encoded) = event.get("data_base64").and_then(Value::as_str) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| DomainError::Invalid("a CloudEvent's data_base64 is not base64".into()))?;
        return Ok(bytes_value(&bytes));
    }
    Ok(event.get("data").cloned().unwrap_or(Value::Null))
}

fn bytes_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn cloudevents(content_type: &str, headers: &RequestHeaders, body: &[u8]) -> Result<Parsed> {
    let mut parsed = Parsed::default();
    let mut push = |event: &Map<String, Value>| -> Result<()> {
        let (record_headers, identity) = attributes(event)?;
        parsed.records.push(event_data(event)?);
        parsed.headers.push(record_headers);
        parsed.events.push(identity);
        Ok(())
    };
    if content_type.starts_with("application/cloudevents-batch+json") {
        let Value::Array(events) = json(body)? else {
            return Err(DomainError::Invalid("a CloudEvents batch is a JSON array of events".into()));
        };
        for event in &events {
            let Value::Object(event) = event else {
                return Err(DomainError::Invalid("each CloudEvent of a batch is a JSON object".into()));
            };
            push(event)?;
        }
    } else if content_type.starts_with("application/cloudevents+json") {
        let Value::Object(event) = json(body)? else {
            return Err(DomainError::Invalid("a structured CloudEvent is a JSON object".into()));
        };
        push(&event)?;
    } else {
        // Binary mode: the attributes are `ce-*` headers, percent-encoded (HTTP binding 3.1.3.2),
        // and the body is the data.
        let mut event = Map::new();
        for (name, value) in headers.iter() {
            if let Some(attribute) = name.strip_prefix("ce-") {
                let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned();
                event.insert(attribute.to_string(), Value::String(decoded));
            }
        }
        if !content_type.is_empty() {
            event.insert("datacontenttype".into(), Value::String(content_type.to_string()));
        }
        let (record_headers, identity) = attributes(&event)?;
        parsed.records.push(bytes_value(body));
        parsed.headers.push(record_headers);
        parsed.events.push(identity);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> RequestHeaders {
        RequestHeaders::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }

    #[test]
    fn a_form_becomes_one_object_and_a_flood_of_fields_is_refused() {
        let h = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        let parsed = parse(BodyShape::Event, &h, &[], b"command=%2Fdeploy&text=now&a=1&a=2").unwrap();
        assert_eq!(parsed.records, vec![serde_json::json!({"command": "/deploy", "text": "now", "a": ["1", "2"]})]);
        let flood: String = (0..=MAX_FORM_FIELDS).map(|i| format!("f{i}=x&")).collect();
        assert!(parse(BodyShape::Event, &h, &[], flood.as_bytes()).is_err());
    }

    #[test]
    fn binary_cloudevents_carry_their_attributes_as_headers() {
        let h = headers(&[
            ("content-type", "application/json"),
            ("ce-id", "1"),
            ("ce-source", "/s%20x"),
            ("ce-type", "t"),
            ("ce-specversion", "1.0"),
        ]);
        let parsed = parse(BodyShape::Cloudevents, &h, &[], b"{\"n\":1}").unwrap();
        assert_eq!(parsed.records, vec![serde_json::json!({"n": 1})]);
        assert!(parsed.headers[0].contains(&("ce-type".into(), "t".into())));
        assert_eq!(parsed.delivery_id(&Locator::CloudEvent, &h).as_deref(), Some("/s x\u{0}1"), "percent-decoded");
        let missing = headers(&[("content-type", "application/json"), ("ce-id", "1")]);
        assert!(parse(BodyShape::Cloudevents, &missing, &[], b"{}").is_err());
    }
}
