//! A real browser for the dashboard tests: Debian's headless Chromium driven by chromedriver over
//! the W3C WebDriver protocol, plus chromedriver's two extensions the tests need — the browser's
//! console log (`/se/log`, so a script error fails a test) and DevTools commands
//! (`/goog/cdp/execute`, for an exact viewport at laptop and phone widths).
//!
//! The client is the dozen WebDriver endpoints the tests use, over `reqwest`; a WebDriver crate
//! would still need both extensions written by hand.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs them (`apt-get install chromium chromium-driver`, done by `.ci/run`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// chromedriver, same package set.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a wait for an element or a text lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A failed WebDriver call or wait, with what the test was doing.
pub type Result<T> = std::result::Result<T, String>;

/// A running chromedriver and one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
}

/// A found element.
#[derive(Debug, Clone)]
pub struct Element(String);

/// One console message the browser logged.
#[derive(Debug, Clone)]
pub struct ConsoleEntry {
    /// `SEVERE`, `WARNING`, `INFO`…
    pub level: String,
    /// The text (with its source URL and position).
    pub message: String,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session with a fresh profile.
    ///
    /// # Errors
    /// When Chromium or chromedriver is missing (with how to install them) or does not start.
    pub async fn start() -> Result<Browser> {
        for program in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(program).exists() {
                return Err(format!(
                    "{program} is missing: the dashboard tests run in Debian's Chromium \
                     (`apt-get install chromium chromium-driver`, as .ci/run does)"
                ));
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {CHROMEDRIVER}: {e}"))?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().map_err(|e| e.to_string())?;
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser { driver, http, session: String::new(), base, _profile: profile };
        let started = Instant::now();
        while browser.http.get(format!("{}/status", browser.base)).send().await.is_err() {
            if started.elapsed() > WAIT {
                return Err("chromedriver did not answer".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Root in a container needs --no-sandbox; the closed network needs background networking
        // (updates, sync, field trials) off, or Chromium's refused connections fill the log.
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--window-size=1280,800".into(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let answer = browser.call(reqwest::Method::POST, "/session", Some(capabilities)).await?;
        browser.session = answer["sessionId"].as_str().ok_or("no session id")?.to_string();
        Ok(browser)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let value: Value = response.json().await.map_err(|e| format!("{method} {path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status} {}", value["value"]));
        }
        Ok(value["value"].clone())
    }

    async fn session_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        self.call(method, &format!("/session/{}{path}", self.session), body).await
    }

    /// Sets the viewport to exactly `width` × `height` CSS pixels (a phone's, say).
    ///
    /// # Errors
    /// A WebDriver failure.
    pub async fn viewport(&self, width: u32, height: u32, mobile: bool) -> Result<()> {
        let params = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile});
        self.session_call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": params})),
        )
        .await
        .map(drop)
    }

    /// Opens `url`.
    ///
    /// # Errors
    /// A WebDriver failure.
    pub async fn open(&self, url: &str) -> Result<()> {
        self.session_call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await.map(drop)
    }

    /// Every element matching the CSS `selector` now.
    ///
    /// # Errors
    /// A WebDriver failure.
    pub async fn all(&self, selector: &str) -> Result<Vec<Element>> {
        let body = json!({"using": "css selector", "value": selector});
        let found = self.session_call(reqwest::Method::POST, "/elements", Some(body)).await?;
        Ok(found
            .as_array()
            .map(|list| list.iter().filter_map(|e| e[ELEMENT_KEY].as_str().map(|id| Element(id.to_string()))).collect())
            .unwrap_or_default())
    }

    /// The first element matching `selector`, waiting up to [`WAIT`] for it to appear.
    ///
    /// # Errors
    /// When none appears in time.
    pub async fn find(&self, selector: &str) -> Result<Element> {
        let started = Instant::now();
        loop {
            if let Some(element) = self.all(selector).await?.into_iter().next() {
                return Ok(element);
            }
            if started.elapsed() > WAIT {
                return Err(format!("no element `{selector}` within {WAIT:?}; page text:\n{}", self.page_text().await));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of the first `selector` element contains `expected`; answers it.
    ///
    /// # Errors
    /// When it does not in time.
    pub async fn wait_text(&self, selector: &str, expected: &str) -> Result<String> {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            if let Some(element) = self.all(selector).await?.into_iter().next() {
                // The element may be replaced between finding and reading it: look again.
                if let Ok(text) = self.text(&element).await {
                    if text.contains(expected) {
                        return Ok(text);
                    }
                    last = text;
                }
            }
            if started.elapsed() > WAIT {
                return Err(format!("`{selector}` never showed `{expected}`; it shows:\n{last}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks `element`.
    ///
    /// # Errors
    /// A WebDriver failure (not clickable, gone).
    pub async fn click(&self, element: &Element) -> Result<()> {
        self.session_call(reqwest::Method::POST, &format!("/element/{}/click", element.0), None).await.map(drop)
    }

    /// Finds `selector` (waiting) and clicks it.
    ///
    /// # Errors
    /// As [`Browser::find`] and [`Browser::click`].
    pub async fn click_on(&self, selector: &str) -> Result<()> {
        let element = self.find(selector).await?;
        self.click(&element).await
    }

    /// Types `text` into `element` (`\u{E007}` is Enter; a file input takes a path).
    ///
    /// # Errors
    /// A WebDriver failure.
    pub async fn type_into(&self, element: &Element, text: &str) -> Result<()> {
        let path = format!("/element/{}/value", element.0);
        self.session_call(reqwest::Method::POST, &path, Some(json!({"text": text}))).await.map(drop)
    }

    /// Clears `selector` (waiting for it) and types `text` into it.
    ///
    /// # Errors
    /// As [`Browser::find`] and [`Browser::type_into`].
    pub async fn fill(&self, selector: &str, text: &str) -> Result<()> {
        let element = self.find(selector).await?;
        self.session_call(reqwest::Method::POST, &format!("/element/{}/clear", element.0), None).await?;
        self.type_into(&element, text).await
    }

    /// The rendered text of `element`.
    ///
    /// # Errors
    /// A WebDriver failure.
    pub async fn text(&self, element: &Element) -> Result<String> {
        let text = self.session_call(reqwest::Method::GET, &format!("/element/{}/text", element.0), None).await?;
        Ok(text.as_str().unwrap_or_default().to_string())
    }

    /// A DOM property of `element` (`checked`, `value`…).
    ///
    /// # Errors
    /// A WebDriver failure.
    pub async fn property(&self, element: &Element, name: &str) -> Result<Value> {
        self.session_call(reqwest::Method::GET, &format!("/element/{}/property/{name}", element.0), None).await
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; answers its return.
    ///
    /// # Errors
    /// A WebDriver failure or a script exception.
    pub async fn script(&self, script: &str, args: Value) -> Result<Value> {
        let body = json!({"script": script, "args": args});
        self.session_call(reqwest::Method::POST, "/execute/sync", Some(body)).await
    }

    /// Runs an async `script`: it calls `arguments[arguments.length - 1]` with its result.
    ///
    /// # Errors
    /// A WebDriver failure or a script exception.
    pub async fn script_async(&self, script: &str, args: Value) -> Result<Value> {
        let body = json!({"script": script, "args": args});
        self.session_call(reqwest::Method::POST, "/execute/async", Some(body)).await
    }

    /// The whole page's visible text (for failure messages).
    pub async fn page_text(&self) -> String {
        self.script("return document.body ? document.body.innerText : ''", json!([]))
            .await
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|e| format!("(unreadable: {e})"))
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    ///
    /// # Errors
    /// A WebDriver or file failure.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        use base64::Engine as _;
        let data = self.session_call(reqwest::Method::GET, "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot: {e}"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The console messages logged since the last call (chromedriver hands each out once).
    ///
    /// # Errors
    /// A WebDriver failure.
    pub async fn console(&self) -> Result<Vec<ConsoleEntry>> {
        let entries = self.session_call(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"}))).await?;
        Ok(entries
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| ConsoleEntry {
                        level: e["level"].as_str().unwrap_or_default().to_string(),
                        message: e["message"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl Drop for Browser {
    /// Ends the session (which closes Chromium: it is chromedriver's child only until then) with a
    /// plain blocking request, as a failed test drops the browser outside any runtime, then stops
    /// chromedriver.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        let address = self.base.trim_start_matches("http://");
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where the dashboard tests put their screenshots: `target/artifacts/dashboard/`.
pub fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts/dashboard")
}
