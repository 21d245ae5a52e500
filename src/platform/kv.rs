//! Spin's key-value store, opened lazily so that routes which never touch it
//! (like `/healthz`) cannot fail because of it.
//!
//! Plain operations go through `fermyon:spin/key-value@2.0.0`; `increment`
//! through `wasi:keyvalue/atomics@0.2.0-draft2`, which Spin 3.x and 4.x offer
//! over the same stores (its compare-and-swap is not used: Spin cannot make it
//! reliable on either backend).

use crate::ports::{KeyValue, StoreError};
use spin_sdk::key_value::Store;
use spin_sdk::wit::wasi::keyvalue::{atomics, store as wasi_store};
use std::cell::OnceCell;

#[derive(Default)]
pub(crate) struct SpinKeyValue {
    store: OnceCell<Store>,
    bucket: OnceCell<wasi_store::Bucket>,
}

fn err(e: spin_sdk::key_value::Error) -> StoreError {
    StoreError(e.to_string())
}

fn wasi_err(e: wasi_store::Error) -> StoreError {
    StoreError(match e {
        wasi_store::Error::NoSuchStore => "no such store".to_owned(),
        wasi_store::Error::AccessDenied => "access denied".to_owned(),
        wasi_store::Error::Other(why) => why,
    })
}

impl SpinKeyValue {
    fn store(&self) -> Result<&Store, StoreError> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let opened = Store::open_default().map_err(err)?;
        Ok(self.store.get_or_init(|| opened))
    }

    fn bucket(&self) -> Result<&wasi_store::Bucket, StoreError> {
        if let Some(b) = self.bucket.get() {
            return Ok(b);
        }
        let opened = wasi_store::open("default").map_err(wasi_err)?;
        Ok(self.bucket.get_or_init(|| opened))
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
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(self.bucket()?, key, delta).map_err(wasi_err)
    }
}
