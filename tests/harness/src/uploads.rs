//! Plugin uploads under load: a publisher key of the harness's own, and new versions of a plugin
//! signed with it and uploaded from time to time, each of which must survive every later restart
//! once the server answered it.
//!
//! The plugin is the `json-mapper` sample's component under another name, `harness-mapper`, with
//! versions `1.0.<n>`. The harness cannot build guests, so it takes the component the sample build
//! already produced: `host-api`'s build script compiles every sample into
//! `<target>/wasm-guests/wasm32-wasip2/release/` whenever the `plugboard` binary is built, and a
//! direct `cargo build` in `sample-plugins/` puts it in `sample-plugins/target/`. Signing goes
//! through `plugboard sign`, as a publisher would; `plugboard sign` replaces any manifest and
//! signature already embedded, so a signed component would do too. When no component is found the
//! uploads are skipped with a warning: they are one of several loads, not the point of the run.

use crate::child::Live;
use crate::report::{Refusals, is_retryable};
use crate::writers::Admin;
use anyhow::{Context, bail};
use reqwest::Method;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The name the uploads are published under.
pub const PLUGIN: &str = "harness-mapper";

/// The file name of the json-mapper sample's component.
const COMPONENT: &str = "json_mapper.wasm";

/// The json-mapper component: `explicit`, else `PLUGBOARD_HARNESS_COMPONENT`, else the newest of the
/// places the sample build writes it (under `CARGO_TARGET_DIR` too, when that is set).
pub fn find_component(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) =
        explicit.map(Path::to_path_buf).or_else(|| std::env::var_os("PLUGBOARD_HARNESS_COMPONENT").map(PathBuf::from))
    {
        return path.is_file().then_some(path);
    }
    let workspace = crate::child::workspace();
    let mut targets = vec![workspace.join("target")];
    targets.extend(std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from));
    let mut candidates: Vec<PathBuf> =
        targets.iter().map(|t| t.join("wasm-guests/wasm32-wasip2/release").join(COMPONENT)).collect();
    candidates.push(workspace.join("sample-plugins/target/wasm32-wasip2/release").join(COMPONENT));
    candidates
        .into_iter()
        .filter_map(|path| Some((std::fs::metadata(&path).ok()?.modified().ok()?, path)))
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, path)| path)
}

/// The manifest of version `1.0.<n>`: json-mapper's, under the harness's plugin name.
fn manifest(n: u64) -> String {
    format!(
        "name = \"{PLUGIN}\"\nversion = \"1.0.{n}\"\nkind = \"transformer\"\n\
         description = \"The json-mapper sample, re-signed and uploaded by the load harness.\"\n\
         author = \"plugboard-harness\"\n\n[capabilities]\nconfig_keys = [\"mapping\", \"drop_missing\"]\n"
    )
}

/// Runs `plugboard ARGS` and answers its standard output.
async fn plugboard(binary: &Path, args: &[&std::ffi::OsStr]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new(binary)
        .args(args)
        .output()
        .await
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        bail!("plugboard {args:?} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The uploader and its counts.
#[derive(Debug)]
pub struct Uploader {
    binary: PathBuf,
    component: PathBuf,
    key: PathBuf,
    dir: PathBuf,
    /// Versions sent.
    pub attempted: AtomicU64,
    /// Versions answered 201 (or 200: the same file was stored before).
    pub acknowledged: Mutex<BTreeSet<u64>>,
    /// Uploads answered otherwise or not answered.
    pub unacknowledged: AtomicU64,
    /// Uploads refused for good, or versions that could not be signed.
    pub refusals: Refusals,
    /// Checks done after restarts and at the end.
    pub verified: AtomicU64,
}

impl Uploader {
    /// Generates a publisher key in `dir` with `plugboard keygen` and trusts it on the server
    /// (`POST /v1/keys` with the hex of the `.pub` file's bytes).
    ///
    /// # Errors
    /// When a command fails or the key is not trusted.
    pub async fn prepare(
        binary: &Path,
        component: PathBuf,
        dir: &Path,
        admin: &Admin,
        base: &str,
    ) -> anyhow::Result<Uploader> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let key = dir.join("key");
        plugboard(binary, &["keygen".as_ref(), "--out".as_ref(), key.as_os_str()]).await?;
        let public = std::fs::read(dir.join("key.pub")).context("the public key file")?;
        let body = serde_json::json!({"name": "harness", "public_key": hex::encode(public)});
        admin.expect(Method::POST, &format!("{base}/v1/keys"), Some(&body)).await?;
        Ok(Uploader {
            binary: binary.to_path_buf(),
            component,
            key,
            dir: dir.to_path_buf(),
            attempted: AtomicU64::new(0),
            acknowledged: Mutex::default(),
            unacknowledged: AtomicU64::new(0),
            refusals: Refusals::default(),
            verified: AtomicU64::new(0),
        })
    }

    /// Signs version `1.0.<n>` with `plugboard sign`; answers the signed file's bytes.
    async fn sign(&self, n: u64) -> anyhow::Result<Vec<u8>> {
        let manifest_path = self.dir.join(format!("{PLUGIN}-{n}.toml"));
        let signed_path = self.dir.join(format!("{PLUGIN}-{n}.wasm"));
        std::fs::write(&manifest_path, manifest(n))?;
        plugboard(
            &self.binary,
            &[
                "sign".as_ref(),
                "--key".as_ref(),
                self.key.as_os_str(),
                "--manifest".as_ref(),
                manifest_path.as_os_str(),
                self.component.as_os_str(),
                "-o".as_ref(),
                signed_path.as_os_str(),
            ],
        )
        .await?;
        let signed = std::fs::read(&signed_path)?;
        let _ = std::fs::remove_file(&manifest_path);
        let _ = std::fs::remove_file(&signed_path);
        Ok(signed)
    }

    /// Uploads a new version every `every` until `stop`. A version whose answer was lost is sent
    /// again (the same file: answered 200 if the first attempt was stored) up to three times.
    pub async fn run(self: Arc<Self>, admin: Admin, live: Live, every: Duration, stop: Arc<AtomicBool>) {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let signed = match self.sign(n).await {
                Ok(signed) => signed,
                Err(err) => {
                    self.refusals.note(format!("signing {PLUGIN} 1.0.{n}: {err:#}"));
                    return;
                }
            };
            for _ in 0..3 {
                let Some(endpoint) = live.wait_up(Duration::from_secs(60)).await else { continue };
                self.attempted.fetch_add(1, Ordering::Relaxed);
                let sent = admin
                    .client
                    .post(format!("{}/v1/plugins", endpoint.base))
                    .bearer_auth(&admin.token)
                    .header("content-type", "application/wasm")
                    .body(signed.clone())
                    .send()
                    .await;
                match sent {
                    Ok(answer) if answer.status().is_success() => {
                        self.acknowledged.lock().unwrap_or_else(PoisonError::into_inner).insert(n);
                        break;
                    }
                    Ok(answer) => {
                        self.unacknowledged.fetch_add(1, Ordering::Relaxed);
                        let status = answer.status().as_u16();
                        if !is_retryable(status) {
                            let text = answer.text().await.unwrap_or_default();
                            self.refusals.note(format!("upload of {PLUGIN} 1.0.{n}: {status} {text}"));
                            break;
                        }
                    }
                    Err(_) => {
                        self.unacknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Checks that `GET /v1/plugins/harness-mapper` lists every version acknowledged before the
    /// call. Answers the violations, each naming `when`.
    pub async fn verify(&self, admin: &Admin, base: &str, when: &str) -> Vec<String> {
        let acknowledged = self.acknowledged.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if acknowledged.is_empty() {
            return Vec::new();
        }
        self.verified.fetch_add(1, Ordering::Relaxed);
        let plugin = match admin.expect(Method::GET, &format!("{base}/v1/plugins/{PLUGIN}"), None).await {
            Ok(plugin) => plugin,
            Err(err) => return vec![format!("{when}: cannot read the {PLUGIN} plugin: {err:#}")],
        };
        let listed: BTreeSet<String> = plugin["versions"]
            .as_array()
            .map(|versions| versions.iter().filter_map(|v| v["version"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let missing: Vec<String> =
            acknowledged.iter().map(|n| format!("1.0.{n}")).filter(|v| !listed.contains(v)).collect();
        if missing.is_empty() {
            Vec::new()
        } else {
            vec![format!("{when}: acknowledged uploads of {PLUGIN} are missing: {}", missing.join(", "))]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_names_the_harness_plugin_and_version() {
        let text = manifest(7);
        assert!(text.contains("name = \"harness-mapper\"\n"));
        assert!(text.contains("version = \"1.0.7\"\n"));
        assert!(text.contains("kind = \"transformer\"\n"));
    }
}
