//! Plugin key-value data for the runtime, in the `kv` tree as `namespace\0bucket\0key`.

use plugboard_runtime::KeyValueStore;

/// The runtime's [`KeyValueStore`] over the `kv` tree.
#[derive(Debug)]
pub(super) struct SledKeyValue(pub(super) ::sled::Tree);

fn kv_key(namespace: &str, bucket: &str, key: &str) -> Vec<u8> {
    format!("{namespace}\0{bucket}\0{key}").into_bytes()
}

impl KeyValueStore for SledKeyValue {
    fn get(&self, namespace: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(kv_key(namespace, bucket, key)).map(|v| v.map(|v| v.to_vec())).map_err(|e| e.to_string())
    }

    fn set(&self, namespace: &str, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.0.insert(kv_key(namespace, bucket, key), value).map(|_| ()).map_err(|e| e.to_string())
    }

    fn delete(&self, namespace: &str, bucket: &str, key: &str) -> Result<(), String> {
        self.0.remove(kv_key(namespace, bucket, key)).map(|_| ()).map_err(|e| e.to_string())
    }

    fn keys(&self, namespace: &str, bucket: &str, skip: usize, limit: usize) -> Result<Vec<String>, String> {
        let prefix = format!("{namespace}\0{bucket}\0");
        self.0
            .scan_prefix(prefix.as_bytes())
            .keys()
            .skip(skip)
            .take(limit)
            .map(|k| {
                k.map(|k| String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default()).into_owned())
                    .map_err(|e| e.to_string())
            })
            .collect()
    }
}
