//! The key-value store: what the app needs of one.
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

/// Spin's key-value store, as far as the app uses it.
pub trait KeyValue {
    /// The value at `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores `value` at `key`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`; absent is fine.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Whether `key` holds a value.
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// Adds `delta` to the counter at `key` (absent counts as 0) and returns
    /// the new value, atomically. A counter is read only through this: its
    /// stored form differs between backends.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
}
