//! One holder at a time, on every replica: a lock built from the store's
//! atomic `increment`, since Spin's compare-and-swap cannot be trusted and its
//! store has no TTL. It guards a session's writes (released when done) and
//! rate-limits forced JWKS refetches (never released: it lapses by itself).
//!
//! Time is cut into windows of `window` seconds. A holder acquiring at window
//! `w` increments the keys of windows `w ..= w + SPAN` and holds the lock only
//! if every increment returned 1, i.e. it was the first to touch each key.
//!
//! Why it is safe: two contenders whose windows are at most `SPAN` apart share
//! at least one key; Redis (or SQLite's transaction) orders the two increments
//! of that key, and only the first returns 1, so at most one of them holds.
//! Contenders more than `SPAN` windows apart do not conflict: that is how a
//! lock left by a crashed replica stops mattering, at most `(SPAN + 1) *
//! window` seconds after it was taken, while a live holder is protected for at
//! least `SPAN * window` seconds. A contender that fails deletes the keys it
//! was first on, so a lost race does not block the next attempt; nobody else
//! can hold through a key that returned 1 to someone else.
//!
//! Every lock's keys are registered with upkeep as soon as an attempt wins its
//! first key, so a holder that dies leaves nothing behind for long.

use crate::log::log_line;
use crate::keys::{self, LockSubject};
use crate::ports::Clock;
use crate::ports::{KeyValue, StoreError};
use crate::upkeep::Upkeep;

/// Windows a holder claims beyond its own.
const SPAN: i64 = 2;

/// A held lock; release it with [`Held::release`].
#[must_use = "a lock must be released"]
pub struct Held {
    keys: Vec<String>,
}

/// A lock in the store (see the module's doc for why it is safe).
pub struct Lock<'a> {
    /// Where the lock's keys live.
    pub kv: &'a dyn KeyValue,
    /// Picks the time windows.
    pub clock: &'a dyn Clock,
    /// Removes keys a holder leaves behind.
    pub upkeep: &'a Upkeep<'a>,
    /// Seconds a holder needs at most (from taking the lock to its last write).
    pub hold: i64,
}

impl Lock<'_> {
    /// Window length: `SPAN` windows cover the hold time.
    fn window(&self) -> i64 {
        ((self.hold + SPAN - 1) / SPAN).max(1)
    }

    /// Takes the lock of `subject` if nobody holds it; never waits.
    pub fn try_acquire(&self, subject: &LockSubject) -> Result<Option<Held>, StoreError> {
        let window = self.window();
        let now = self.clock.now();
        let first = now.div_euclid(window);
        let all: Vec<String> = (first..=first + SPAN).map(|w| keys::lock(subject, w)).collect();
        let mut won = Vec::new();
        for key in &all {
            match self.kv.increment(key, 1) {
                Ok(1) => {
                    won.push(key.clone());
                    // Registered once this attempt may leave keys behind; a
                    // lost race on the first key costs one increment.
                    if won.len() == 1
                        && let Err(e) = self
                            .upkeep
                            .register((first + SPAN + 1) * window, all.iter().map(String::as_str))
                    {
                        Held { keys: won }.release(self.kv);
                        return Err(e);
                    }
                }
                Ok(_) => {
                    Held { keys: won }.release(self.kv);
                    return Ok(None);
                }
                Err(e) => {
                    Held { keys: won }.release(self.kv);
                    return Err(e);
                }
            }
        }
        Ok(Some(Held { keys: won }))
    }
}

impl Held {
    /// Lets the lock lapse by itself: a rate limit holds for its whole hold
    /// time, also when what it guarded failed. Upkeep removes its keys.
    pub fn lapse(self) {}

    /// Frees the lock. Best effort: keys that cannot be deleted stop mattering
    /// when their windows pass, and upkeep removes them.
    pub fn release(self, kv: &dyn KeyValue) {
        for key in &self.keys {
            if let Err(e) = kv.delete(key) {
                log_line!("lock: cannot release: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FixedClock;
    use crate::testing::MemoryStore;
    use crate::ticket::RecordId;

    /// One attempt at the lock of a fixed session, at `clock`'s time, hold 20 s
    /// (window 10 s, span 2).
    fn attempt(kv: &MemoryStore, clock: &FixedClock) -> Result<Option<Held>, StoreError> {
        let upkeep = Upkeep { kv, clock };
        let id = RecordId::parse("AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        Lock {
            kv,
            clock,
            upkeep: &upkeep,
            hold: 20,
        }
        .try_acquire(&LockSubject::Session(&id))
    }

    fn taken(kv: &MemoryStore, clock: &FixedClock) -> bool {
        attempt(kv, clock).unwrap().is_none()
    }

    #[test]
    fn one_holder_at_a_time_and_free_again_after_release() {
        let (kv, clock) = (MemoryStore::new(), FixedClock::at(1_000_000));
        let held = attempt(&kv, &clock).unwrap().expect("free");
        assert!(taken(&kv, &clock));
        clock.advance(19);
        assert!(taken(&kv, &clock), "still taken within the hold time");
        held.release(&kv);
        assert!(!taken(&kv, &clock), "free after release");
    }

    #[test]
    fn a_lock_left_behind_stops_mattering_after_its_span() {
        let (kv, clock) = (MemoryStore::new(), FixedClock::at(1_000_000));
        let _crashed = attempt(&kv, &clock).unwrap().unwrap();
        // Protected for at least 20 s, at most 30 s.
        let mut waited = 0;
        while taken(&kv, &clock) {
            clock.advance(1);
            waited += 1;
            assert!(waited <= 30, "a dead holder's lock lasted too long");
        }
        assert!(waited >= 20, "a live holder's lock lasted only {waited} s");
    }

    #[test]
    fn holders_at_every_offset_exclude_each_other_while_within_the_hold_time() {
        for start in 0..10 {
            let kv = MemoryStore::new();
            let _a = attempt(&kv, &FixedClock::at(1_000_000 + start))
                .unwrap()
                .unwrap();
            for later in 0..20 {
                let other = FixedClock::at(1_000_000 + start + later);
                assert!(taken(&kv, &other), "{start} {later}");
            }
        }
    }

    #[test]
    fn a_failed_attempt_leaves_no_key_that_blocks_the_next() {
        let (kv, clock) = (MemoryStore::new(), FixedClock::at(1_000_000));
        let held = attempt(&kv, &clock).unwrap().unwrap();
        for _ in 0..3 {
            assert!(taken(&kv, &clock));
        }
        held.release(&kv);
        assert!(
            !kv.snapshot().keys().any(|k| k.starts_with("lock:")),
            "released and lost attempts leave no lock key"
        );
    }

    #[test]
    fn store_failure_is_an_error_and_holds_nothing() {
        let (kv, clock) = (MemoryStore::new(), FixedClock::at(1_000_000));
        kv.down.set(true);
        assert!(attempt(&kv, &clock).is_err());
    }
}
