//! What every key-value backend provides: the operations both of Spin's
//! key-value interfaces need, and their errors.

use std::future::Future;
use std::pin::Pin;

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
    /// Runs when the guest opens the store, after the access checks, as
    /// Spin's `Store::after_open` (crates/factor-key-value/src/host.rs, both
    /// `open`s, after the store manager's `get`); an error fails the open.
    /// Redis connects and pings; SQLite opens its connection.
    fn after_open(&self) -> KvFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>>;
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()>;
    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()>;
    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool>;
    fn get_keys(&self) -> KvFuture<'_, Vec<String>>;
    /// Atomically adds `delta` to the counter at `key` (a missing key counts
    /// as 0, and is created even for a delta of 0) and returns the new value.
    /// The stored form is the backend's own, as in Spin: decimal text in Redis
    /// (`INCRBY`), 8 little-endian bytes in Spin's SQLite store.
    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> KvFuture<'a, i64, IncrementError>;
}
