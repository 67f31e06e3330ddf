//! `http-source`: reads JSON records from an HTTP endpoint, following pagination.
//!
//! Config:
//! - `url` (required): the first page;
//! - `records_path`: where the records are in a page, default `$` (the page is an array) — e.g.
//!   `$.data`;
//! - `next_path`: where the next page's URL is, e.g. `$.next`; absent, `null` or empty means last
//!   page. A relative URL (`/orders?page=2`) is resolved against `url`'s origin;
//! - secret `auth_header` (optional): sent as the `Authorization` header, never logged. Better:
//!   the operator binds a connection as `api` (`plugboard grant http-source --use-connection
//!   api=CONNECTION`), and the host adds its credential — a token, an API key, an OAuth access
//!   token it fetches and renews — to the requests to that connection's hosts; this plugin never
//!   sees it.
//!
//! `read(cursor, max)` starts at `cursor` (a page URL) or `url`, follows next links until it holds
//! `max` records or runs out of pages, and returns the next page's URL as the cursor. It stops at a
//! page boundary, so no record is skipped or repeated between reads. 429 and 5xx answers and
//! transport failures are `retryable` (`retry-after` when the answer's `Retry-After` says how long
//! to wait); other non-2xx answers are `internal`.

use plugboard_plugin_sdk::path::Path;
use plugboard_plugin_sdk::{Page, PluginError, Record, Source, config, http, log};
use serde_json::Value;

/// Pages fetched in one read at most, so a cyclic `next` link cannot loop forever.
const MAX_PAGES_PER_READ: usize = 100;

fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

fn fetch_page(url: &str, auth: Option<&str>) -> Result<Value, PluginError> {
    let mut headers = vec![("accept", "application/json")];
    if let Some(auth) = auth {
        headers.push(("authorization", auth));
    }
    let response = http::get(url, &headers)?;
    match response.status {
        200..=299 => serde_json::from_slice(&response.body)
            .map_err(|err| PluginError::Internal(format!("GET {url}: body is not JSON: {err}"))),
        429 | 500..=599 => Err(response.retry_error(format!("GET {url}: status {}", response.status))),
        status => Err(PluginError::Internal(format!("GET {url}: status {status}"))),
    }
}

struct HttpSource;

impl Source for HttpSource {
    fn read(cursor: Option<String>, max_records: u32) -> Result<Page, PluginError> {
        let base = config::require("url")?;
        let parse = |key: &str, default: Option<&str>| -> Result<Option<Path>, PluginError> {
            config::get(key)?
                .or(default.map(str::to_string))
                .map(|text| Path::parse(&text).map_err(PluginError::from))
                .transpose()
        };
        let records_path = parse("records_path", Some("$"))?
            .ok_or_else(|| PluginError::Internal("records_path has a default".into()))?;
        let next_path = parse("next_path", None)?;
        let auth = config::get("auth_header")?;

        let mut url = Some(cursor.unwrap_or(base.clone()));
        let mut records = Vec::new();
        let mut pages = 0;
        while let Some(current) = url.take() {
            if records.len() >= max_records as usize || pages >= MAX_PAGES_PER_READ {
                url = Some(current);
                break;
            }
            let page = fetch_page(&current, auth.as_deref())?;
            pages += 1;
            match records_path.get(&page) {
                Some(Value::Array(items)) => {
                    for item in &items {
                        records.push(Record::from_json(item)?);
                    }
                }
                Some(Value::Null) | None => {}
                Some(_) => {
                    return Err(PluginError::Internal(format!(
                        "GET {current}: `{}` is not an array",
                        records_path.as_str()
                    )));
                }
            }
            url = next_path
                .as_ref()
                .and_then(|path| path.get(&page))
                .and_then(|next| next.as_str().map(str::to_string))
                .filter(|next| !next.is_empty())
                .map(|next| if next.starts_with('/') { format!("{}{next}", origin(&base)) } else { next });
        }
        log::info(&format!("read {} records from {pages} pages", records.len()));
        Ok(Page { records, next_cursor: url })
    }
}

plugboard_plugin_sdk::export_source!(HttpSource);
