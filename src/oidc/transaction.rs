//! The login transaction: state, nonce and PKCE verifier kept server-side
//! between `POST /login` and `GET /callback`, under `login:<id>`, where `<id>`
//! is the value of a short-lived cookie. Each transaction is used once.
//!
//! The flow is typed so that misuse does not compile: only a callback whose
//! `state` matched (`PendingLogin::verify`) yields a `VerifiedCallback`, and only
//! that can be exchanged for tokens.

use crate::seams::{Clock, Random, random_token};
use crate::secret::{Secret, constant_time_eq};
use crate::store::{KeyValue, Record, StoreError, get_json, set_json};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "login:";
/// How long a user may take at the IdP, in seconds.
pub const LIFETIME: i64 = 600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginTransaction {
    pub state: Secret,
    pub nonce: Secret,
    pub pkce_verifier: Secret,
    pub scope: String,
    pub created_at: i64,
}

impl LoginTransaction {
    /// The S256 code challenge for the verifier (RFC 7636).
    pub fn pkce_challenge(&self) -> String {
        let digest = Sha256::digest(self.pkce_verifier.expose().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    }
}

fn key(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// A new transaction: the cookie value and what to send to the IdP. Nothing is
/// stored until `save`, so a failure before the redirect leaves no trace.
pub fn new(rng: &dyn Random, clock: &dyn Clock, scope: String) -> (String, LoginTransaction) {
    let id = random_token(rng, 32);
    let txn = LoginTransaction {
        state: Secret::new(random_token(rng, 32)),
        nonce: Secret::new(random_token(rng, 32)),
        pkce_verifier: Secret::new(random_token(rng, 32)),
        scope,
        created_at: clock.now(),
    };
    (id, txn)
}

pub fn save(kv: &dyn KeyValue, id: &str, txn: &LoginTransaction) -> Result<(), StoreError> {
    set_json(kv, &key(id), txn)
}

/// A transaction found for this browser, not yet checked against the callback.
pub struct PendingLogin {
    id: String,
    txn: LoginTransaction,
}

/// A callback whose `state` matched its transaction; the transaction is consumed.
pub struct VerifiedCallback {
    pub code: Secret,
    pub txn: LoginTransaction,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    Missing,
    Mismatch,
}

impl PendingLogin {
    /// Finds the transaction for a cookie value. Unknown, expired and unreadable
    /// transactions are all `None`; expired and unreadable ones are deleted.
    pub fn find(
        kv: &dyn KeyValue,
        clock: &dyn Clock,
        id: &str,
    ) -> Result<Option<PendingLogin>, StoreError> {
        match get_json::<LoginTransaction>(kv, &key(id))? {
            Record::Missing => Ok(None),
            Record::Corrupt => {
                kv.delete(&key(id))?;
                Ok(None)
            }
            Record::Found(txn) if !(0..LIFETIME).contains(&(clock.now() - txn.created_at)) => {
                kv.delete(&key(id))?;
                Ok(None)
            }
            Record::Found(txn) => Ok(Some(PendingLogin {
                id: id.to_owned(),
                txn,
            })),
        }
    }

    /// Checks `state` without consuming anything: a mismatch leaves the store as it was.
    pub fn check_state(&self, state: Option<&str>) -> Result<(), StateError> {
        match state {
            None => Err(StateError::Missing),
            Some(s) if constant_time_eq(s.as_bytes(), self.txn.state.expose().as_bytes()) => Ok(()),
            Some(_) => Err(StateError::Mismatch),
        }
    }

    /// Ends the transaction without a code (the IdP reported an error).
    pub fn abandon(self, kv: &dyn KeyValue) -> Result<(), StoreError> {
        kv.delete(&key(&self.id))
    }

    /// Consumes the transaction (one use only) and pairs it with the code.
    pub fn verify(
        self,
        kv: &dyn KeyValue,
        state: Option<&str>,
        code: Secret,
    ) -> Result<Result<VerifiedCallback, StateError>, StoreError> {
        if let Err(e) = self.check_state(state) {
            return Ok(Err(e));
        }
        kv.delete(&key(&self.id))?;
        Ok(Ok(VerifiedCallback {
            code,
            txn: self.txn,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seams::fakes::{CountingRandom, FixedClock};
    use crate::store::MemoryStore;

    fn setup() -> (MemoryStore, FixedClock, String, LoginTransaction) {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let (id, txn) = new(&CountingRandom::default(), &clock, "openid".into());
        save(&kv, &id, &txn).unwrap();
        (kv, clock, id, txn)
    }

    #[test]
    fn values_are_fresh_and_distinct() {
        let (_, _, id, txn) = setup();
        let values = [
            id.as_str(),
            txn.state.expose(),
            txn.nonce.expose(),
            txn.pkce_verifier.expose(),
        ];
        for (i, a) in values.iter().enumerate() {
            assert_eq!(a.len(), 43);
            for b in &values[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn pkce_s256_agrees_with_oauth2_crate() {
        let txn = setup().3;
        let verifier = oauth2::PkceCodeVerifier::new(txn.pkce_verifier.expose().to_owned());
        let theirs = oauth2::PkceCodeChallenge::from_code_verifier_sha256(&verifier);
        assert_eq!(txn.pkce_challenge(), theirs.as_str());
        assert_eq!(txn.pkce_challenge().len(), 43);
    }

    #[test]
    fn verify_consumes_once() {
        let (kv, clock, id, txn) = setup();
        let p = PendingLogin::find(&kv, &clock, &id).unwrap().unwrap();
        let v = p
            .verify(&kv, Some(txn.state.expose()), Secret::new("code"))
            .unwrap()
            .unwrap();
        assert_eq!(v.txn, txn);
        assert!(
            PendingLogin::find(&kv, &clock, &id).unwrap().is_none(),
            "replay must fail"
        );
    }

    #[test]
    fn wrong_or_missing_state_consumes_nothing() {
        let (kv, clock, id, _) = setup();
        let before = kv.snapshot();
        let p = PendingLogin::find(&kv, &clock, &id).unwrap().unwrap();
        assert_eq!(p.check_state(None), Err(StateError::Missing));
        let r = p
            .verify(&kv, Some("tampered"), Secret::new("code"))
            .unwrap();
        assert!(matches!(r, Err(StateError::Mismatch)));
        assert_eq!(kv.snapshot(), before);
    }

    #[test]
    fn expires() {
        let (kv, clock, id, _) = setup();
        clock.advance(LIFETIME);
        assert!(PendingLogin::find(&kv, &clock, &id).unwrap().is_none());
        assert!(kv.keys_with_prefix(KEY_PREFIX).is_empty());
    }

    #[test]
    fn debug_does_not_leak() {
        let (_, _, _, txn) = setup();
        let shown = format!("{txn:?}");
        assert!(!shown.contains(txn.state.expose()));
        assert!(!shown.contains(txn.pkce_verifier.expose()));
    }
}
