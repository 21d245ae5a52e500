//! An in-memory key-value store that counts its operations and can go down.

use crate::ports::{KeyValue, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// In-memory store that counts reads and writes, and can be switched off to
/// simulate an unreachable backend.
#[derive(Default)]
pub struct MemoryStore {
    map: RefCell<BTreeMap<String, Vec<u8>>>,
    /// Reads so far (`get`, `exists`).
    pub reads: Cell<usize>,
    /// Writes so far (`set`, `delete`, `increment`).
    pub writes: Cell<usize>,
    /// While set, every operation fails as an unreachable store does.
    pub down: Cell<bool>,
}

impl MemoryStore {
    /// An empty store that is up.
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

    /// Every key starting with `prefix`, in order.
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
