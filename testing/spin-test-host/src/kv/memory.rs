//! The in-memory key-value backend: private to this process, like the local
//! store of one Spin pod, and gone when the process exits.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::{KvBackend, KvFuture};

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
}
