//! The client's own signing key for `private_key_jwt` (RFC 7523, OpenID
//! Connect Core 9): parsed once from `client_private_key`, it signs one
//! short-lived assertion per token, refresh or revocation request, and its
//! public half is served at `/jwks.json` for the IdP to fetch.
//!
//! Only P-256 (ES256) is accepted: every IdP supports it and the component
//! already carries the curve for ID tokens. The key is never printed: `Debug`
//! shows its `kid`, and parse errors describe the problem, never the value.

use crate::ports::Random;
use crate::secret::random_token;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, ObjectIdentifier, PrivateKeyInfo};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const NEITHER: &str = "is neither a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----) nor a JSON Web Key";
const NOT_PKCS8_PEM: &str =
    "is not an unencrypted PKCS#8 PEM (-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----)";
const SEC1: &str =
    "is a SEC1 `EC PRIVATE KEY`; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`";

/// A refusal of a key that is not P-256: `what` it is instead.
fn not_p256(what: &str) -> String {
    format!("is {what}; only P-256 (ES256) keys are supported")
}

/// How long an assertion is good for: "within a minute" of its `iat`.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;

/// The client's P-256 private key and its RFC 7638 thumbprint (`kid`).
#[derive(Clone)]
pub struct ClientPrivateKey {
    key: SigningKey,
    kid: String,
}

impl std::fmt::Debug for ClientPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientPrivateKey([redacted], kid {})", self.kid)
    }
}

impl ClientPrivateKey {
    /// Reads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) or a private JWK.
    /// The error says what is wrong in words fit for a config page.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let key = if text.starts_with('{') {
            from_jwk(text)?
        } else if text.starts_with("-----BEGIN") {
            from_pem(text)?
        } else {
            return Err(NEITHER.into());
        };
        let kid = thumbprint(&key);
        Ok(Self { key, kid })
    }

    /// The key's id: its RFC 7638 thumbprint, so it changes with the key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK: exactly `kty crv x y kid use alg`, never `d`.
    pub fn public_jwk(&self) -> Value {
        let (x, y) = coordinates(&self.key);
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": x,
            "y": y,
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }

    /// A fresh client assertion: `iss` = `sub` = the client id, `aud` the
    /// issuer identifier, a random `jti`, issued now and good for a minute.
    pub fn assertion(&self, client_id: &str, audience: &str, now: i64, rng: &dyn Random) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": random_token(rng, 18),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(&claims));
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// `x` and `y` of the public key, base64url (32 bytes each).
fn coordinates(key: &SigningKey) -> (String, String) {
    let point = key.verifying_key().to_encoded_point(false);
    let enc = |c: Option<&p256::FieldBytes>| {
        URL_SAFE_NO_PAD.encode(c.map(|b| b.as_slice()).unwrap_or_default())
    };
    (enc(point.x()), enc(point.y()))
}

/// RFC 7638: SHA-256 of the required members in lexicographic order, base64url.
fn thumbprint(key: &SigningKey) -> String {
    let (x, y) = coordinates(key);
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// What a PKCS#8 key that is not P-256 is, for the error.
fn unsupported(algorithm: ObjectIdentifier, curve: Option<ObjectIdentifier>) -> String {
    const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
    const CURVES: [(ObjectIdentifier, &str); 3] = [
        (ObjectIdentifier::new_unwrap("1.3.132.0.34"), "an EC key on curve P-384"),
        (ObjectIdentifier::new_unwrap("1.3.132.0.35"), "an EC key on curve P-521"),
        (ObjectIdentifier::new_unwrap("1.3.132.0.10"), "an EC key on curve secp256k1"),
    ];
    let what = if algorithm == EC_PUBLIC_KEY {
        CURVES
            .iter()
            .find(|(oid, _)| Some(*oid) == curve)
            .map_or("an EC key on an unsupported curve", |(_, name)| name)
    } else if algorithm == RSA {
        "an RSA key"
    } else if algorithm == ED25519 {
        "an Ed25519 key"
    } else {
        "a key of an unsupported type"
    };
    not_p256(what)
}

fn from_pem(text: &str) -> Result<SigningKey, String> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    if text.starts_with("-----BEGIN EC PRIVATE KEY-----") {
        return Err(SEC1.into());
    }
    let body = text
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.trim_end().strip_suffix(END))
        .ok_or(NOT_PKCS8_PEM)?;
    let base64: String = body.split_whitespace().collect();
    let der = STANDARD
        .decode(base64)
        .map_err(|_| "is a PEM whose body is not base64".to_owned())?;
    let info = PrivateKeyInfo::try_from(der.as_slice())
        .map_err(|_| "is a PEM that does not hold a PKCS#8 private key".to_owned())?;
    let curve = info.algorithm.parameters_oid().ok();
    if info.algorithm.oid != EC_PUBLIC_KEY || curve != Some(P256) {
        return Err(unsupported(info.algorithm.oid, curve));
    }
    SigningKey::from_pkcs8_der(&der)
        .map_err(|_| "is a P-256 PKCS#8 key that cannot be read".into())
}

fn from_jwk(text: &str) -> Result<SigningKey, String> {
    let jwk: Value = serde_json::from_str(text)
        .map_err(|_| "starts like a JSON Web Key but is not valid JSON".to_owned())?;
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    match (field("kty"), field("crv")) {
        (Some("EC"), Some("P-256")) => {}
        // Named only when known: the value is the operator's, not to be echoed.
        (Some("EC"), Some(crv @ ("P-384" | "P-521" | "secp256k1"))) => {
            return Err(not_p256(&format!("a JWK on curve {crv}")));
        }
        (Some("EC"), _) => return Err(not_p256("a JWK on an unsupported curve")),
        (Some("RSA"), _) => return Err(not_p256("an RSA JWK")),
        _ => return Err(not_p256("a JWK whose kty is not EC")),
    }
    if let Some(alg) = field("alg")
        && alg != "ES256"
    {
        return Err("is a JWK whose alg is not ES256".into());
    }
    let d = field("d").ok_or("is a public JWK: the private part `d` is missing")?;
    let d = URL_SAFE_NO_PAD
        .decode(d)
        .ok()
        .filter(|d| d.len() == 32)
        .ok_or("is a JWK whose `d` is not 32 bytes of base64url")?;
    let key =
        SigningKey::from_slice(&d).map_err(|_| "is a JWK whose `d` is not a valid P-256 key")?;
    let (x, y) = coordinates(&key);
    if field("x").is_some_and(|v| v != x) || field("y").is_some_and(|v| v != y) {
        return Err("is a JWK whose `x` and `y` do not belong to its `d`".into());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::CountingRandom;
    use test_support::client_keys::*;

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn pem_and_jwk_give_the_same_key_and_the_rfc_7638_kid() {
        let pem = ClientPrivateKey::parse(P256_PEM).unwrap();
        let jwk = ClientPrivateKey::parse(P256_JWK).unwrap();
        assert_eq!(pem.kid(), P256_THUMBPRINT);
        assert_eq!(jwk.kid(), P256_THUMBPRINT);
        assert_eq!(pem.public_jwk(), jwk.public_jwk());
        // Surrounding whitespace, as a variable from a file often has.
        assert!(ClientPrivateKey::parse(&format!("\n  {P256_PEM}\n")).is_ok());
    }

    #[test]
    fn the_thumbprint_agrees_with_jsonwebtoken() {
        use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
        let key = ClientPrivateKey::parse(P256_PEM).unwrap();
        let jwk: Jwk = serde_json::from_value(key.public_jwk()).unwrap();
        assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).unwrap(), key.kid());
    }

    #[test]
    fn the_public_jwk_has_exactly_the_public_fields() {
        let jwk = ClientPrivateKey::parse(P256_JWK).unwrap().public_jwk();
        assert_eq!(
            jwk,
            json!({
                "kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y,
                "kid": P256_THUMBPRINT, "use": "sig", "alg": "ES256",
            })
        );
        assert!(!jwk.to_string().contains(P256_D));
    }

    #[test]
    fn debug_shows_the_kid_and_never_the_key() {
        let shown = format!("{:?}", ClientPrivateKey::parse(P256_PEM).unwrap());
        assert_eq!(shown, format!("ClientPrivateKey([redacted], kid {P256_THUMBPRINT})"));
    }

    #[test]
    fn refuses_other_curves_and_formats_with_a_reason() {
        let cases = [
            (P384_PEM, "is an EC key on curve P-384; only P-256 (ES256) keys are supported"),
            (SECP256K1_PEM, "is an EC key on curve secp256k1; only P-256 (ES256) keys are supported"),
            (ED25519_PEM, "is an Ed25519 key; only P-256 (ES256) keys are supported"),
            (RSA_PEM, "is an RSA key; only P-256 (ES256) keys are supported"),
            (P384_JWK, "is a JWK on curve P-384; only P-256 (ES256) keys are supported"),
            (P256_SEC1_PEM, "is a SEC1 `EC PRIVATE KEY`; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`"),
            ("hunter2", "is neither a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----) nor a JSON Web Key"),
            ("{not json", "starts like a JSON Web Key but is not valid JSON"),
            ("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----", "is a PEM whose body is not base64"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "is a PEM that does not hold a PKCS#8 private key"),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "is not an unencrypted PKCS#8 PEM (-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----)"),
        ];
        for (text, reason) in cases {
            assert_eq!(ClientPrivateKey::parse(text).unwrap_err(), reason, "{text}");
        }
    }

    #[test]
    fn refuses_public_mismatched_or_malformed_jwks() {
        let jwk: Value = serde_json::from_str(P256_JWK).unwrap();
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut j = jwk.clone();
            edit(&mut j);
            ClientPrivateKey::parse(&j.to_string()).unwrap_err()
        };
        assert_eq!(
            with(&|j| { j.as_object_mut().unwrap().remove("d"); }),
            "is a public JWK: the private part `d` is missing"
        );
        assert_eq!(
            with(&|j| j["x"] = json!(P256_Y)),
            "is a JWK whose `x` and `y` do not belong to its `d`"
        );
        assert_eq!(
            with(&|j| j["d"] = json!("AAAA")),
            "is a JWK whose `d` is not 32 bytes of base64url"
        );
        assert_eq!(
            with(&|j| j["d"] = json!(URL_SAFE_NO_PAD.encode([0u8; 32]))),
            "is a JWK whose `d` is not a valid P-256 key"
        );
        assert_eq!(with(&|j| j["alg"] = json!("ES384")), "is a JWK whose alg is not ES256");
        assert_eq!(
            with(&|j| j["kty"] = json!("oct")),
            "is a JWK whose kty is not EC; only P-256 (ES256) keys are supported"
        );
        assert_eq!(
            with(&|j| j["crv"] = json!("secp256k1")),
            "is a JWK on curve secp256k1; only P-256 (ES256) keys are supported"
        );
        // No refusal echoes the key.
        let broken = P256_PEM.replace("PRIVATE KEY-----\n", "PRIVATE KEY-----\n!");
        let err = ClientPrivateKey::parse(&broken).unwrap_err();
        assert!(!err.contains(P256_D) && !err.contains("MIGHAgEA"), "{err}");
    }

    #[test]
    fn an_assertion_carries_the_claims_and_verifies_with_the_published_key() {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
        let key = ClientPrivateKey::parse(P256_PEM).unwrap();
        let rng = CountingRandom::default();
        let a = key.assertion("client1", "https://idp.example/realms/demo", 1_000, &rng);
        let parts: Vec<&str> = a.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            decode(parts[0]),
            json!({"alg": "ES256", "typ": "JWT", "kid": P256_THUMBPRINT})
        );
        let claims = decode(parts[1]);
        assert_eq!(claims["iss"], "client1");
        assert_eq!(claims["sub"], "client1");
        assert_eq!(claims["aud"], "https://idp.example/realms/demo");
        assert_eq!(claims["iat"], 1_000);
        assert_eq!(claims["exp"], 1_060);
        assert!(claims["jti"].as_str().unwrap().len() >= 22);
        assert_eq!(claims.as_object().unwrap().len(), 6);

        let jwk: Jwk = serde_json::from_value(key.public_jwk()).unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.validate_exp = false;
        v.set_audience(&["https://idp.example/realms/demo"]);
        jsonwebtoken::decode::<Value>(&a, &DecodingKey::from_jwk(&jwk).unwrap(), &v)
            .expect("the IdP can check the assertion with /jwks.json's key");

        // Every assertion is fresh: a new jti each time.
        let b = key.assertion("client1", "https://idp.example/realms/demo", 1_000, &rng);
        assert_ne!(decode(b.split('.').nth(1).unwrap())["jti"], claims["jti"]);
    }
}
