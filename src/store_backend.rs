//! Which backend holds Spin's `default` store, as far as the component can
//! tell. It cannot see the runtime config, but Spin's backends keep a counter
//! in different forms: its Redis store `INCRBY`s decimal text, its SQLite
//! store writes the sum as 8 little-endian bytes. A callback has just
//! incremented one (`login-used:<id>`), so reading it back once per login
//! tells `/user` where the session lives, for the scaling exercise.

use serde::{Deserialize, Serialize};

/// Where the sessions are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreBackend {
    /// Redis: shared by every replica that uses the same runtime config.
    Redis,
    /// Spin's SQLite file: this replica's own.
    SpinSqlite,
    /// Another backend, or a counter that could not be read.
    #[default]
    Unknown,
}

impl StoreBackend {
    /// The backend whose stored form `value` is, for a counter just incremented.
    pub fn of_counter(value: &[u8]) -> Self {
        let decimal = !value.is_empty()
            && value.len() <= 20
            && value
                .iter()
                .enumerate()
                .all(|(i, b)| b.is_ascii_digit() || (i == 0 && *b == b'-'));
        if decimal {
            StoreBackend::Redis
        } else if value.len() == 8 {
            StoreBackend::SpinSqlite
        } else {
            StoreBackend::Unknown
        }
    }

    /// What `/user` says about it.
    pub fn describe(self) -> &'static str {
        match self {
            StoreBackend::Redis => "Redis: shared by every replica",
            StoreBackend::SpinSqlite => "Spin's local SQLite store: this replica's own",
            StoreBackend::Unknown => "not known (another backend)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_backends_by_their_counters() {
        assert_eq!(StoreBackend::of_counter(b"1"), StoreBackend::Redis);
        assert_eq!(StoreBackend::of_counter(b"-12"), StoreBackend::Redis);
        assert_eq!(
            StoreBackend::of_counter(&1i64.to_le_bytes()),
            StoreBackend::SpinSqlite
        );
        assert_eq!(StoreBackend::of_counter(b""), StoreBackend::Unknown);
        assert_eq!(StoreBackend::of_counter(b"\x01\x02"), StoreBackend::Unknown);
    }

    #[test]
    fn is_stored_by_name() {
        assert_eq!(
            serde_json::to_string(&StoreBackend::SpinSqlite).unwrap(),
            "\"spin-sqlite\""
        );
    }
}
