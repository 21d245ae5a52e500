//! The key-value seam: what the app needs of a store.
//!
//! Spin's key-value interface has no TTL and no reliable compare-and-swap; what
//! the app builds on is get / set / delete / exists and an atomic `increment`
//! (Redis `INCRBY`; one transaction in Spin's SQLite store). Redis runs
//! commands one at a time, so every replica sees one order of these
//! single-key operations; the multi-step operations built on them (`lock`,
//! `upkeep`, `session`, `transaction`) each argue their safety from that.

/// The store could not be reached or refused the operation. Shown as a 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key-value store error: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

pub trait KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// Adds `delta` to the counter at `key` (absent counts as 0) and returns
    /// the new value, atomically. A counter is read only through this: its
    /// stored form differs between backends.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
}

/// Reads a JSON record. A record that does not parse (hostile or stale contents)
/// is reported as `Corrupt` so callers can treat it as absent.
pub enum Record<T> {
    Found(T),
    Missing,
    Corrupt,
}

pub fn get_json<T: serde::de::DeserializeOwned>(
    kv: &dyn KeyValue,
    key: &str,
) -> Result<Record<T>, StoreError> {
    Ok(match kv.get(key)? {
        None => Record::Missing,
        // UTF-8 checked once for the whole record: `from_slice` checks every
        // string again, which costs a fifth of parsing a session.
        Some(bytes) => match std::str::from_utf8(&bytes).map(serde_json::from_str) {
            Ok(Ok(v)) => Record::Found(v),
            _ => Record::Corrupt,
        },
    })
}

pub fn set_json<T: serde::Serialize>(
    kv: &dyn KeyValue,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError(format!("encode: {e}")))?;
    kv.set(key, &bytes)
}
