//! The host side of `wasi:keyvalue/store@0.2.0-draft2` and
//! `wasi:keyvalue/atomics@0.2.0-draft2`, as Spin 3.x/4.x provide them
//! (crates/factor-key-value/src/host.rs in spinframework/spin): a bucket is
//! one of the app's key-value stores, opened by its label, so this interface
//! and `fermyon:spin/key-value` see the same data, the same per-component
//! `key_value_stores` list and one open-store limit.
//!
//! Errors, as Spin maps them for this interface: a label outside the
//! component's `key_value_stores` is `access-denied`, one that is not
//! configured `no-such-store`, a full store table `other("store table full")`
//! (the interface has no variant for it), and a backend failure `other(message)`.
//!
//! Compare-and-swap is NOT provided: `cas.new` always returns
//! `other(...)`, so no `cas` handle ever exists (Spin implements it; the
//! component does not use it). `batch` is not provided at all.

use wasmtime::component::Resource;

use crate::host::wasi::keyvalue::{atomics, store};
use crate::host::{HostState, OpenStoreError};
use crate::kv::handles::{KvBucket, KvCas};
use crate::kv::{IncrementError, KvBackend, KvError};

use std::sync::Arc;

const CAS_UNSUPPORTED: &str = "compare-and-swap is not supported by spin-test-host";

/// Backend errors reach the guest as `other`, and are logged once here.
fn other(op: &str, err: KvError) -> store::Error {
    eprintln!("wasi:keyvalue {op} failed: {}", err.0);
    store::Error::Other(err.0)
}

impl HostState {
    /// Spin answers a bucket handle missing from its table with
    /// `no-such-store` here (not a trap, as for `fermyon:spin/key-value`);
    /// the component model makes that unreachable anyway.
    fn bucket(&mut self, bucket: &Resource<KvBucket>) -> Result<Arc<dyn KvBackend>, store::Error> {
        self.table()
            .get(bucket)
            .map(|b| b.backend.clone())
            .map_err(|_| store::Error::NoSuchStore)
    }
}

impl store::Host for HostState {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<KvBucket>, store::Error>> {
        let backend = match self.open_store(&identifier) {
            Ok(backend) => backend,
            Err(OpenStoreError::AccessDenied) => return Ok(Err(store::Error::AccessDenied)),
            Err(OpenStoreError::NoSuchStore) => return Ok(Err(store::Error::NoSuchStore)),
            // The wasi error has no table-full variant; Spin reports it as
            // `other` with this text (crates/factor-key-value/src/host.rs).
            Err(OpenStoreError::TableFull) => {
                return Ok(Err(store::Error::Other("store table full".to_owned())));
            }
        };
        if let Err(e) = backend.after_open().await {
            self.store_closed();
            return Ok(Err(other("open", e)));
        }
        Ok(Ok(self.table().push(KvBucket { backend })?))
    }
}

impl store::HostBucket for HostState {
    async fn get(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, store::Error>> {
        let backend = match self.bucket(&bucket) {
            Ok(backend) => backend,
            Err(e) => return Ok(Err(e)),
        };
        Ok(backend.get(&key).await.map_err(|e| other("get", e)))
    }

    async fn set(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let backend = match self.bucket(&bucket) {
            Ok(backend) => backend,
            Err(e) => return Ok(Err(e)),
        };
        Ok(backend.set(&key, &value).await.map_err(|e| other("set", e)))
    }

    async fn delete(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let backend = match self.bucket(&bucket) {
            Ok(backend) => backend,
            Err(e) => return Ok(Err(e)),
        };
        Ok(backend.delete(&key).await.map_err(|e| other("delete", e)))
    }

    async fn exists(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, store::Error>> {
        let backend = match self.bucket(&bucket) {
            Ok(backend) => backend,
            Err(e) => return Ok(Err(e)),
        };
        Ok(backend.exists(&key).await.map_err(|e| other("exists", e)))
    }

    /// As Spin: every key in one response with no cursor; a cursor passed in
    /// is an `other` error (crates/factor-key-value/src/host.rs, `list_keys`).
    async fn list_keys(
        &mut self,
        bucket: Resource<KvBucket>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<store::KeyResponse, store::Error>> {
        if cursor.is_some() {
            return Ok(Err(store::Error::Other(
                "list-keys: cursors are not supported".to_owned(),
            )));
        }
        let backend = match self.bucket(&bucket) {
            Ok(backend) => backend,
            Err(e) => return Ok(Err(e)),
        };
        Ok(backend
            .get_keys()
            .await
            .map(|keys| store::KeyResponse { keys, cursor: None })
            .map_err(|e| other("list-keys", e)))
    }

    async fn drop(&mut self, bucket: Resource<KvBucket>) -> wasmtime::Result<()> {
        self.table().delete(bucket)?;
        self.store_closed();
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, store::Error>> {
        let backend = match self.bucket(&bucket) {
            Ok(backend) => backend,
            Err(e) => return Ok(Err(e)),
        };
        match backend.increment(&key, delta).await {
            Ok(value) => Ok(Ok(value)),
            Err(IncrementError::Store(e)) => Ok(Err(other("increment", e))),
            // Where Spin's host panics, the guest gets no result: trap.
            Err(IncrementError::HostPanic(msg)) => {
                eprintln!("wasi:keyvalue increment: {msg} (Spin's host panics here)");
                Err(wasmtime::Error::msg(msg))
            }
        }
    }

    async fn swap(
        &mut self,
        _cas: Resource<KvCas>,
        _value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        Ok(Err(atomics::CasError::StoreError(store::Error::Other(
            CAS_UNSUPPORTED.to_owned(),
        ))))
    }
}

impl atomics::HostCas for HostState {
    async fn new(
        &mut self,
        _bucket: Resource<KvBucket>,
        _key: String,
    ) -> wasmtime::Result<Result<Resource<KvCas>, store::Error>> {
        Ok(Err(store::Error::Other(CAS_UNSUPPORTED.to_owned())))
    }

    async fn current(
        &mut self,
        _cas: Resource<KvCas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, store::Error>> {
        Ok(Err(store::Error::Other(CAS_UNSUPPORTED.to_owned())))
    }

    async fn drop(&mut self, _cas: Resource<KvCas>) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Through the host traits, as a guest's calls arrive: the two key-value
    //! interfaces share stores, data, access rules and the open-store limit.

    use std::collections::HashSet;

    use super::*;
    use crate::host::ComponentConfig;
    use crate::host::fermyon::spin::key_value::{self, HostStore};
    use crate::kv::Stores;
    use store::HostBucket;

    /// A request's state for a component allowed `default` (configured, in
    /// memory) and `unconfigured` (not in the runtime config).
    fn state() -> HostState {
        HostState::new(Arc::new(ComponentConfig {
            variables: Default::default(),
            allowed_stores: HashSet::from(["default".to_owned(), "unconfigured".to_owned()]),
            stores: Arc::new(Stores::in_memory_default()),
            allowed_hosts: Default::default(),
            outbound_http: Default::default(),
            environment: vec![],
        }))
    }

    /// The value of a call that neither trapped nor returned an error.
    fn ok<T, E: std::fmt::Debug>(result: wasmtime::Result<Result<T, E>>) -> T {
        result.unwrap().unwrap()
    }

    fn borrow<T: 'static>(r: &Resource<T>) -> Resource<T> {
        Resource::new_borrow(r.rep())
    }

    async fn open_bucket(s: &mut HostState) -> Resource<KvBucket> {
        store::Host::open(s, "default".into())
            .await
            .unwrap()
            .unwrap()
    }

    async fn open_store(s: &mut HostState) -> Resource<crate::host::KvStore> {
        HostStore::open(s, "default".into()).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn both_interfaces_see_the_same_data_in_the_same_form() {
        let mut s = state();
        let bucket = open_bucket(&mut s).await;
        let spin = open_store(&mut s).await;

        let inc = atomics::Host::increment(&mut s, borrow(&bucket), "n".into(), 2).await;
        assert_eq!(ok(inc), 2);
        let got = HostStore::get(&mut s, borrow(&spin), "n".into()).await;
        assert_eq!(ok(got), Some(2i64.to_le_bytes().to_vec()));
        let set = HostStore::set(
            &mut s,
            borrow(&spin),
            "n".into(),
            41i64.to_le_bytes().into(),
        );
        set.await.unwrap().unwrap();
        let inc = atomics::Host::increment(&mut s, borrow(&bucket), "n".into(), 1).await;
        assert_eq!(ok(inc), 42);

        HostBucket::set(&mut s, borrow(&bucket), "k".into(), b"v".to_vec())
            .await
            .unwrap()
            .unwrap();
        let got = HostStore::get(&mut s, borrow(&spin), "k".into()).await;
        assert_eq!(ok(got), Some(b"v".to_vec()));
        let got = HostBucket::get(&mut s, borrow(&bucket), "k".into()).await;
        assert_eq!(ok(got), Some(b"v".to_vec()));
        let exists = HostBucket::exists(&mut s, borrow(&bucket), "k".into()).await;
        assert!(ok(exists));

        let listed = HostBucket::list_keys(&mut s, borrow(&bucket), None)
            .await
            .unwrap()
            .unwrap();
        let mut keys = listed.keys;
        keys.sort();
        assert_eq!(
            (keys, listed.cursor),
            (vec!["k".to_owned(), "n".to_owned()], None)
        );
        let paged = HostBucket::list_keys(&mut s, borrow(&bucket), Some("k".into())).await;
        assert!(matches!(paged.unwrap(), Err(store::Error::Other(_))));

        HostBucket::delete(&mut s, borrow(&bucket), "k".into())
            .await
            .unwrap()
            .unwrap();
        let exists = HostStore::exists(&mut s, borrow(&spin), "k".into()).await;
        assert!(!ok(exists));

        HostBucket::drop(&mut s, bucket).await.unwrap();
        HostStore::drop(&mut s, spin).await.unwrap();
    }

    #[tokio::test]
    async fn open_applies_the_components_store_list_as_spin() {
        let mut s = state();
        let denied = store::Host::open(&mut s, "other".into()).await.unwrap();
        assert!(matches!(denied, Err(store::Error::AccessDenied)));
        let missing = store::Host::open(&mut s, "unconfigured".into())
            .await
            .unwrap();
        assert!(matches!(missing, Err(store::Error::NoSuchStore)));

        let denied = HostStore::open(&mut s, "other".into()).await.unwrap();
        assert!(matches!(denied, Err(key_value::Error::AccessDenied)));
        let missing = HostStore::open(&mut s, "unconfigured".into())
            .await
            .unwrap();
        assert!(matches!(missing, Err(key_value::Error::NoSuchStore)));
    }

    #[tokio::test]
    async fn both_interfaces_count_against_one_open_store_limit() {
        let mut s = state();
        let mut spin = Vec::new();
        for _ in 0..200 {
            spin.push(open_store(&mut s).await);
        }
        let mut buckets = Vec::new();
        for _ in 0..56 {
            buckets.push(open_bucket(&mut s).await);
        }
        // 256 open: full for both, each with its own interface's error.
        let full = store::Host::open(&mut s, "default".into()).await.unwrap();
        assert!(matches!(full, Err(store::Error::Other(m)) if m == "store table full"));
        let full = HostStore::open(&mut s, "default".into()).await.unwrap();
        assert!(matches!(full, Err(key_value::Error::StoreTableFull)));
        // Access is still checked first.
        let denied = store::Host::open(&mut s, "other".into()).await.unwrap();
        assert!(matches!(denied, Err(store::Error::AccessDenied)));

        // Closing a store of one interface frees a slot for the other.
        HostStore::drop(&mut s, spin.pop().unwrap()).await.unwrap();
        buckets.push(open_bucket(&mut s).await);
        let full = HostStore::open(&mut s, "default".into()).await.unwrap();
        assert!(matches!(full, Err(key_value::Error::StoreTableFull)));
        HostBucket::drop(&mut s, buckets.pop().unwrap())
            .await
            .unwrap();
        spin.push(open_store(&mut s).await);
    }

    #[tokio::test]
    async fn increment_of_a_non_counter_in_the_memory_store_traps() {
        let mut s = state();
        let bucket = open_bucket(&mut s).await;
        HostBucket::set(&mut s, borrow(&bucket), "text".into(), b"abc".to_vec())
            .await
            .unwrap()
            .unwrap();
        // Spin's SQLite store panics here; the guest gets no result.
        let trapped = atomics::Host::increment(&mut s, borrow(&bucket), "text".into(), 1).await;
        assert!(trapped.is_err());
        let got = HostBucket::get(&mut s, borrow(&bucket), "text".into()).await;
        assert_eq!(ok(got), Some(b"abc".to_vec()));
    }

    #[tokio::test]
    async fn compare_and_swap_is_refused() {
        let mut s = state();
        let bucket = open_bucket(&mut s).await;
        let cas = atomics::HostCas::new(&mut s, borrow(&bucket), "k".into())
            .await
            .unwrap();
        assert!(matches!(cas, Err(store::Error::Other(m)) if m == CAS_UNSUPPORTED));
    }
}
