//! The dashboard at `/ui`: plain ES modules, HTML and CSS embedded in the binary at build time
//! (`host-api/ui/`, see `build.rs`), so `plugboard serve` needs nothing installed or fetched.
//!
//! The page is a client of the same `/v1` API as the CLI, with the same token and role checks; the
//! files themselves are public (they hold no data). Every response of the server carries the
//! headers of [`security_headers`]: a strict Content-Security-Policy (scripts only from this
//! origin, no inline script or style, no framing), `X-Frame-Options: DENY`, `nosniff` and
//! `no-referrer`.
//!
//! For working on the dashboard, `PLUGBOARD_UI_DIR=host-api/ui` makes the server read the files
//! from that directory on every request instead (paths are checked to stay inside it).

use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// The Content-Security-Policy of every answer: only this origin's scripts, styles and API; images
/// from this origin or `data:` (the favicon); no plugins, frames, base or foreign form targets.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Middleware: adds the security headers to every response that does not set them itself.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    response
}

/// `GET /`: the dashboard.
pub async fn root() -> Redirect {
    Redirect::to("/ui/")
}

/// `GET /ui` and `GET /ui/`: the dashboard's page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{*path}`: one of the dashboard's files.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(body) = contents(path) else {
        return (StatusCode::NOT_FOUND, "no such dashboard file").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..12]));
    let unchanged = request.get(header::IF_NONE_MATCH).is_some_and(|tag| tag.as_bytes() == etag.as_bytes());
    let status = if unchanged { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    let headers = [
        (header::CONTENT_TYPE, content_type(path)),
        // Revalidated on every load (the ETag makes that a 304), so an upgrade is seen at once.
        (header::CACHE_CONTROL, "no-cache"),
    ];
    let mut response =
        if unchanged { (status, headers).into_response() } else { (status, headers, body).into_response() };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The file at `path`: from `PLUGBOARD_UI_DIR` when set, else embedded.
fn contents(path: &str) -> Option<Cow<'static, [u8]>> {
    match dev_dir() {
        Some(dir) => read_inside(dir, path).map(Cow::Owned),
        None => UI_ASSETS.iter().find(|(name, _)| *name == path).map(|(_, bytes)| Cow::Borrowed(*bytes)),
    }
}

fn dev_dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("PLUGBOARD_UI_DIR")?;
        let dir = std::fs::canonicalize(dir).ok()?;
        tracing::warn!(dir = %dir.display(), "serving the dashboard from disk (PLUGBOARD_UI_DIR)");
        Some(dir)
    })
    .as_ref()
}

/// Reads `path` under `dir`, refusing anything that resolves outside it.
fn read_inside(dir: &std::path::Path, path: &str) -> Option<Vec<u8>> {
    let file = std::fs::canonicalize(dir.join(path)).ok()?;
    if !file.starts_with(dir) || !file.is_file() {
        return None;
    }
    std::fs::read(file).ok()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_a_known_type_and_the_page_loads_only_its_own_modules() {
        assert!(UI_ASSETS.iter().any(|(name, _)| *name == "index.html"));
        for (name, _) in UI_ASSETS {
            assert_ne!(content_type(name), "application/octet-stream", "{name}");
        }
        let index = String::from_utf8_lossy(UI_ASSETS.iter().find(|(n, _)| *n == "index.html").unwrap().1);
        assert!(!index.contains("<script>"), "no inline script: the CSP forbids it");
        assert!(!index.contains("http://") && !index.contains("https://"), "nothing from outside");
    }

    #[test]
    fn files_outside_the_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.js"), "x").unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(read_inside(&dir, "a.js").as_deref(), Some(&b"x"[..]));
        assert_eq!(read_inside(&dir, "../../etc/passwd"), None);
        assert_eq!(read_inside(&dir, "/etc/passwd"), None);
    }
}
