//! Spin's own key-value store (`type = "spin"`, and the `default` store when
//! the runtime config names no other): SQLite, as in Spin's
//! `crates/key-value-spin/src/store.rs` (`KeyValueSqlite`, `SqliteStore`).
//! What this host keeps from there, so a file written here is one `spin up`
//! reads and the other way round:
//!
//! - one table, `spin_key_value`, with the columns `store` (the store's label,
//!   TEXT), `key` (TEXT) and `value` (BLOB), primary key `(store, key)`: the
//!   labels of one database file share the table, each seeing its own rows;
//! - values stored as given (BLOB); counters written by `increment` as 8
//!   little-endian bytes;
//! - one connection per configured label, opened (and the table created) by
//!   the first open of the store, not at start-up, behind one lock for every
//!   request of the process; a failed open is retried by the next one;
//! - each operation a single statement, `increment` one (deferred)
//!   transaction around a read and an upsert;
//! - the connection is rusqlite's: SQLite's default rollback journal and a
//!   5 s busy timeout, so two processes on one file share it the way two
//!   `spin up` processes do (they wait for each other's write locks, and a
//!   transaction that would deadlock fails at once);
//! - the work runs on the calling worker thread (Spin: `block_in_place`).
//!
//! `Location::InMemory` is Spin's `DatabaseLocation::InMemory`: what Spin
//! uses for the default store when the state directory is unset
//! (`--state-dir ""`) and for a `type = "spin"` store without `path`. It is
//! the same SQLite code with no file, private to its connection.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::backend::{IncrementError, KvBackend, KvError, KvFuture};

/// Where a store's database lives (Spin: `DatabaseLocation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    InMemory,
    File(PathBuf),
}

impl Location {
    /// How Spin's `SpinKeyValueStore::make_store` (crates/key-value-spin,
    /// src/lib.rs) places a `type = "spin"` store: `path` relative to `base`
    /// (the runtime config file's directory) when there is a base, as written
    /// (so relative to the working directory) when there is none, and in
    /// memory when there is no `path`.
    pub fn resolve(base: Option<&Path>, path: Option<&Path>) -> Self {
        match (base, path) {
            (_, None) => Self::InMemory,
            (Some(base), Some(path)) if path.is_relative() => Self::File(base.join(path)),
            (_, Some(path)) => Self::File(path.to_owned()),
        }
    }

    /// Creates the file's parent directory when it is missing, as Spin does
    /// when it makes the store at start-up (the file itself is only created
    /// by the first operation).
    pub fn prepare(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        if let Self::File(path) = self
            && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            std::fs::create_dir_all(parent).with_context(|| {
                format!(
                    "cannot create the key-value store's directory {}",
                    parent.display()
                )
            })?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InMemory => f.write_str("a temporary in-memory store"),
            Self::File(path) => write!(f, "{:?}", path.display().to_string()),
        }
    }
}

pub struct SqliteBackend {
    /// The label, written into the `store` column of every row.
    label: String,
    location: Location,
    connection: OnceLock<Mutex<Connection>>,
}

fn sql(err: rusqlite::Error) -> KvError {
    KvError(err.to_string())
}

/// Runs SQLite work on this worker thread, telling a multi-threaded Tokio
/// runtime to move its other tasks elsewhere meanwhile (as Spin does); on a
/// current-thread runtime (unit tests) it simply runs.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

impl SqliteBackend {
    pub fn new(label: &str, location: Location) -> Self {
        Self {
            label: label.to_owned(),
            location,
            connection: OnceLock::new(),
        }
    }

    fn open(&self) -> Result<Connection, KvError> {
        let connection = match &self.location {
            Location::InMemory => Connection::open_in_memory(),
            Location::File(path) => Connection::open(path),
        }
        .map_err(sql)?;
        connection
            .execute(
                "CREATE TABLE IF NOT EXISTS spin_key_value (
                    store TEXT NOT NULL,
                    key   TEXT NOT NULL,
                    value BLOB NOT NULL,
                    PRIMARY KEY (store, key)
                )",
                [],
            )
            .map_err(sql)?;
        Ok(connection)
    }

    /// The connection, opened on first use. Requests racing to open it may
    /// each open one, and the losers' are dropped; while they create the
    /// table at once, one may fail with "database is locked" (SQLite refuses a
    /// lock that could deadlock without waiting). Spin's `KeyValueSqlite::get`
    /// races the same way, so a burst of first opens of a new file can fail
    /// there too.
    fn connection(&self) -> Result<MutexGuard<'_, Connection>, KvError> {
        let cell = match self.connection.get() {
            Some(cell) => cell,
            None => {
                let fresh = self.open()?;
                self.connection.get_or_init(|| Mutex::new(fresh))
            }
        };
        // No operation panics while holding the lock (see `increment`).
        Ok(cell.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn upsert(
        connection: &Connection,
        label: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), KvError> {
        connection
            .prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut statement| statement.execute(params![label, key, value]))
            .map(drop)
            .map_err(sql)
    }

    fn read(connection: &Connection, label: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        connection
            .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")
            .and_then(|mut statement| {
                statement
                    .query_row(params![label, key], |row| row.get::<_, Vec<u8>>(0))
                    .optional()
            })
            .map_err(sql)
    }
}

impl KvBackend for SqliteBackend {
    /// Spin's `KeyValueSqlite::get` (the store manager's, run by every open):
    /// the connection is opened, and the table created, by the first open; a
    /// failure fails that open, and the next open tries again.
    fn after_open(&self) -> KvFuture<'_, ()> {
        Box::pin(async move { blocking(|| self.connection().map(drop)) })
    }

    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { blocking(|| Self::read(&*self.connection()?, &self.label, key)) })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()> {
        Box::pin(
            async move { blocking(|| Self::upsert(&*self.connection()?, &self.label, key, value)) },
        )
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        Box::pin(async move {
            blocking(|| {
                self.connection()?
                    .prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")
                    .and_then(|mut statement| statement.execute(params![self.label, key]))
                    .map(drop)
                    .map_err(sql)
            })
        })
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        Box::pin(async move {
            blocking(|| {
                self.connection()?
                    .prepare_cached(
                        "SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2 LIMIT 1",
                    )
                    .and_then(|mut statement| statement.exists(params![self.label, key]))
                    .map_err(sql)
            })
        })
    }

    fn get_keys(&self) -> KvFuture<'_, Vec<String>> {
        Box::pin(async move {
            blocking(|| {
                let connection = self.connection()?;
                let mut statement = connection
                    .prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")
                    .map_err(sql)?;
                let keys = statement
                    .query_map(params![self.label], |row| row.get::<_, String>(0))
                    .map_err(sql)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql);
                keys
            })
        })
    }

    /// As Spin's SQLite store (crates/key-value-spin/src/store.rs,
    /// `increment`): under the connection lock, one deferred transaction
    /// reads the value (a missing key counts as 0), adds `delta` (wrapping:
    /// Spin's release build has no overflow checks) and upserts the sum as 8
    /// little-endian bytes. Any 8-byte value is a counter, whoever wrote it. A
    /// value of another length is where Spin's host panics (it converts the
    /// bytes with `expect`): here `HostPanic`, which traps the guest; the
    /// transaction is rolled back and the value left as it was. (Spin's panic
    /// also poisons that store's connection lock, after which every operation
    /// on the store panics until the process restarts: see the README's table
    /// of what this host does not reproduce.)
    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> KvFuture<'a, i64, IncrementError> {
        Box::pin(async move {
            blocking(|| {
                let mut connection = self.connection().map_err(IncrementError::Store)?;
                let transaction = connection
                    .transaction_with_behavior(TransactionBehavior::Deferred)
                    .map_err(|e| IncrementError::Store(sql(e)))?;
                let current = match Self::read(&transaction, &self.label, key)
                    .map_err(IncrementError::Store)?
                {
                    None => 0,
                    Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                        Ok(counter) => i64::from_le_bytes(counter),
                        Err(_) => {
                            return Err(IncrementError::HostPanic(format!(
                                "increment: the value at {key:?} is {} bytes long, not an 8-byte counter",
                                bytes.len()
                            )));
                        }
                    },
                };
                let new = current.wrapping_add(delta);
                Self::upsert(&transaction, &self.label, key, &new.to_le_bytes())
                    .map_err(IncrementError::Store)?;
                transaction
                    .commit()
                    .map_err(|e| IncrementError::Store(sql(e)))?;
                Ok(new)
            })
        })
    }
}
