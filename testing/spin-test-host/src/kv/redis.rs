//! The Redis key-value backend, laid out exactly as Spin's own
//! (crates/key-value-redis): raw key, raw value bytes, GET / SET / DEL /
//! EXISTS and `KEYS *`, and `INCRBY` for counters (stored as decimal text),
//! so `redis-cli get <key>` shows what Spin would write.

use std::time::Duration;

use anyhow::{Context, Result};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{IncrementError, KvBackend, KvError, KvFuture};

/// Bounds every operation: an unreachable Redis must surface to the guest as
/// an error within a few seconds, never as a hung request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct RedisBackend {
    /// Reconnects by itself after an I/O error; cloned per operation.
    connection: ConnectionManager,
}

impl RedisBackend {
    /// Connects lazily (as Spin does), so the host starts even while Redis
    /// is down; must be called inside the Tokio runtime.
    pub fn new(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .context("cannot set up the Redis connection")?;
        Ok(Self { connection })
    }

    fn conn(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

fn other(err: redis::RedisError) -> KvError {
    KvError(format!("redis: {err}"))
}

impl KvBackend for RedisBackend {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { self.conn().get(key).await.map_err(other) })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()> {
        Box::pin(async move { self.conn().set(key, value).await.map_err(other) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        Box::pin(async move { self.conn().del(key).await.map_err(other) })
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        Box::pin(async move { self.conn().exists(key).await.map_err(other) })
    }

    fn get_keys(&self) -> KvFuture<'_, Vec<String>> {
        Box::pin(async move { self.conn().keys("*").await.map_err(other) })
    }

    /// As Spin's Redis store (crates/key-value-redis/src/store.rs, `increment`):
    /// one `INCRBY`, atomic in Redis across every client; the counter is the
    /// key's string value as decimal text, so text such as "41" written by
    /// `set` counts as 41. A value Redis cannot read as an i64, or a sum that
    /// would overflow, is Redis's error, which the guest sees as
    /// `error::other`, and the value is left as it was.
    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> KvFuture<'a, i64, IncrementError> {
        Box::pin(async move {
            redis::cmd("INCRBY")
                .arg(key)
                .arg(delta)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| IncrementError::Store(other(e)))
        })
    }
}
