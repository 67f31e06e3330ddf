//! Snapshot tests of manifests, as Spin does: every `tests/ui/manifests/*.toml` parses to the
//! sibling `.json` or fails with the text in the sibling `.err`. Run with `PLUGBOARD_BLESS=1` to
//! write the expected files after an intended change (then review the diff).

use plugboard_runtime::Manifest;
use std::path::{Path, PathBuf};

#[test]
fn manifests_match_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/manifests");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("snapshot dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "the snapshot set is missing files");
    let bless = std::env::var_os("PLUGBOARD_BLESS").is_some();
    for input in inputs {
        let text = std::fs::read_to_string(&input).expect("readable");
        let (expected_path, other_path, actual) = match Manifest::from_toml(&text) {
            Ok(manifest) => (
                input.with_extension("json"),
                input.with_extension("err"),
                serde_json::to_string_pretty(&manifest).expect("json") + "\n",
            ),
            Err(err) => (input.with_extension("err"), input.with_extension("json"), format!("{err}\n")),
        };
        if bless {
            std::fs::write(&expected_path, &actual).expect("bless");
            let _ = std::fs::remove_file(&other_path);
            continue;
        }
        assert!(!other_path.exists(), "{} should not exist: the outcome changed", other_path.display());
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} is missing (run with PLUGBOARD_BLESS=1)", expected_path.display()));
        assert_eq!(actual, expected, "snapshot {}", input.display());
    }
}
