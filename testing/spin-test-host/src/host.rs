//! Per-request store data and the host side of `fermyon:spin/key-value` and
//! `fermyon:spin/variables`, with Spin's error semantics. The host side of
//! `wasi:keyvalue/{store,atomics}` is in `wasi_keyvalue.rs`; it opens stores
//! through the same `open_store` as `fermyon:spin/key-value`.

use std::collections::HashSet;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::kv::{KvBackend, Stores};
use crate::outbound::{AllowedHosts, OutboundHooks, OutboundHttp};
use crate::variables::{ComponentVariables, GetError};

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-imports",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": KvStore,
        "wasi:keyvalue/store.bucket": crate::kv::handles::KvBucket,
        "wasi:keyvalue/atomics.cas": crate::kv::handles::KvCas,
    },
});

use fermyon::spin::{key_value, variables};

/// Spin's default capacity of a component instance's store table; more open
/// stores at once get `store-table-full` (`other("store table full")` through
/// wasi:keyvalue). Spin keeps one table for the stores of both interfaces, so
/// they count against one limit (crates/factor-key-value/src/host.rs).
const MAX_OPEN_STORES: usize = 256;

/// What the guest holds for an open `store` resource.
pub struct KvStore {
    backend: Arc<dyn KvBackend>,
}

/// Everything about one component that requests share.
pub struct ComponentConfig {
    pub variables: ComponentVariables,
    pub allowed_stores: HashSet<String>,
    pub stores: Arc<Stores>,
    pub allowed_hosts: Arc<AllowedHosts>,
    /// The app's pooled outbound HTTP clients, shared by every component.
    pub outbound_http: OutboundHttp,
    pub environment: Vec<(String, String)>,
}

/// The data of one request's `Store`: a fresh instance per request, as Spin.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHooks,
    config: Arc<ComponentConfig>,
    /// Stores open through either key-value interface.
    open_stores: usize,
}

impl HostState {
    pub fn new(config: Arc<ComponentConfig>) -> Self {
        // The guest's stdout goes to our stderr: our stdout carries only the
        // "listening on" line that the tests wait for.
        let wasi = WasiCtx::builder()
            .envs(&config.environment)
            .stdout(tokio::io::stderr())
            .stderr(tokio::io::stderr())
            .build();
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks::new(config.allowed_hosts.clone(), config.outbound_http.clone()),
            config,
            open_stores: 0,
        }
    }
}

/// Adds WASI p2, `wasi:http`, the Spin interfaces and `wasi:keyvalue/{store,atomics}`
/// to the linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    SpinImports::add_to_linker::<_, HasSelf<HostState>>(linker, |state| state)
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Backend errors reach the guest as `other`, and are logged once here.
fn other(op: &str, err: crate::kv::KvError) -> key_value::Error {
    eprintln!("key-value {op} failed: {}", err.0);
    key_value::Error::Other(err.0)
}

/// Why a store could not be opened; each interface maps it to its own error.
#[derive(Debug, PartialEq)]
pub enum OpenStoreError {
    AccessDenied,
    NoSuchStore,
    TableFull,
}

impl HostState {
    fn backend(&self, store: &Resource<KvStore>) -> wasmtime::Result<Arc<dyn KvBackend>> {
        Ok(self.table.get(store)?.backend.clone())
    }

    /// Opens `label` for either key-value interface, with Spin's checks in
    /// Spin's order (crates/factor-key-value/src/host.rs, both `open`s): not
    /// in the component's `key_value_stores`, then not configured, then the
    /// table full. The caller puts the backend in the table and must call
    /// `store_closed` when the guest drops it.
    pub fn open_store(&mut self, label: &str) -> Result<Arc<dyn KvBackend>, OpenStoreError> {
        if !self.config.allowed_stores.contains(label) {
            return Err(OpenStoreError::AccessDenied);
        }
        let Some(backend) = self.config.stores.get(label) else {
            return Err(OpenStoreError::NoSuchStore);
        };
        if self.open_stores >= MAX_OPEN_STORES {
            return Err(OpenStoreError::TableFull);
        }
        self.open_stores += 1;
        Ok(backend)
    }

    pub fn store_closed(&mut self) {
        self.open_stores = self.open_stores.saturating_sub(1);
    }

    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl key_value::Host for HostState {}

impl key_value::HostStore for HostState {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<KvStore>, key_value::Error>> {
        let backend = match self.open_store(&label) {
            Ok(backend) => backend,
            Err(OpenStoreError::AccessDenied) => return Ok(Err(key_value::Error::AccessDenied)),
            Err(OpenStoreError::NoSuchStore) => return Ok(Err(key_value::Error::NoSuchStore)),
            Err(OpenStoreError::TableFull) => return Ok(Err(key_value::Error::StoreTableFull)),
        };
        if let Err(e) = backend.after_open().await {
            self.store_closed();
            return Ok(Err(other("open", e)));
        }
        Ok(Ok(self.table.push(KvStore { backend })?))
    }

    async fn get(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, key_value::Error>> {
        let backend = self.backend(&store)?;
        Ok(backend.get(&key).await.map_err(|e| other("get", e)))
    }

    async fn set(
        &mut self,
        store: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let backend = self.backend(&store)?;
        Ok(backend.set(&key, &value).await.map_err(|e| other("set", e)))
    }

    async fn delete(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let backend = self.backend(&store)?;
        Ok(backend.delete(&key).await.map_err(|e| other("delete", e)))
    }

    async fn exists(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, key_value::Error>> {
        let backend = self.backend(&store)?;
        Ok(backend.exists(&key).await.map_err(|e| other("exists", e)))
    }

    async fn get_keys(
        &mut self,
        store: Resource<KvStore>,
    ) -> wasmtime::Result<Result<Vec<String>, key_value::Error>> {
        let backend = self.backend(&store)?;
        Ok(backend.get_keys().await.map_err(|e| other("get-keys", e)))
    }

    async fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        self.store_closed();
        Ok(())
    }
}

impl variables::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        Ok(self.config.variables.get(&name).map_err(|e| match e {
            GetError::InvalidName(msg) => variables::Error::InvalidName(msg),
            GetError::Undefined(msg) => variables::Error::Undefined(msg),
            GetError::Provider(msg) => variables::Error::Provider(msg),
        }))
    }
}
