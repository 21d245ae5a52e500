//! Spin's key-value store (`fermyon:spin/key-value@2.0.0`), opened lazily so that
//! routes which never touch it (like `/healthz`) cannot fail because of it.

use crate::store::{KeyValue, StoreError};
use spin_sdk::key_value::Store;
use std::cell::OnceCell;

#[derive(Default)]
pub struct SpinKeyValue {
    store: OnceCell<Store>,
}

fn err(e: spin_sdk::key_value::Error) -> StoreError {
    StoreError(e.to_string())
}

impl SpinKeyValue {
    fn store(&self) -> Result<&Store, StoreError> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let opened = Store::open_default().map_err(err)?;
        Ok(self.store.get_or_init(|| opened))
    }
}

impl KeyValue for SpinKeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store()?.get(key).map_err(err)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store()?.set(key, value).map_err(err)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store()?.delete(key).map_err(err)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.store()?.exists(key).map_err(err)
    }
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.store()?.get_keys().map_err(err)
    }
}
