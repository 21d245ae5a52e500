//! The P-256 keys the component signs with (ES256): the client's own key for
//! `private_key_jwt` assertions and each session's DPoP key. One place for the
//! public JWK, its RFC 7638 thumbprint and the compact JWS, so both kinds of
//! JWT are made the same way.
//!
//! Building a key derives its public point, a scalar multiplication of some 12
//! million wasm instructions, and so is signing: keys are only built where a
//! JWT is signed (login, callback, refresh), never on `GET /user`.

use crate::ports::Random;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A P-256 private key; `Debug` never shows it.
#[derive(Clone)]
pub struct Es256Key(SigningKey);

impl std::fmt::Debug for Es256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Es256Key([redacted])")
    }
}

impl Es256Key {
    /// The key with this private scalar (32 bytes, in `1..n`), or `None`.
    pub fn from_scalar(d: &[u8]) -> Option<Self> {
        SigningKey::from_slice(d).ok().map(Self)
    }

    /// A fresh key from `rng`. A 32-byte string is out of range with
    /// probability about 2^-32, so the loop almost never runs twice.
    pub fn generate(rng: &dyn Random) -> Self {
        loop {
            let mut d = [0u8; 32];
            rng.fill(&mut d);
            if let Some(key) = Self::from_scalar(&d) {
                return key;
            }
        }
    }

    /// The private scalar, for a sealed record to keep.
    pub fn scalar(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    /// `kty crv x y`: the members a JWK of the public key must have.
    pub fn public_jwk(&self) -> Value {
        let (x, y) = self.coordinates();
        json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})
    }

    /// The public key, SEC1 uncompressed (`04 || x || y`), as PKCS#8 embeds it.
    pub fn public_point(&self) -> p256::EncodedPoint {
        self.0.verifying_key().to_encoded_point(false)
    }

    /// `x` and `y` of the public key, base64url (32 bytes each).
    pub fn coordinates(&self) -> (String, String) {
        let point = self.public_point();
        let enc = |c: Option<&p256::FieldBytes>| {
            URL_SAFE_NO_PAD.encode(c.map(|b| b.as_slice()).unwrap_or_default())
        };
        (enc(point.x()), enc(point.y()))
    }

    /// RFC 7638: SHA-256 of the required members in lexicographic order,
    /// base64url. A `kid` for the client key, a `jkt` for a DPoP key.
    pub fn thumbprint(&self) -> String {
        let (x, y) = self.coordinates();
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A compact JWS of `claims` under `header` (which must say ES256).
    pub fn sign_jwt(&self, header: &Value, claims: &Value) -> String {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let signing_input = format!("{}.{}", b64(header), b64(claims));
        let signature: Signature = self.0.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::CountingRandom;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};

    #[test]
    fn a_signed_jwt_verifies_with_its_public_jwk() {
        let key = Es256Key::generate(&CountingRandom::default());
        let jwt = key.sign_jwt(&json!({"alg": "ES256"}), &json!({"sub": "x"}));
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = decode::<Value>(&jwt, &DecodingKey::from_jwk(&jwk).unwrap(), &validation);
        assert_eq!(data.unwrap().claims["sub"], "x");
    }

    #[test]
    fn the_scalar_round_trips() {
        let key = Es256Key::generate(&CountingRandom::default());
        let again = Es256Key::from_scalar(&key.scalar()).unwrap();
        assert_eq!(again.thumbprint(), key.thumbprint());
        assert!(Es256Key::from_scalar(&[0u8; 32]).is_none());
        assert!(Es256Key::from_scalar(&[0xff; 32]).is_none());
    }
}
