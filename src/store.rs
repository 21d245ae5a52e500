//! The key-value seam: what the app needs of a store, and an in-memory store for tests.
//!
//! Spin's key-value interface has no TTL and no reliable compare-and-swap; what
//! the app builds on is get / set / delete / exists and an atomic `increment`
//! (Redis `INCRBY`; one transaction in Spin's SQLite store). Redis runs
//! commands one at a time, so every replica sees one order of these
//! single-key operations; the multi-step operations built on them (`lock`,
//! `upkeep`, `session`, `transaction`) each argue their safety from that.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

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

/// In-memory store that counts reads and writes, and can be switched off to
/// simulate an unreachable backend.
#[derive(Default)]
pub struct MemoryStore {
    map: RefCell<BTreeMap<String, Vec<u8>>>,
    pub reads: Cell<usize>,
    pub writes: Cell<usize>,
    pub down: Cell<bool>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.get() {
            Err(StoreError("connection refused".into()))
        } else {
            Ok(())
        }
    }

    /// A copy of everything, for asserting that a failure left the store as it was.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.map.borrow().clone()
    }

    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.map
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl KeyValue for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.reads.set(self.reads.get() + 1);
        Ok(self.map.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.check()?;
        self.writes.set(self.writes.get() + 1);
        self.map.borrow_mut().insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check()?;
        self.writes.set(self.writes.get() + 1);
        self.map.borrow_mut().remove(key);
        Ok(())
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.reads.set(self.reads.get() + 1);
        Ok(self.map.borrow().contains_key(key))
    }

    /// Stored as 8 little-endian bytes, as Spin's SQLite store keeps counters.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.check()?;
        self.writes.set(self.writes.get() + 1);
        let mut map = self.map.borrow_mut();
        let current = match map.get(key) {
            None => 0,
            Some(bytes) => i64::from_le_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError("not a counter".into()))?,
            ),
        };
        let next = current.wrapping_add(delta);
        map.insert(key.to_owned(), next.to_le_bytes().to_vec());
        Ok(next)
    }
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
