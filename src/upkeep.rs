//! Removes records nobody will read again (abandoned logins, sessions of
//! browsers that never came back, tombstones, used counters, lock keys, index
//! entries whose sessions are all gone) without listing the store: Spin's
//! `get-keys` is `KEYS *` on Redis, which blocks Redis for time proportional
//! to its size.
//!
//! Instead every such key is registered, when written, in an expiry bucket
//! (`gc:<bucket>:<n>`, numbered with `increment`), and each login processes a
//! bounded number of due entries from the oldest bucket (`gc:cursor`).
//!
//! Why it is safe without compare-and-swap:
//! - Entries are taken with `increment` on `gc:<bucket>:claim`: each number is
//!   returned once, so each entry is processed by one replica only.
//! - A key is registered in a bucket after its due time, and a bucket is only
//!   processed `SETTLE` seconds after it ends, by which time no replica (with
//!   clocks within that margin) registers into it any more; so "claim > count"
//!   means the bucket is finished, and deleting its counters loses nothing.
//! - The cursor is a plain value. Two replicas advancing it at once write the
//!   same bucket; a stale write moves it back, and the buckets in between are
//!   found finished again: wasted reads, never a lost entry.
//! - Removing a key is decided per kind: a session is removed only if its
//!   readable `expires_at` has passed (a visited session is registered again
//!   for its new expiry); an index entry only if none of its sessions is left;
//!   counters, tombstones, locks and logins simply when due.

use crate::keys;
use crate::ports::Clock;
use crate::ports::{KeyValue, StoreError};

/// Seconds per expiry bucket.
const BUCKET: i64 = 60;
/// Seconds after a bucket ends before it is processed (clock skew between replicas).
const SETTLE: i64 = 30;
/// An index entry with live sessions is looked at again after this long.
const INDEX_RECHECK: i64 = 3600;
/// Most entries processed per run.
pub const MAX_ENTRIES: usize = 16;
/// Most buckets looked at per run (an empty one costs one read).
const MAX_BUCKETS: usize = 64;
/// Most keys settled per entry: the component registers at most 3 at once, and
/// a store that says otherwise is not trusted with more work.
const MAX_KEYS_PER_ENTRY: usize = 8;

/// Removes records nobody will read again, a bounded amount per run.
pub struct Upkeep<'a> {
    /// The store it cleans.
    pub kv: &'a dyn KeyValue,
    /// Decides what is due.
    pub clock: &'a dyn Clock,
}

/// What one run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ran {
    /// Entries processed.
    pub entries: usize,
    /// Keys removed.
    pub removed: usize,
}

impl Upkeep<'_> {
    /// Registers `keys` for removal (or a second look) at `due`. Call it before
    /// writing them: a registration whose keys were never written costs a read.
    pub fn register<'k>(
        &self,
        due: i64,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<(), StoreError> {
        let keys: Vec<&str> = keys.into_iter().collect();
        let now = self.clock.now();
        // The first registration ever starts the cursor; nothing is older.
        if !self.kv.exists(keys::GC_CURSOR)? {
            self.kv
                .set(keys::GC_CURSOR, start(now).to_string().as_bytes())?;
        }
        // Never into a bucket that may already be processed.
        let bucket = due.max(now).div_euclid(BUCKET) + 1;
        let n = self.kv.increment(&keys::gc_count(bucket), 1)?;
        self.kv
            .set(&keys::gc_entry(bucket, n), keys.join("\n").as_bytes())
    }

    /// Processes due entries, bounded by `MAX_ENTRIES` and `MAX_BUCKETS`.
    pub fn run(&self) -> Result<Ran, StoreError> {
        let now = self.clock.now();
        let stored = self.kv.get(keys::GC_CURSOR)?;
        let parsed = stored
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse::<i64>().ok());
        // No cursor (nothing registered yet, or a store that lost it): start now.
        let mut bucket = parsed.unwrap_or_else(|| start(now));
        let start = parsed;
        let mut ran = Ran::default();
        for _ in 0..MAX_BUCKETS {
            if (bucket + 1) * BUCKET + SETTLE > now || ran.entries >= MAX_ENTRIES {
                break;
            }
            if self.kv.exists(&keys::gc_count(bucket))? {
                let finished = self.drain(bucket, now, &mut ran)?;
                if !finished {
                    break;
                }
                self.kv.delete(&keys::gc_claim(bucket))?;
                self.kv.delete(&keys::gc_count(bucket))?;
            }
            bucket += 1;
        }
        if Some(bucket) != start {
            self.kv
                .set(keys::GC_CURSOR, bucket.to_string().as_bytes())?;
        }
        Ok(ran)
    }

    /// Takes and processes entries of `bucket` while the budget lasts; `true`
    /// when the bucket has none left.
    fn drain(&self, bucket: i64, now: i64, ran: &mut Ran) -> Result<bool, StoreError> {
        while ran.entries < MAX_ENTRIES {
            let n = self.kv.increment(&keys::gc_claim(bucket), 1)?;
            if n > self.kv.increment(&keys::gc_count(bucket), 0)? {
                return Ok(true);
            }
            ran.entries += 1;
            let entry = keys::gc_entry(bucket, n);
            if let Some(bytes) = self.kv.get(&entry)? {
                for key in String::from_utf8_lossy(&bytes)
                    .lines()
                    .take(MAX_KEYS_PER_ENTRY)
                {
                    ran.removed += usize::from(self.settle(key, now)?);
                }
                self.kv.delete(&entry)?;
            }
        }
        Ok(false)
    }

    /// Removes `key` if it is done with; `true` if it was removed.
    fn settle(&self, key: &str, now: i64) -> Result<bool, StoreError> {
        let Some(bytes) = self.kv.get(key)? else {
            return Ok(false);
        };
        let later = if key.starts_with(keys::SESSION_PREFIX) {
            // A session visited since it was registered: look again at its new end.
            crate::session_record::stored_expiry(&bytes).filter(|&t| t > now)
        } else if keys::is_index_of_sessions(key) {
            let listed = serde_json::from_slice::<IndexEntry>(&bytes).unwrap_or_default();
            let mut alive = false;
            for id in listed
                .sessions
                .iter()
                .filter_map(|s| crate::ticket::RecordId::parse(s))
            {
                if self.kv.exists(&keys::session(&id))? {
                    alive = true;
                    break;
                }
            }
            alive.then_some(now + INDEX_RECHECK)
        } else {
            None
        };
        match later {
            Some(due) => {
                self.register(due, [key])?;
                Ok(false)
            }
            None => {
                self.kv.delete(key)?;
                Ok(true)
            }
        }
    }
}

/// Where a new cursor starts: before any bucket a registration at `now` uses.
fn start(now: i64) -> i64 {
    now.div_euclid(BUCKET) - 1
}

/// The part of a back-channel index entry upkeep reads (see `session_index`).
#[derive(Default, serde::Deserialize)]
struct IndexEntry {
    #[serde(default)]
    sessions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FixedClock;
    use crate::testing::MemoryStore;

    const T0: i64 = 1_000_000_020;

    /// A session record's readable line (and a sealed part upkeep never opens).
    fn record(expires_at: i64) -> Vec<u8> {
        format!(
            "{{\"v\":1,\"created_at\":0,\"last_seen\":0,\"expires_at\":{expires_at},\"rev\":0,\"check\":\"\"}}\nsealed"
        )
        .into_bytes()
    }

    fn keys_of(kv: &MemoryStore) -> Vec<String> {
        kv.snapshot()
            .into_keys()
            .filter(|k| !k.starts_with("gc:"))
            .collect()
    }

    #[test]
    fn removes_what_is_due_and_keeps_what_is_not() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(T0);
        let up = Upkeep {
            kv: &kv,
            clock: &clock,
        };
        let live = format!("{}A", "B".repeat(21));
        kv.set("sess:old", &record(1000000100)).unwrap();
        kv.set("sess:visited", &record(1000000100)).unwrap();
        kv.set("login:old", b"x").unwrap();
        kv.set("bcl:jti:x", &1i64.to_le_bytes()).unwrap();
        kv.set(&format!("sess:{live}"), &record(1000009000))
            .unwrap();
        kv.set(
            "bcl:sub:dead",
            br#"{"sessions": ["AAAAAAAAAAAAAAAAAAAAAA"]}"#,
        )
        .unwrap();
        kv.set(
            "bcl:sid:live",
            format!(r#"{{"sessions": ["{live}"]}}"#).as_bytes(),
        )
        .unwrap();
        kv.set("unrelated", b"keep").unwrap();
        up.register(T0 + 80, ["sess:old", "login:old", "bcl:jti:x"])
            .unwrap();
        up.register(
            T0 + 80,
            ["sess:visited", "bcl:sub:dead", "bcl:sid:live", "gone"],
        )
        .unwrap();
        assert_eq!(up.run().unwrap(), Ran::default(), "nothing due yet");
        // The visit moves the session's end past the first look.
        kv.set("sess:visited", &record(1000000500)).unwrap();
        clock.advance(80 + 2 * BUCKET + SETTLE);
        let ran = up.run().unwrap();
        assert_eq!(
            ran,
            Ran {
                entries: 2,
                removed: 4
            }
        );
        let mut left = keys_of(&kv);
        left.sort();
        let mut expected = vec![
            "bcl:sid:live".to_owned(),
            "sess:visited".into(),
            format!("sess:{live}"),
            "unrelated".into(),
        ];
        expected.sort();
        assert_eq!(left, expected);
        // Looked at again at its new end, then removed.
        clock.advance(500);
        up.run().unwrap();
        assert!(!keys_of(&kv).contains(&"sess:visited".to_owned()));
    }

    #[test]
    fn work_per_run_is_bounded_and_everything_goes_in_the_end() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(T0);
        let up = Upkeep {
            kv: &kv,
            clock: &clock,
        };
        for i in 0..100 {
            let key = format!("login:{i}");
            up.register(T0 + i, [key.as_str()]).unwrap();
            kv.set(&key, b"x").unwrap();
        }
        clock.advance(100 + 2 * BUCKET + SETTLE);
        let mut runs = 0;
        while !keys_of(&kv).is_empty() {
            let (reads, writes) = (kv.reads.get(), kv.writes.get());
            let ran = up.run().unwrap();
            assert!(ran.entries <= MAX_ENTRIES);
            assert!(
                kv.reads.get() - reads + kv.writes.get() - writes
                    <= 6 * MAX_ENTRIES + 2 * MAX_BUCKETS
            );
            runs += 1;
            assert!(runs < 20);
        }
        assert_eq!(runs, 100usize.div_ceil(MAX_ENTRIES));
        up.run().unwrap();
        assert_eq!(
            kv.snapshot().into_keys().collect::<Vec<_>>(),
            [keys::GC_CURSOR],
            "finished buckets leave nothing but the cursor"
        );
    }

    #[test]
    fn a_run_with_nothing_due_costs_two_reads() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(T0);
        let up = Upkeep {
            kv: &kv,
            clock: &clock,
        };
        up.run().unwrap();
        let reads = kv.reads.get();
        up.run().unwrap();
        assert_eq!(kv.reads.get() - reads, 1, "only the cursor");
    }

    #[test]
    fn two_replicas_never_process_one_entry_twice() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(T0);
        let a = Upkeep {
            kv: &kv,
            clock: &clock,
        };
        for i in 0..40 {
            a.register(T0, [format!("login:{i}").as_str()]).unwrap();
        }
        clock.advance(2 * BUCKET + SETTLE);
        let b = Upkeep {
            kv: &kv,
            clock: &clock,
        };
        // A stale cursor (b read it before a advanced it) only repeats reads.
        let stale = kv.get(keys::GC_CURSOR).unwrap();
        let ra = a.run().unwrap();
        if let Some(s) = stale {
            kv.set(keys::GC_CURSOR, &s).unwrap();
        }
        let rb = b.run().unwrap();
        let rc = a.run().unwrap();
        assert_eq!(ra.entries + rb.entries + rc.entries, 40);
    }
}
