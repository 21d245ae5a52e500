//! The IdP's signing keys (JWKS), cached in the key-value store.
//!
//! When a token names a key we do not have, the keys are fetched again once;
//! such forced refetches are rate-limited so that a flood of tokens with
//! made-up `kid`s cannot make us hammer the IdP: each takes a store lock
//! ([`crate::lock`]) that it never releases, so across all replicas at most
//! one refetch starts within any `MIN_REFETCH_INTERVAL` seconds, also when
//! requests arrive together and when the fetch fails.

use super::cache::{Record, get_json, set_json};
use super::id_token::IdTokenError;
use super::{OidcError, fetch_json};
use crate::keys::LockSubject;
use crate::lock::Lock;
use crate::ports::KeyValue;
use crate::ports::{Clock, HttpClient};
use crate::upkeep::Upkeep;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use serde::{Deserialize, Serialize};

/// No two forced refetches start within this many seconds; the next one is
/// possible at most half as long again later (the lock's windows).
pub const MIN_REFETCH_INTERVAL: i64 = 60;
const MAX_KEYS: usize = 50;

#[derive(Serialize, Deserialize)]
struct Cached {
    fetched_at: i64,
    jwks_uri: String,
    keys: Vec<serde_json::Value>,
}

/// Keeps the usable signature keys of a JWKS document; skips keys we cannot
/// use (unknown types, encryption keys, malformed or weak parameters).
pub fn usable_keys(doc: &serde_json::Value) -> Result<Vec<Jwk>, OidcError> {
    let keys = doc
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| OidcError::BadResponse("JWKS has no `keys` array".into()))?;
    Ok(keys
        .iter()
        .take(MAX_KEYS)
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(well_formed)
        .collect())
}

fn b64_len(s: &str) -> Option<usize> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
        .map(|b| b.len())
}

/// Rejects parameters the crypto backend would choke on (or panic on, for short Ed25519 keys).
fn well_formed(jwk: &Jwk) -> bool {
    use jsonwebtoken::jwk::PublicKeyUse;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return false;
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            matches!(b64_len(&p.n), Some(n) if (256..=1024).contains(&n))
                && matches!(b64_len(&p.e), Some(1..=8))
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let size = match p.curve {
                EllipticCurve::P256 => 32,
                EllipticCurve::P384 => 48,
                _ => return false,
            };
            b64_len(&p.x) == Some(size) && b64_len(&p.y) == Some(size)
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            p.curve == EllipticCurve::Ed25519 && b64_len(&p.x) == Some(32)
        }
        // Symmetric keys never verify ID tokens here.
        _ => false,
    }
}

fn fetch(http: &dyn HttpClient, jwks_uri: &str) -> Result<Vec<serde_json::Value>, OidcError> {
    let doc = fetch_json(http, jwks_uri, "JWKS")?;
    usable_keys(&doc)?; // validates the shape before we cache it
    Ok(doc["keys"].as_array().cloned().unwrap_or_default())
}

/// The IdP's signing keys: cached in the store, fetched when stale or unknown.
pub struct KeySet<'a> {
    /// Where the keys are cached.
    pub kv: &'a dyn KeyValue,
    /// Fetches them from the IdP.
    pub http: &'a dyn HttpClient,
    /// Ages the cache.
    pub clock: &'a dyn Clock,
    /// Seconds the cached keys are used before being fetched again.
    pub ttl: i64,
    /// Whether forced refetches count against the back-channel budget.
    pub backchannel: bool,
}

impl KeySet<'_> {
    /// The current keys, from the cache while fresh.
    pub fn current(&self, jwks_uri: &str) -> Result<Vec<Jwk>, OidcError> {
        let now = self.clock.now();
        if let Record::Found(c) = get_json::<Cached>(self.kv, crate::keys::JWKS)?
            && c.jwks_uri == jwks_uri
            && (0..self.ttl).contains(&(now - c.fetched_at))
        {
            return usable_keys(&serde_json::json!({ "keys": c.keys }));
        }
        self.fetch_and_cache(jwks_uri, now)
    }

    /// Fetches the keys again because a token named an unknown key.
    /// `Ok(None)` when a forced refetch started too recently, on any replica.
    pub fn refetch(&self, jwks_uri: &str) -> Result<Option<Vec<Jwk>>, OidcError> {
        let upkeep = Upkeep {
            kv: self.kv,
            clock: self.clock,
        };
        let lock = Lock {
            kv: self.kv,
            clock: self.clock,
            upkeep: &upkeep,
            hold: MIN_REFETCH_INTERVAL,
        };
        let subject = LockSubject::JwksRefetch {
            backchannel: self.backchannel,
        };
        let Some(slot) = lock.try_acquire(&subject)? else {
            return Ok(None);
        };
        slot.lapse();
        self.fetch_and_cache(jwks_uri, self.clock.now()).map(Some)
    }

    /// Fetches the JWKS, caches it, and returns its usable keys.
    fn fetch_and_cache(&self, jwks_uri: &str, now: i64) -> Result<Vec<Jwk>, OidcError> {
        let keys = fetch(self.http, jwks_uri)?;
        let record = Cached {
            fetched_at: now,
            jwks_uri: jwks_uri.into(),
            keys: keys.clone(),
        };
        set_json(self.kv, crate::keys::JWKS, &record)?;
        usable_keys(&serde_json::json!({ "keys": keys }))
    }
}

impl KeySet<'_> {
    /// Runs `check` with the current keys; when the token names a key we do not
    /// have, fetches the keys again once (rate-limited) and retries.
    pub fn verify_with<T>(
        &self,
        jwks_uri: &str,
        check: impl Fn(&[Jwk]) -> Result<T, IdTokenError>,
    ) -> Result<T, OidcError> {
        let unknown = || OidcError::InvalidToken("signed with an unknown key".into());
        match check(&self.current(jwks_uri)?) {
            Ok(v) => Ok(v),
            Err(IdTokenError::Invalid(why)) => Err(OidcError::InvalidToken(why)),
            Err(IdTokenError::UnknownKey) => match self.refetch(jwks_uri)? {
                None => Err(unknown()),
                Some(fresh) => check(&fresh).map_err(|e| match e {
                    IdTokenError::UnknownKey => unknown(),
                    IdTokenError::Invalid(why) => OidcError::InvalidToken(why),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryStore;
    use crate::testing::{FakeHttp, FixedClock, json_response};
    use serde_json::json;

    /// The keys of `https://idp.example`, cached for 300 s.
    fn key_set<'a>(
        kv: &'a MemoryStore,
        http: &'a FakeHttp,
        clock: &'a FixedClock,
        backchannel: bool,
    ) -> KeySet<'a> {
        KeySet {
            kv,
            http,
            clock,
            ttl: 300,
            backchannel,
        }
    }

    #[test]
    fn keeps_only_usable_signature_keys() {
        let doc = json!({"keys": [
            test_support::rsa().public_jwk("r1"),
            test_support::ec().public_jwk("e1"),
            test_support::ed().public_jwk("d1"),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "RSA", "use": "enc", "n": test_support::rsa().public_jwk("x")["n"], "e": "AQAB"},
            {"kty": "weird"},
            "not an object",
        ]});
        let keys = usable_keys(&doc).unwrap();
        let kids: Vec<_> = keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect();
        assert_eq!(kids, ["r1", "e1", "d1"]);
    }

    #[test]
    fn missing_keys_array_is_bad_response() {
        assert!(usable_keys(&json!({"nokeys": []})).is_err());
    }

    /// A JWKS endpoint with one EC key, `e1`.
    fn serving_one_ec_key() -> FakeHttp {
        FakeHttp::new(|_| json_response(200, &json!({"keys": [test_support::ec().public_jwk("e1")]})))
    }

    #[test]
    fn forced_refetch_is_rate_limited() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let http = serving_one_ec_key();
        let ks = key_set(&kv, &http, &clock, false);
        ks.current("https://idp.example/jwks").unwrap();
        ks.current("https://idp.example/jwks").unwrap();
        assert_eq!(http.calls_to("/jwks"), 1);
        assert!(ks.refetch("https://idp.example/jwks").unwrap().is_some());
        assert_eq!(http.calls_to("/jwks"), 2);
        for _ in 0..100 {
            assert!(ks.refetch("https://idp.example/jwks").unwrap().is_none());
        }
        assert_eq!(http.calls_to("/jwks"), 2);
        clock.advance(MIN_REFETCH_INTERVAL - 1);
        assert!(ks.refetch("https://idp.example/jwks").unwrap().is_none());
        clock.advance(MIN_REFETCH_INTERVAL / 2 + 1);
        assert!(ks.refetch("https://idp.example/jwks").unwrap().is_some());
        assert_eq!(http.calls_to("/jwks"), 3);
    }

    /// A refetch that fails still uses up the slot: an IdP that is down is not
    /// asked once per made-up `kid`.
    #[test]
    fn a_failed_refetch_counts_against_the_limit() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let http = FakeHttp::new(|_| json_response(500, &json!({})));
        let ks = key_set(&kv, &http, &clock, false);
        assert!(ks.refetch("https://idp.example/jwks").is_err());
        for _ in 0..20 {
            assert!(ks.refetch("https://idp.example/jwks").unwrap().is_none());
        }
        assert_eq!(http.calls_to("/jwks"), 1);
    }

    #[test]
    fn backchannel_floods_do_not_use_up_the_login_budget() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let http = serving_one_ec_key();
        let backchannel = key_set(&kv, &http, &clock, true);
        let login = KeySet {
            backchannel: false,
            ..backchannel
        };
        assert!(
            backchannel
                .refetch("https://idp.example/jwks")
                .unwrap()
                .is_some()
        );
        assert!(
            backchannel
                .refetch("https://idp.example/jwks")
                .unwrap()
                .is_none()
        );
        assert!(
            login.refetch("https://idp.example/jwks").unwrap().is_some(),
            "logins keep their own budget"
        );
        assert!(login.refetch("https://idp.example/jwks").unwrap().is_none());
    }
}
