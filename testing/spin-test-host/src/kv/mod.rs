//! Key-value backends behind one trait, and the stores configured for the
//! app: `default` is in-memory unless Spin's runtime config file
//! (`[key_value_store.<label>]`) says otherwise.

pub mod memory;
pub mod redis;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// A backend failure; the guest sees it as `error::other(message)`.
#[derive(Debug, PartialEq)]
pub struct KvError(pub String);

pub type KvFuture<'a, T, E = KvError> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'a>>;

/// Why an `increment` failed.
#[derive(Debug, PartialEq)]
pub enum IncrementError {
    /// An ordinary store failure (Redis: the value is not an integer, or the
    /// sum would overflow); the guest sees `error::other(message)`.
    Store(KvError),
    /// Where Spin's host itself panics: its SQLite store reading a value that
    /// is not 8 bytes long as a counter. Spin's request then fails with no
    /// result reaching the guest; this host traps the guest instead (same
    /// outcome for the request, without taking the process down).
    HostPanic(String),
}

/// One store's operations, as `fermyon:spin/key-value@2.0.0` and
/// `wasi:keyvalue/{store,atomics}@0.2.0-draft2` need them: the two
/// interfaces share the backends, so they see the same data, as in Spin.
/// Boxed futures keep the trait usable as `dyn` without extra crates.
pub trait KvBackend: Send + Sync {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>>;
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()>;
    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()>;
    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool>;
    fn get_keys(&self) -> KvFuture<'_, Vec<String>>;
    /// Atomically adds `delta` to the counter at `key` (a missing key counts
    /// as 0, and is created even for a delta of 0) and returns the new value.
    /// The stored form is the backend's own, as in Spin: decimal text in Redis
    /// (`INCRBY`), 8 little-endian bytes in the in-memory (SQLite) store.
    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> KvFuture<'a, i64, IncrementError>;
}

/// Spin's runtime config file; only key-value stores are supported, and any
/// other section is refused rather than silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeConfig {
    #[serde(default)]
    key_value_store: HashMap<String, StoreConfig>,
    /// spin-operator always renders an `env` provider; variables already come from
    /// `SPIN_VARIABLE_*` here, so it is accepted and changes nothing.
    #[serde(default)]
    config_provider: Vec<ConfigProvider>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ConfigProvider {
    Env {
        #[allow(dead_code)]
        #[serde(default)]
        prefix: Option<String>,
        #[allow(dead_code)]
        #[serde(default)]
        dotenv_path: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum StoreConfig {
    Redis {
        url: String,
    },
    /// Spin's SQLite store; in-memory here (`path` accepted, not used).
    Spin {
        #[allow(dead_code)]
        path: Option<String>,
    },
}

/// The configured stores by label.
pub struct Stores(HashMap<String, Arc<dyn KvBackend>>);

impl Stores {
    /// Only `default`, in memory: what a pod has without runtime config.
    pub fn in_memory_default() -> Self {
        let default: Arc<dyn KvBackend> = Arc::new(memory::MemoryBackend::default());
        Self(HashMap::from([("default".to_owned(), default)]))
    }

    /// Reads a runtime config file; must run inside the Tokio runtime.
    pub fn from_runtime_config(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid runtime config {}", path.display()))
    }

    fn parse(text: &str) -> Result<Self> {
        let table: toml::Table = toml::from_str(text)?;
        // Checked by hand first to name an unknown type clearly.
        if let Some(stores) = table.get("key_value_store").and_then(|v| v.as_table()) {
            for (label, store) in stores {
                match store.get("type").and_then(|t| t.as_str()) {
                    Some("redis" | "spin") => {}
                    Some(other) => bail!(
                        "key_value_store.{label}: unsupported type {other:?} (supported: \"redis\", \"spin\")"
                    ),
                    None => bail!("key_value_store.{label}: missing `type`"),
                }
            }
        }
        let config: RuntimeConfig = table.try_into()?;
        let _ = &config.config_provider;
        let mut stores = Self::in_memory_default();
        for (label, store) in config.key_value_store {
            let backend: Arc<dyn KvBackend> = match store {
                StoreConfig::Redis { url } => Arc::new(
                    redis::RedisBackend::new(&url)
                        .with_context(|| format!("key_value_store.{label}"))?,
                ),
                StoreConfig::Spin { .. } => Arc::new(memory::MemoryBackend::default()),
            };
            stores.0.insert(label, backend);
        }
        Ok(stores)
    }

    pub fn get(&self, label: &str) -> Option<Arc<dyn KvBackend>> {
        self.0.get(label).cloned()
    }

    pub fn contains(&self, label: &str) -> bool {
        self.0.contains_key(label)
    }
}

#[cfg(test)]
mod tests;
