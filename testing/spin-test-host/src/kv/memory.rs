//! The in-memory key-value backend: private to this process, like the local
//! store of one Spin pod, and gone when the process exits. It stands in for
//! Spin's default store (SQLite, crates/key-value-spin), whose stored forms it
//! keeps: values as given, counters as 8 little-endian bytes.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::{IncrementError, KvBackend, KvFuture};

#[derive(Debug, Default)]
pub struct MemoryBackend {
    map: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryBackend {
    /// A poisoned lock only means another request panicked mid-operation;
    /// every operation leaves the map consistent, so keep serving.
    fn map(&self) -> MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl KvBackend for MemoryBackend {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        let value = self.map().get(key).cloned();
        Box::pin(async move { Ok(value) })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()> {
        self.map().insert(key.to_owned(), value.to_vec());
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        self.map().remove(key);
        Box::pin(async { Ok(()) })
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        let found = self.map().contains_key(key);
        Box::pin(async move { Ok(found) })
    }

    fn get_keys(&self) -> KvFuture<'_, Vec<String>> {
        let keys = self.map().keys().cloned().collect();
        Box::pin(async move { Ok(keys) })
    }

    /// As Spin's SQLite store (crates/key-value-spin/src/store.rs, `increment`):
    /// one lock held across read-modify-write (Spin: one connection lock and
    /// one transaction); a missing key counts as 0; any 8-byte value is read as
    /// a little-endian i64, whatever wrote it; the new value is stored as 8
    /// little-endian bytes; the sum wraps on overflow (Spin's release build has
    /// no overflow checks). A value of any other length makes Spin's host panic
    /// (it converts the bytes with `expect`); here that is `HostPanic`, which
    /// traps the guest, and the value is left as it was.
    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> KvFuture<'a, i64, IncrementError> {
        let result = {
            let mut map = self.map();
            let current = match map.get(key) {
                None => Ok(0),
                Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                    .map(i64::from_le_bytes)
                    .map_err(|_| {
                        IncrementError::HostPanic(format!(
                            "increment: the value at {key:?} is {} bytes long, not an 8-byte counter",
                            bytes.len()
                        ))
                    }),
            };
            current.map(|current| {
                let new = current.wrapping_add(delta);
                map.insert(key.to_owned(), new.to_le_bytes().to_vec());
                new
            })
        };
        Box::pin(async move { result })
    }
}
