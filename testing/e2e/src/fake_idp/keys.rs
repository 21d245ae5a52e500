//! The fake IdP's signing keys: a generated key under the kid it publishes,
//! and the forgeries it can sign instead (from the shared test support).

use serde_json::Value;
use test_support::TestKey;

pub use test_support::{KeyKind, hs256_forgery as hs256, unsigned};

/// A private key with its kid.
#[derive(Debug)]
pub struct SigningKey {
    pub kid: String,
    key: TestKey,
}

impl SigningKey {
    /// A fresh key of `kind` named `kid`.
    pub fn generate(kind: KeyKind, kid: &str) -> SigningKey {
        SigningKey {
            kid: kid.to_string(),
            key: TestKey::generate(kind),
        }
    }

    /// The public JWK with this key's kid and algorithm, as the JWKS lists it.
    pub fn public_jwk(&self) -> Value {
        self.key.public_jwk_with_alg(&self.kid)
    }

    /// The SPKI PEM of an RSA public key (what an HS256 key-confusion attack uses).
    pub fn public_pem(&self) -> Option<&str> {
        self.key.public_pem()
    }

    /// Signs `claims` with this key; the header names `kid` (None: no `kid` header).
    pub fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        self.key.sign(kid, claims)
    }
}
