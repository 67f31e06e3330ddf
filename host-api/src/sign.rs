//! `plugboard keygen | sign | verify | inspect`: publisher keys and signed plugin files.

use anyhow::Context;
use plugboard_runtime::signing::{self, PublicKey, SecretKey, TrustStore, VerifyOptions};
use plugboard_runtime::{Error, Manifest};
use std::io::Write;
use std::path::Path;

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes a new key pair and prints the key id.
pub fn keygen(path: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let key = SecretKey::generate()?;
    let public = key.write_files(path)?;
    writeln!(out, "secret key: {} (keep it private)", path.display())?;
    writeln!(out, "public key: {}", public.display())?;
    writeln!(out, "key id:     {}", key.public().key_id())?;
    Ok(())
}

/// Signs `input` with the manifest embedded.
pub fn sign(key: &Path, manifest: &Path, input: &Path, to: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let key = SecretKey::from_file(key)?;
    let text = std::fs::read_to_string(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let manifest = Manifest::from_toml(&text).with_context(|| format!("in {}", manifest.display()))?;
    let signed = signing::sign(&read(input)?, &manifest, &key)?;
    std::fs::write(to, &signed).with_context(|| format!("cannot write {}", to.display()))?;
    writeln!(
        out,
        "signed {} {} ({}) with key {} -> {}",
        manifest.name,
        manifest.version,
        manifest.kind.as_str(),
        key.public().key_id(),
        to.display()
    )?;
    Ok(())
}

/// Verifies `file` against the single key in `pubkey`. The outer error is a usage problem (a file
/// that cannot be read, a bad key file); the inner one is the verdict.
pub fn verify(pubkey: &Path, file: &Path, out: &mut dyn Write) -> anyhow::Result<Result<(), String>> {
    let key = PublicKey::from_file(pubkey)?;
    let mut trust = TrustStore::new();
    trust.add("command line", key)?;
    match signing::verify(&read(file)?, &trust, VerifyOptions::default()) {
        Ok(verified) => {
            writeln!(
                out,
                "valid: {} {} signed by key {}, digest {}",
                verified.manifest.name,
                verified.manifest.version,
                verified.key_id.unwrap_or_default(),
                verified.digest
            )?;
            Ok(Ok(()))
        }
        Err(Error::Signature(reason)) => Ok(Err(format!("signature check failed: {reason} ({})", reason.reason()))),
        Err(err) => Ok(Err(format!("{err} ({})", err.code()))),
    }
}

/// Prints what a plugin file holds, without verifying it.
pub fn inspect(file: &Path, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let inspection = signing::inspect(&read(file)?)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&inspection)?)?;
        return Ok(());
    }
    let manifest = inspection.manifest.as_ref();
    writeln!(out, "file:      {}", file.display())?;
    writeln!(out, "format:    {}", if inspection.is_component { "component" } else { "core module" })?;
    writeln!(out, "digest:    sha256:{}", inspection.digest)?;
    writeln!(out, "world:     {}", inspection.world.as_deref().unwrap_or("none (not a Plugboard plugin)"))?;
    writeln!(out, "signed by: {}", inspection.key_id.as_deref().unwrap_or("nobody (unsigned)"))?;
    match manifest {
        Some(m) => {
            writeln!(out, "plugin:    {} {} ({})", m.name, m.version, m.kind.as_str())?;
            if !m.description.is_empty() {
                writeln!(out, "about:     {}", m.description)?;
            }
            writeln!(
                out,
                "requests:  hosts {:?}, config {:?}, secrets {:?}",
                m.capabilities.outbound_hosts, m.capabilities.config_keys, m.capabilities.secret_keys
            )?;
        }
        None => writeln!(out, "manifest:  none embedded")?,
    }
    writeln!(out, "imports:")?;
    for name in &inspection.imports {
        writeln!(out, "  {name}")?;
    }
    writeln!(out, "exports:")?;
    for name in &inspection.exports {
        writeln!(out, "  {name}")?;
    }
    Ok(())
}
