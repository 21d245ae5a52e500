//! An index from the IdP's session (`sid`) and user (`sub`) to our session ids,
//! so a back-channel logout can find the sessions it names on any replica
//! that shares the store.
//!
//! Keys are `bcl:sid:<hash>` and `bcl:sub:<hash>` (hashes of issuer + value, so
//! arbitrary IdP strings never become raw key names). Spin key-value has no
//! compare-and-swap: two logins of the same user at the same instant on two
//! replicas can lose one entry; that session then ends only by expiry or
//! its own logout. Entries whose session is gone are pruned on each add.

use crate::session::{Identity, KEY_PREFIX as SESSION_PREFIX, SessionId};
use crate::store::{KeyValue, Record, StoreError, get_json, set_json};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "bcl:";
/// Most sessions remembered per sid / sub.
const MAX_SESSIONS: usize = 20;

#[derive(Default, Serialize, Deserialize)]
struct Entry {
    sessions: Vec<String>,
}

/// `bcl:<kind>:<hash of issuer and value>`.
pub fn key(kind: &str, iss: &str, value: &str) -> String {
    let digest = Sha256::digest(format!("{iss}\n{value}").as_bytes());
    format!(
        "{PREFIX}{kind}:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18])
    )
}

fn load(kv: &dyn KeyValue, key: &str) -> Result<Vec<SessionId>, StoreError> {
    Ok(match get_json::<Entry>(kv, key)? {
        Record::Found(e) => e
            .sessions
            .iter()
            .filter_map(|s| SessionId::parse(s))
            .collect(),
        _ => Vec::new(),
    })
}

/// Records a new session under its `sid` and `sub`.
pub fn add(kv: &dyn KeyValue, identity: &Identity, id: &SessionId) -> Result<(), StoreError> {
    let mut keys = vec![key("sub", &identity.iss, &identity.sub)];
    if let Some(sid) = &identity.sid {
        keys.push(key("sid", &identity.iss, sid));
    }
    for k in keys {
        let mut ids = Vec::new();
        for existing in load(kv, &k)? {
            if existing != *id && kv.exists(&format!("{SESSION_PREFIX}{}", existing.as_str()))? {
                ids.push(existing.as_str().to_owned());
            }
        }
        ids.push(id.as_str().to_owned());
        let keep = ids.len().saturating_sub(MAX_SESSIONS);
        set_json(
            kv,
            &k,
            &Entry {
                sessions: ids.split_off(keep),
            },
        )?;
    }
    Ok(())
}

/// The sessions recorded under `key`.
pub fn sessions(kv: &dyn KeyValue, key: &str) -> Result<Vec<SessionId>, StoreError> {
    load(kv, key)
}

/// Marks a logout token's `jti` as used; `false` if it was seen before.
pub fn first_use_of_jti(
    kv: &dyn KeyValue,
    iss: &str,
    jti: &str,
    exp: i64,
) -> Result<bool, StoreError> {
    let k = key("jti", iss, jti);
    if kv.exists(&k)? {
        return Ok(false);
    }
    set_json(kv, &k, &serde_json::json!({ "exp": exp }))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seams::fakes::{CountingRandom, FixedClock};
    use crate::session::{
        Lifetimes, Sessions,
        tests::{identity, tokens},
    };
    use crate::store::MemoryStore;

    #[test]
    fn indexes_by_sid_and_sub_and_prunes_dead_sessions() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let rng = CountingRandom::default();
        let s = Sessions {
            kv: &kv,
            clock: &clock,
            lifetimes: Lifetimes {
                idle: 100,
                absolute: 100,
            },
        };
        let (a, _) = s.create(&rng, identity(), tokens("a")).unwrap();
        add(&kv, &identity(), &a).unwrap();
        let (b, _) = s.create(&rng, identity(), tokens("b")).unwrap();
        add(&kv, &identity(), &b).unwrap();
        let sub_key = key("sub", "https://idp.example", "alice");
        assert_eq!(sessions(&kv, &sub_key).unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(
            sessions(&kv, &key("sid", "https://idp.example", "sid-1"))
                .unwrap()
                .len(),
            2
        );
        s.delete(&a).unwrap();
        let (c, _) = s.create(&rng, identity(), tokens("c")).unwrap();
        add(&kv, &identity(), &c).unwrap();
        assert_eq!(sessions(&kv, &sub_key).unwrap(), vec![b, c]);
    }

    #[test]
    fn keys_do_not_leak_raw_values() {
        let k = key("sub", "https://idp.example", "alice@example.com");
        assert!(k.starts_with("bcl:sub:") && !k.contains("alice"));
        assert_ne!(k, key("sub", "https://other.example", "alice@example.com"));
    }

    #[test]
    fn jti_is_accepted_once() {
        let kv = MemoryStore::new();
        assert!(first_use_of_jti(&kv, "iss", "j1", 5).unwrap());
        assert!(!first_use_of_jti(&kv, "iss", "j1", 5).unwrap());
        assert!(first_use_of_jti(&kv, "iss", "j2", 5).unwrap());
    }
}
