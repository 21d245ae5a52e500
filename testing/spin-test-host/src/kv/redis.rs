//! The Redis key-value backend, laid out exactly as Spin's own
//! (crates/key-value-redis/src/store.rs): raw key, raw value bytes, GET / SET /
//! DEL / EXISTS and `KEYS *`, and `INCRBY` for counters (stored as decimal
//! text), so `redis-cli get <key>` shows what Spin would write.
//!
//! # Connection behaviour: Spin's, on purpose
//!
//! What happens while Redis is away is decided by the client, so this backend
//! connects as Spin's store does (spinframework/spin,
//! crates/key-value-redis/src/store.rs: `KeyValueRedis` keeps one
//! `redis::aio::ConnectionManager` per store in a `OnceCell`, made by
//! `Client::get_connection_manager()` with the `redis` crate's defaults, and
//! `RedisStore::after_open` sends a PING whose failure it ignores), with the
//! defaults of the `redis` crate Spin builds with (0.29.5 in Spin 3.5, 0.32.5
//! in 3.7-pre; both: `ConnectionManagerConfig` without connection or response
//! timeout, reconnection through `backon`'s `ExponentialBuilder` with its 1 s
//! first delay and 60 s cap, the crate's retry "factor" 100 as the multiplier,
//! 6 retries, jitter on). This host builds with a newer `redis` whose defaults
//! differ (0.5 s response and 1 s connection timeouts, 0.1 s first delay), so
//! every setting is spelled out in [`SPIN`]. Both `redis` versions use
//! `backon` without its `std` feature, so the jitter comes from `backon`'s
//! fixed seed: every process and every round waits the same delays, and a
//! round's attempts come at 0, 1.48, 118.38, 210.11, 307.18, 377.26 and
//! 473.45 s (backon 1.5/1.6). What follows for the guest:
//!
//! - The first open connects; while Redis is down that open waits through the
//!   whole retry schedule (minutes) before it fails. Nothing fails at start-up.
//! - A connection Redis closed fails the next command once (the error reaches
//!   whoever sent it) and starts a reconnection in the background. Spin's
//!   PING on every open takes that one failure, so a request that opens the
//!   store after Redis went away does not see it: its operations wait for the
//!   reconnection instead.
//! - Commands wait, with no time limit, for the reconnection: 7 attempts at the
//!   times above. When Redis is back the next attempt connects and every
//!   waiting command goes through (up to 117 s later). If all 7 fail (473 s
//!   into the round), the waiting commands fail together and the next command
//!   starts a new round.
//! - Redis that hangs without closing the connection (stopped, or a network
//!   partition) leaves commands waiting until it answers: no response timeout.
//!
//! Where reproducing Spin exactly is not worth it, the difference is in the
//! table of testing/spin-test-host/README.md.

use std::time::Duration;

use anyhow::{Context, Result};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::backend::{IncrementError, KvBackend, KvError, KvFuture};

/// How the client connects and reconnects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientSettings {
    /// Bound on one TCP connect (None: the OS decides; a refused connect on
    /// loopback fails at once, an unanswered one takes the kernel's minutes).
    pub connection_timeout: Option<Duration>,
    /// Bound on the wait for one reply (None: wait as long as it takes).
    pub response_timeout: Option<Duration>,
    /// The delay before the first retry of a failed connect.
    pub first_retry_delay: Duration,
    /// Each later delay is the previous one times this, up to `max_retry_delay`.
    pub backoff_multiplier: f32,
    /// The cap of one delay (before jitter, which adds up to the delay again).
    pub max_retry_delay: Duration,
    /// Retries after the first attempt of one (re)connection round.
    pub retries: usize,
}

/// Spin 3.x/4.x: what `Client::get_connection_manager()` gives with the
/// `redis` crate (0.29 / 0.32) Spin builds with, and `backon`'s defaults.
pub const SPIN: ClientSettings = ClientSettings {
    connection_timeout: None,
    response_timeout: None,
    first_retry_delay: Duration::from_secs(1),
    backoff_multiplier: 100.0,
    max_retry_delay: Duration::from_secs(60),
    retries: 6,
};

impl ClientSettings {
    fn manager_config(&self) -> ConnectionManagerConfig {
        // Jitter is always on in `ConnectionManager`, as in the versions Spin uses.
        ConnectionManagerConfig::new()
            .set_connection_timeout(self.connection_timeout)
            .set_response_timeout(self.response_timeout)
            .set_min_delay(self.first_retry_delay)
            .set_exponent_base(self.backoff_multiplier)
            .set_max_delay(self.max_retry_delay)
            .set_number_of_retries(self.retries)
    }

    /// The longest a command can wait between Redis coming back and the
    /// reconnection that lets it through: one full delay with its jitter.
    #[cfg(test)]
    pub fn longest_gap_between_attempts(&self) -> Duration {
        let mut delay = self.first_retry_delay;
        let mut longest = delay;
        for _ in 1..self.retries {
            delay = delay
                .mul_f32(self.backoff_multiplier)
                .min(self.max_retry_delay);
            longest = longest.max(delay);
        }
        longest * 2
    }
}

pub struct RedisBackend {
    client: redis::Client,
    settings: ClientSettings,
    /// Made by the first open, as Spin's `OnceCell<ConnectionManager>`: a
    /// failed first connect leaves it empty, so the next open tries again.
    /// Reconnects by itself after an I/O error; cloned per operation.
    connection: OnceCell<ConnectionManager>,
}

impl RedisBackend {
    /// A store with Spin's client settings. Does not connect (as Spin, which
    /// connects at the first open), so the host starts even while Redis is down.
    pub fn new(url: &str) -> Result<Self> {
        Self::with_settings(url, SPIN)
    }

    /// A store with other client settings (tests that need a faster schedule).
    pub fn with_settings(url: &str, settings: ClientSettings) -> Result<Self> {
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        Ok(Self {
            client,
            settings,
            connection: OnceCell::new(),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, KvError> {
        self.connection
            .get_or_try_init(|| {
                ConnectionManager::new_with_config(
                    self.client.clone(),
                    self.settings.manager_config(),
                )
            })
            .await
            .cloned()
            .map_err(other)
    }
}

fn other(err: redis::RedisError) -> KvError {
    KvError(format!("redis: {err}"))
}

impl KvBackend for RedisBackend {
    /// Spin's `manager.get` then `after_open`: connect if not yet connected
    /// (an error here fails the open), then PING and ignore its result, so a
    /// dead connection's one failure is spent here and starts the reconnection.
    fn after_open(&self) -> KvFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let _ignored: Result<(), _> = redis::cmd("PING").query_async(&mut conn).await;
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { self.conn().await?.get(key).await.map_err(other) })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()> {
        Box::pin(async move { self.conn().await?.set(key, value).await.map_err(other) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        Box::pin(async move { self.conn().await?.del(key).await.map_err(other) })
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        Box::pin(async move { self.conn().await?.exists(key).await.map_err(other) })
    }

    fn get_keys(&self) -> KvFuture<'_, Vec<String>> {
        Box::pin(async move { self.conn().await?.keys("*").await.map_err(other) })
    }

    /// As Spin's Redis store (crates/key-value-redis/src/store.rs, `increment`):
    /// one `INCRBY`, atomic in Redis across every client; the counter is the
    /// key's string value as decimal text, so text such as "41" written by
    /// `set` counts as 41. A value Redis cannot read as an i64, or a sum that
    /// would overflow, is Redis's error, which the guest sees as
    /// `error::other`, and the value is left as it was.
    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> KvFuture<'a, i64, IncrementError> {
        Box::pin(async move {
            let mut conn = self.conn().await.map_err(IncrementError::Store)?;
            redis::cmd("INCRBY")
                .arg(key)
                .arg(delta)
                .query_async(&mut conn)
                .await
                .map_err(|e| IncrementError::Store(other(e)))
        })
    }
}
