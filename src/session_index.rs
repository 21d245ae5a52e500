//! An index from the IdP's session (`sid`) and user (`sub`) to our session ids,
//! so a back-channel logout can find the sessions it names on any replica
//! that shares the store; and the one-use record of logout tokens (`jti`).
//!
//! Index entries are read-modify-write without compare-and-swap: two logins
//! of the same user at the same instant on two replicas can lose one entry;
//! that session then ends only by expiry or its own logout. Entries whose
//! session is gone are pruned on each add, and upkeep removes dead entries.
//! Each session's record lists its index keys, so a stale entry can never end
//! a session it does not name.

use crate::log::log_line;
use crate::keys;
use crate::ports::{KeyValue, StoreError};
use crate::ticket::RecordId;
use crate::upkeep::Upkeep;
use serde::{Deserialize, Serialize};

/// Most sessions remembered per sid / sub.
const MAX_SESSIONS: usize = 20;

#[derive(Default, Serialize, Deserialize)]
struct Entry {
    sessions: Vec<String>,
}

fn load(kv: &dyn KeyValue, key: &str) -> Result<Vec<RecordId>, StoreError> {
    Ok(match kv.get(key)? {
        Some(bytes) => serde_json::from_slice::<Entry>(&bytes)
            .unwrap_or_default()
            .sessions
            .iter()
            .filter_map(|s| RecordId::parse(s))
            .collect(),
        None => Vec::new(),
    })
}

/// Records a new session under each of its index keys (already registered
/// with upkeep by the session's creation).
pub fn add(kv: &dyn KeyValue, index_keys: &[String], id: &RecordId) -> Result<(), StoreError> {
    for k in index_keys {
        let mut ids = Vec::new();
        for existing in load(kv, k)? {
            if existing != *id && kv.exists(&keys::session(&existing))? {
                ids.push(existing.as_str().to_owned());
            }
        }
        ids.push(id.as_str().to_owned());
        let keep = ids.len().saturating_sub(MAX_SESSIONS);
        let entry = Entry {
            sessions: ids.split_off(keep),
        };
        let bytes = serde_json::to_vec(&entry).map_err(|e| StoreError(format!("encode: {e}")))?;
        kv.set(k, &bytes)?;
    }
    Ok(())
}

/// The sessions recorded under `key`.
pub fn sessions(kv: &dyn KeyValue, key: &str) -> Result<Vec<RecordId>, StoreError> {
    load(kv, key)
}

/// A logout token's claim on its `jti`.
pub enum JtiClaim {
    /// This request is the first to present it; [`JtiClaim::undo`] if the
    /// logout then fails, so the IdP's retry is not refused.
    First(String),
    /// Another request presented it first: a replay.
    Seen,
}

/// Marks a logout token's `jti` as used, atomically: of two requests with
/// the same token, on any replicas, only the one whose `increment` returns 1
/// is first. The counter is kept until the token expires (then a replay fails
/// validation anyway) and registered with upkeep for then.
pub fn claim_jti(
    kv: &dyn KeyValue,
    upkeep: &Upkeep,
    iss: &str,
    jti: &str,
    exp: i64,
) -> Result<JtiClaim, StoreError> {
    let k = keys::index(keys::IndexKind::Jti, iss, jti);
    upkeep.register(exp + crate::oidc::id_token::CLOCK_SKEW, [k.as_str()])?;
    Ok(match kv.increment(&k, 1)? {
        1 => JtiClaim::First(k),
        _ => JtiClaim::Seen,
    })
}

impl JtiClaim {
    /// Releases a first claim, best effort.
    pub fn undo(self, kv: &dyn KeyValue) {
        if let JtiClaim::First(k) = self
            && let Err(e) = kv.delete(&k)
        {
            log_line!("backchannel-logout: cannot release the jti: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{
        Lifetimes, Origin, Sessions,
        tests::{identity, tokens},
    };
    use crate::testing::MemoryStore;
    use crate::testing::{CountingRandom, FixedClock};

    #[test]
    fn indexes_by_sid_and_sub_and_prunes_dead_sessions() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let rng = CountingRandom::default();
        let s = Sessions {
            kv: &kv,
            clock: &clock,
            rng: &rng,
            lifetimes: Lifetimes {
                idle: 100,
                absolute: 100,
            },
            lock_hold: 25,
        };
        let index = identity().index_keys();
        let (a, sa) = s.create(identity(), tokens("a"), Origin::default()).unwrap();
        add(&kv, &index, a.id()).unwrap();
        let (b, _) = s.create(identity(), tokens("b"), Origin::default()).unwrap();
        add(&kv, &index, b.id()).unwrap();
        let sub_key = keys::index(keys::IndexKind::Sub, "https://idp.example", "alice");
        assert_eq!(
            sessions(&kv, &sub_key).unwrap(),
            vec![a.id().clone(), b.id().clone()]
        );
        let sid_key = keys::index(keys::IndexKind::Sid, "https://idp.example", "sid-1");
        assert_eq!(sessions(&kv, &sid_key).unwrap().len(), 2);
        s.end(a.id(), sa.created_at).unwrap();
        let (c, _) = s.create(identity(), tokens("c"), Origin::default()).unwrap();
        add(&kv, &index, c.id()).unwrap();
        assert_eq!(
            sessions(&kv, &sub_key).unwrap(),
            vec![b.id().clone(), c.id().clone()]
        );
    }

    #[test]
    fn jti_is_accepted_once_and_again_after_an_undo() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let up = Upkeep {
            kv: &kv,
            clock: &clock,
        };
        assert!(matches!(
            claim_jti(&kv, &up, "iss", "j1", 5).unwrap(),
            JtiClaim::First(_)
        ));
        assert!(matches!(
            claim_jti(&kv, &up, "iss", "j1", 5).unwrap(),
            JtiClaim::Seen
        ));
        let claim = claim_jti(&kv, &up, "iss", "j2", 5).unwrap();
        assert!(matches!(claim, JtiClaim::First(_)));
        claim.undo(&kv);
        assert!(matches!(
            claim_jti(&kv, &up, "iss", "j2", 5).unwrap(),
            JtiClaim::First(_)
        ));
    }
}
