//! IdP documents (discovery, keys) cached in the store as JSON records.

use crate::ports::{KeyValue, StoreError};

/// Reads a JSON record. A record that does not parse (hostile or stale contents)
/// is reported as `Corrupt` so callers can treat it as absent.
pub(crate) enum Record<T> {
    Found(T),
    Missing,
    Corrupt,
}

pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
    kv: &dyn KeyValue,
    key: &str,
) -> Result<Record<T>, StoreError> {
    Ok(match kv.get(key)? {
        None => Record::Missing,
        // UTF-8 checked once for the whole record: `from_slice` checks every
        // string again, which costs a fifth of parsing a session.
        Some(bytes) => match std::str::from_utf8(&bytes).map(serde_json::from_str) {
            Ok(Ok(v)) => Record::Found(v),
            _ => Record::Corrupt,
        },
    })
}

/// Writes a JSON record.
pub(crate) fn set_json<T: serde::Serialize>(
    kv: &dyn KeyValue,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError(format!("encode: {e}")))?;
    kv.set(key, &bytes)
}
