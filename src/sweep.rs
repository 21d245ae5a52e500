//! Removes expired records that nobody will read again (abandoned logins,
//! sessions of browsers that never came back, used logout-token ids, index
//! entries whose sessions are all gone).
//!
//! Spin key-value has no TTL, so without this the store would only grow. It
//! runs on a small fraction of logins (never on the hot path), looks at a
//! bounded number of keys, and is best effort: a failure is logged, never shown.

use crate::oidc::transaction;
use crate::seams::{Clock, Random};
use crate::store::KeyValue;
use serde_json::Value;

/// One login in this many triggers a sweep.
const ONE_IN: u8 = 32;
/// Most records examined per sweep.
const MAX_EXAMINED: usize = 200;

pub fn maybe_sweep(kv: &dyn KeyValue, clock: &dyn Clock, rng: &dyn Random) {
    let mut roll = [0u8; 1];
    rng.fill(&mut roll);
    if roll[0] % ONE_IN == 0 {
        match sweep(kv, clock.now()) {
            Ok(0) => {}
            Ok(n) => eprintln!("sweep: removed {n} expired record(s)"),
            Err(e) => eprintln!("sweep: {e}"),
        }
    }
}

/// When a record stops mattering, by its kind; `None` for keys we do not sweep.
fn expiry(key: &str, record: &Value) -> Option<i64> {
    let field = |name: &str| record.get(name).and_then(Value::as_i64);
    if key.starts_with(crate::session::KEY_PREFIX) {
        field("expires_at")
    } else if key.starts_with(transaction::KEY_PREFIX) {
        field("created_at").map(|t| t + transaction::LIFETIME)
    } else if key.starts_with("bcl:jti:") {
        // Past its exp a replayed logout token fails validation anyway.
        field("exp").map(|t| t + crate::oidc::id_token::CLOCK_SKEW)
    } else {
        None
    }
}

pub fn sweep(kv: &dyn KeyValue, now: i64) -> Result<usize, crate::store::StoreError> {
    let mut removed = 0;
    let candidates = kv.keys()?.into_iter().filter(|k| is_swept_kind(k));
    for key in candidates.take(MAX_EXAMINED) {
        if key.starts_with("bcl:sid:") || key.starts_with("bcl:sub:") {
            // An index entry is dead once none of its sessions is left.
            let mut alive = false;
            for id in crate::session_index::sessions(kv, &key)? {
                alive |= kv.exists(&id.key())?;
            }
            if !alive {
                kv.delete(&key)?;
                removed += 1;
            }
            continue;
        }
        let Some(bytes) = kv.get(&key)? else { continue };
        let record: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        // Unreadable records of our kinds are as good as expired.
        if expiry(&key, &record).is_none_or(|t| t <= now) {
            kv.delete(&key)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn is_swept_kind(key: &str) -> bool {
    [
        crate::session::KEY_PREFIX,
        transaction::KEY_PREFIX,
        crate::session_index::PREFIX,
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn removes_only_expired_records_of_known_kinds() {
        let kv = MemoryStore::new();
        kv.set("sess:old", br#"{"expires_at": 100}"#).unwrap();
        kv.set("sess:live", br#"{"expires_at": 2000}"#).unwrap();
        kv.set("login:old", br#"{"created_at": 0}"#).unwrap();
        kv.set("login:live", br#"{"created_at": 900}"#).unwrap();
        kv.set("bcl:jti:x", br#"{"exp": 10}"#).unwrap();
        kv.set("sess:garbage", b"not json").unwrap();
        kv.set("cache:discovery", br#"{"fetched_at": 0}"#).unwrap();
        kv.set("unrelated", b"keep").unwrap();
        let dead = "A".repeat(43);
        let live = format!("live{}", "B".repeat(39));
        kv.set(&format!("sess:{live}"), br#"{"expires_at": 2000}"#)
            .unwrap();
        kv.set(
            "bcl:sub:dead",
            format!(r#"{{"sessions": ["{dead}"]}}"#).as_bytes(),
        )
        .unwrap();
        kv.set(
            "bcl:sid:live",
            format!(r#"{{"sessions": ["{dead}", "{live}"]}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(sweep(&kv, 1000).unwrap(), 5);
        let mut left = kv.keys().unwrap();
        left.sort();
        assert_eq!(
            left,
            [
                "bcl:sid:live",
                "cache:discovery",
                "login:live",
                "sess:live",
                &format!("sess:{live}"),
                "unrelated"
            ]
        );
    }
}
