//! Keys that sign tokens as an IdP would (RSA 2048, P-256, Ed25519), with the
//! public JWK and PEM that let a relying party check them.

use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::base64url;

/// The kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA 2048: signs RS256 (and PS256 through [`TestKey::sign_as`]).
    Rsa,
    /// P-256: signs ES256.
    Ec,
    /// Ed25519: signs EdDSA.
    Ed,
}

/// A private key, the algorithm it signs with and its public halves.
pub struct TestKey {
    pub kind: KeyKind,
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public JWK's key members and `use`, without `kid` or `alg`.
    public: Value,
    /// For RSA: the public key as SPKI PEM, what an HS256 key-confusion forgery uses.
    public_pem: Option<String>,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestKey({:?})", self.alg)
    }
}

impl TestKey {
    /// A fresh key of `kind`. RSA keys take a while even optimised: the
    /// cached [`rsa`] and [`rsa_other`] serve where any key will do.
    pub fn generate(kind: KeyKind) -> TestKey {
        match kind {
            KeyKind::Rsa => new_rsa(),
            KeyKind::Ec => Self::from_p256(p256::SecretKey::random(&mut rand::thread_rng())),
            KeyKind::Ed => new_ed(),
        }
    }

    /// The P-256 key with this secret scalar: the same key, and so the same
    /// tokens, on every run (what replaying a fuzz finding needs).
    pub fn ec_from_scalar(scalar: &[u8; 32]) -> TestKey {
        Self::from_p256(p256::SecretKey::from_slice(scalar).expect("a valid P-256 scalar"))
    }

    fn from_p256(key: p256::SecretKey) -> TestKey {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::EncodePrivateKey;
        let point = key.public_key().to_encoded_point(false);
        TestKey {
            kind: KeyKind::Ec,
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(
                key.to_pkcs8_der().expect("encode the EC key").as_bytes(),
            ),
            public: json!({
                "kty": "EC", "crv": "P-256", "use": "sig",
                "x": base64url(point.x().expect("x")), "y": base64url(point.y().expect("y")),
            }),
            public_pem: None,
        }
    }

    /// The public JWK named `kid`, without `alg`: it verifies every algorithm
    /// its key type allows (an RSA key both RS256 and PS256).
    pub fn public_jwk(&self, kid: &str) -> Value {
        let mut jwk = self.public.clone();
        jwk["kid"] = json!(kid);
        jwk
    }

    /// The public JWK named `kid` and pinned to this key's `alg`, as IdPs publish them.
    pub fn public_jwk_with_alg(&self, kid: &str) -> Value {
        let mut jwk = self.public_jwk(kid);
        jwk["alg"] = serde_json::to_value(self.alg).expect("an algorithm name");
        jwk
    }

    /// For an RSA key, the public key as SPKI PEM.
    pub fn public_pem(&self) -> Option<&str> {
        self.public_pem.as_deref()
    }

    /// Signs `claims` with this key's algorithm; the header names `kid` (None: no `kid`).
    pub fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        self.sign_as(self.alg, kid, claims)
    }

    /// Signs `claims` with `alg`, which must suit the key (PS256 for an RSA key, say).
    pub fn sign_as(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign a token")
    }
}

fn new_rsa() -> TestKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("generate an RSA key");
    let pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("encode the RSA public key");
    TestKey {
        kind: KeyKind::Rsa,
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(
            key.to_pkcs1_der().expect("encode the RSA key").as_bytes(),
        ),
        public: json!({
            "kty": "RSA", "use": "sig",
            "n": base64url(&key.n().to_bytes_be()), "e": base64url(&key.e().to_bytes_be()),
        }),
        public_pem: Some(pem),
    }
}

fn new_ed() -> TestKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::generate(&mut rand::thread_rng());
    TestKey {
        kind: KeyKind::Ed,
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(
            key.to_pkcs8_der()
                .expect("encode the Ed25519 key")
                .as_bytes(),
        ),
        public: json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig",
            "x": base64url(key.verifying_key().as_bytes()),
        }),
        public_pem: None,
    }
}

/// An RSA key made once per test binary.
pub fn rsa() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(new_rsa)
}

/// A second RSA key: a token it signs must not verify against [`rsa`].
pub fn rsa_other() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(new_rsa)
}

/// A P-256 key made once per test binary.
pub fn ec() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::generate(KeyKind::Ec))
}

/// A second P-256 key: a token it signs must not verify against [`ec`].
pub fn ec_other() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::generate(KeyKind::Ec))
}

/// An Ed25519 key made once per test binary.
pub fn ed() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(new_ed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{DecodingKey, Validation};

    /// Whether `token` verifies with `alg` against the JWK `jwk`.
    fn verifies(token: &str, alg: Algorithm, jwk: &Value) -> bool {
        let jwk: Jwk = serde_json::from_value(jwk.clone()).expect("a JWK jsonwebtoken reads");
        let key = DecodingKey::from_jwk(&jwk).expect("a usable JWK");
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok()
    }

    fn claims() -> Value {
        json!({"sub": "alice"})
    }

    #[test]
    fn each_key_verifies_against_its_own_jwk_only() {
        for (key, other) in [(rsa(), rsa_other()), (ec(), ec_other())] {
            let token = key.sign(Some("k"), &claims());
            assert!(verifies(&token, key.alg, &key.public_jwk("k")));
            assert!(!verifies(&token, key.alg, &other.public_jwk("k")));
        }
        let token = ed().sign(None, &claims());
        assert!(verifies(&token, Algorithm::EdDSA, &ed().public_jwk("d")));
    }

    #[test]
    fn an_rsa_key_also_signs_ps256() {
        let token = rsa().sign_as(Algorithm::PS256, Some("r"), &claims());
        let header = jsonwebtoken::decode_header(&token).expect("a header");
        assert_eq!(
            (header.alg, header.kid.as_deref()),
            (Algorithm::PS256, Some("r"))
        );
        assert!(verifies(&token, Algorithm::PS256, &rsa().public_jwk("r")));
    }

    #[test]
    fn jwks_name_their_kid_and_pin_alg_only_when_asked() {
        let jwk = ec().public_jwk("e1");
        assert_eq!((jwk["kid"].as_str(), jwk.get("alg")), (Some("e1"), None));
        assert_eq!(ec().public_jwk_with_alg("e1")["alg"], "ES256");
        assert_eq!(rsa().public_jwk_with_alg("r1")["alg"], "RS256");
        assert_eq!(ed().public_jwk_with_alg("d1")["alg"], "EdDSA");
    }

    #[test]
    fn only_rsa_keys_have_a_pem() {
        let pem = rsa().public_pem().expect("an RSA key's PEM");
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(ec().public_pem().is_none() && ed().public_pem().is_none());
    }

    #[test]
    fn a_key_from_a_scalar_is_the_same_every_time() {
        let a = TestKey::ec_from_scalar(&[0x42; 32]);
        let b = TestKey::ec_from_scalar(&[0x42; 32]);
        assert_eq!(a.public_jwk("k"), b.public_jwk("k"));
        // P-256 signatures are deterministic (RFC 6979): so are the tokens.
        assert_eq!(a.sign(Some("k"), &claims()), b.sign(Some("k"), &claims()));
        assert_ne!(a.public_jwk("k"), ec().public_jwk("k"));
    }
}
