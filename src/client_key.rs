//! The client's own signing key for `private_key_jwt` (RFC 7523, OpenID
//! Connect Core 9): read from `client_private_key`, it signs one short-lived
//! assertion per token, refresh or revocation request, and its public half is
//! served at `/jwks.json` for the IdP to fetch.
//!
//! The settings are loaded on every request, so loading only checks the key
//! cheaply ([`ConfiguredKey::check`]: its form, algorithm and curve, and a
//! private scalar in range). Deriving the public key is a P-256 scalar
//! multiplication, some 12 million wasm instructions, a hundred times a
//! whole `GET /user`; it is done only where the key is used
//! ([`ConfiguredKey::key`]: assertions, `/jwks.json`, `/readyz`, login), at
//! most once per request.
//!
//! Only P-256 (ES256) is accepted: every IdP supports it and the component
//! already carries the curve for ID tokens. The key is never printed: `Debug`
//! shows its `kid`, and parse errors describe the problem, never the value.

use crate::ports::Random;
use crate::secret::random_token;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crate::es256::Es256Key;
use p256::pkcs8::{ObjectIdentifier, PrivateKeyInfo};
use serde_json::{Value, json};
use std::sync::OnceLock;

const NEITHER: &str = "is neither a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----) nor a JSON Web Key";
const NOT_PKCS8_PEM: &str =
    "is not an unencrypted PKCS#8 PEM (-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----)";
const UNREADABLE_PKCS8: &str = "is a P-256 PKCS#8 key that cannot be read";
const PUBLIC_MISMATCH_PKCS8: &str =
    "is a P-256 PKCS#8 key whose embedded public key does not belong to its private key";
const SEC1: &str =
    "is a SEC1 `EC PRIVATE KEY`; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`";

/// A refusal of a key that is not P-256: `what` it is instead.
fn not_p256(what: &str) -> String {
    format!("is {what}; only P-256 (ES256) keys are supported")
}

/// How long an assertion is good for: "within a minute" of its `iat`.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;

/// `client_private_key` as the settings hold it: checked cheaply when they
/// are loaded, fully parsed (public key, thumbprint) on first use, at most
/// once per loaded configuration, so once per request.
#[derive(Clone)]
pub struct ConfiguredKey {
    text: String,
    parsed: OnceLock<Result<ClientPrivateKey, String>>,
}

impl std::fmt::Debug for ConfiguredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfiguredKey([redacted])")
    }
}

impl ConfiguredKey {
    /// The checks that need no curve arithmetic: a PKCS#8 PEM or a private
    /// JWK, P-256, a private scalar of the right length in `1..n`. What only
    /// the full parse can tell (a public part that does not belong to the
    /// private one) waits for [`ConfiguredKey::key`].
    pub fn check(text: &str) -> Result<Self, String> {
        read(text, true)?;
        Ok(Self {
            text: text.to_owned(),
            parsed: OnceLock::new(),
        })
    }

    /// The usable key, parsed on the first call (the error, too, is kept).
    pub fn key(&self) -> Result<&ClientPrivateKey, &str> {
        self.parsed
            .get_or_init(|| ClientPrivateKey::parse(&self.text))
            .as_ref()
            .map_err(String::as_str)
    }

    /// Whether [`ConfiguredKey::key`] has run: the hot path must leave it not.
    pub fn is_parsed(&self) -> bool {
        self.parsed.get().is_some()
    }
}

/// The client's P-256 private key and its RFC 7638 thumbprint (`kid`).
#[derive(Clone)]
pub struct ClientPrivateKey {
    key: Es256Key,
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
    /// This derives the public key: see the module's note on its cost.
    pub fn parse(text: &str) -> Result<Self, String> {
        let key = match read(text, false)? {
            // Only a cheap read gives this.
            Material::Checked => return Err(UNREADABLE_PKCS8.into()),
            Material::Pkcs8 { d, public } => {
                // One scalar multiplication, its public key checked against
                // the embedded one (`from_pkcs8_der` would multiply twice).
                let key = Es256Key::from_scalar(&d).ok_or(UNREADABLE_PKCS8)?;
                if public.is_some_and(|p| p != key.public_point().as_bytes()) {
                    return Err(PUBLIC_MISMATCH_PKCS8.into());
                }
                key
            }
            Material::Jwk { d, x, y } => {
                let key = Es256Key::from_scalar(&d)
                    .ok_or("is a JWK whose `d` is not a valid P-256 key")?;
                let (px, py) = key.coordinates();
                if x.is_some_and(|v| v != px) || y.is_some_and(|v| v != py) {
                    return Err("is a JWK whose `x` and `y` do not belong to its `d`".into());
                }
                key
            }
        };
        let kid = key.thumbprint();
        Ok(Self { key, kid })
    }

    /// The key's id: its RFC 7638 thumbprint, so it changes with the key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK: exactly `kty crv x y kid use alg`, never `d`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.key.public_jwk();
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!("ES256");
        jwk
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
        self.key.sign_jwt(&header, &claims)
    }
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

/// A key that passed the cheap checks, not yet turned into a signing key.
enum Material {
    /// Loading's check passed on a PEM's first bytes; nothing to keep.
    Checked,
    /// A PKCS#8 key's scalar, in range, and its embedded public key (SEC1).
    Pkcs8 { d: Vec<u8>, public: Option<Vec<u8>> },
    /// A JWK's 32-byte `d`, in range, and its `x` and `y` if it has them.
    Jwk {
        d: Vec<u8>,
        x: Option<String>,
        y: Option<String>,
    },
}

/// The cheap checks: no scalar multiplication. `SecretKey::from_slice` only
/// compares the scalar with the curve order and zero (elliptic-curve 0.13).
/// With `cheap` (loading), a PEM in a common layout is read only as far as
/// its `d`: the rest of its base64, and its public key, wait for the full parse.
fn read(text: &str, cheap: bool) -> Result<Material, String> {
    let text = text.trim();
    if text.starts_with('{') {
        from_jwk(text)
    } else if text.starts_with("-----BEGIN") {
        from_pem(text, cheap)
    } else {
        Err(NEITHER.into())
    }
}

/// A private scalar of at most 32 bytes in `1..n`.
fn scalar_in_range(bytes: &[u8]) -> bool {
    p256::SecretKey::from_slice(bytes).is_ok()
}

fn from_pem(text: &str, cheap: bool) -> Result<Material, String> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    if text.starts_with("-----BEGIN EC PRIVATE KEY-----") {
        return Err(SEC1.into());
    }
    let body = text
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.trim_end().strip_suffix(END))
        .ok_or(NOT_PKCS8_PEM)?;
    if cheap
        && let Some(head) = decode_pem_body(body, CANONICAL_HEAD)
        && let Some((d, _)) = canonical_p256_scalar(&head, true)
    {
        return if scalar_in_range(d) {
            Ok(Material::Checked)
        } else {
            Err(UNREADABLE_PKCS8.into())
        };
    }
    let der = decode_pem_body(body, usize::MAX).ok_or("is a PEM whose body is not base64")?;
    if let Some((d, public)) = canonical_p256_scalar(&der, false) {
        if scalar_in_range(d) {
            return Ok(Material::Pkcs8 {
                d: d.to_vec(),
                public: public.map(<[u8]>::to_vec),
            });
        }
        return Err(UNREADABLE_PKCS8.into());
    }
    let info = PrivateKeyInfo::try_from(der.as_slice())
        .map_err(|_| "is a PEM that does not hold a PKCS#8 private key".to_owned())?;
    let curve = info.algorithm.parameters_oid().ok();
    if info.algorithm.oid != EC_PUBLIC_KEY || curve != Some(P256) {
        return Err(unsupported(info.algorithm.oid, curve));
    }
    // Not `SecretKey::try_from(PrivateKeyInfo)`: it derives the public key
    // to compare it with an embedded one, which is the full parse's job.
    match sec1::EcPrivateKey::try_from(info.private_key) {
        Ok(ec) if scalar_in_range(ec.private_key) => Ok(Material::Pkcs8 {
            d: ec.private_key.to_vec(),
            public: ec.public_key.map(<[u8]>::to_vec),
        }),
        _ => Err(UNREADABLE_PKCS8.into()),
    }
}

const SKIP: u8 = 64;
const PAD: u8 = 65;
const INVALID: u8 = 255;
/// Each byte's base64 value, or `SKIP` (ASCII whitespace), `PAD` or `INVALID`.
const BASE64_TABLE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    let mut w = 0;
    let spaces = b" \t\n\x0c\r";
    while w < spaces.len() {
        t[spaces[w] as usize] = SKIP;
        w += 1;
    }
    t[b'=' as usize] = PAD;
    t
};

/// Standard padded base64 with ASCII whitespace anywhere, as `STANDARD`
/// decodes it once the whitespace is taken out (trailing bits must be zero),
/// in one pass: this runs on every request, and collecting the text without
/// its whitespace and then decoding it cost ten times as much.
/// Stops, without checking the rest, once `limit` bytes are out.
fn decode_pem_body(body: &str, limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity((body.len() / 4 * 3 + 3).min(limit.saturating_add(3)));
    let (mut acc, mut n, mut pad) = (0u32, 0u32, 0u32);
    for &c in body.as_bytes() {
        let v = BASE64_TABLE[usize::from(c)];
        if v >= SKIP {
            match v {
                SKIP => continue,
                PAD => {
                    pad += 1;
                    continue;
                }
                _ => return None,
            }
        }
        if pad > 0 {
            return None;
        }
        acc = acc << 6 | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&acc.to_be_bytes()[1..]);
            (acc, n) = (0, 0);
            if out.len() >= limit {
                return Some(out);
            }
        }
    }
    match (n, pad) {
        (0, 0) => {}
        (2, 2) if acc & 0xf == 0 => out.push((acc >> 4) as u8),
        (3, 1) if acc & 0x3 == 0 => out.extend_from_slice(&((acc >> 2) as u16).to_be_bytes()),
        _ => return None,
    }
    Some(out)
}

/// How much of a PKCS#8 DER holds `d` in the layouts below.
const CANONICAL_HEAD: usize = 68;

/// The private scalar of a P-256 PKCS#8 key in one of the layouts key tools
/// write (OpenSSL, Go, Java, Node, Python's cryptography): the same bytes but
/// for `d` and an optional public key, so matching them costs a few hundred
/// instructions where the general DER path below costs some twenty thousand,
/// on every request. Anything else goes the general way; the full parse reads
/// every key with the `der` crate whichever way it came.
/// With `head_only`, `der` may be just the first [`CANONICAL_HEAD`] bytes and
/// only `d` is returned.
fn canonical_p256_scalar(der: &[u8], head_only: bool) -> Option<(&[u8], Option<&[u8]>)> {
    // SEQUENCE { INTEGER 0, SEQUENCE { id-ecPublicKey, prime256v1 }, OCTET STRING { ECPrivateKey
    const ALGORITHM: [u8; 24] = [
        0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
        0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    // ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING (32 bytes) d, ...
    const PARAMETERS: [u8; 12] = [
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    const PUBLIC: [u8; 6] = [0xa1, 0x44, 0x03, 0x42, 0x00, 0x04];
    // The outer header and the ECPrivateKey's, by what follows `d`: nothing,
    // the public key, or the curve and then the public key.
    let (outer, inner, tail): (&[u8], [u8; 4], usize) = match der.get(..3)? {
        [0x30, 0x41, _] => (&[0x30, 0x41], [0x04, 0x27, 0x30, 0x25], 0),
        [0x30, 0x81, 0x87] => (&[0x30, 0x81, 0x87], [0x04, 0x6d, 0x30, 0x6b], PUBLIC.len() + 64),
        [0x30, 0x81, 0x93] => (
            &[0x30, 0x81, 0x93],
            [0x04, 0x79, 0x30, 0x77],
            PARAMETERS.len() + PUBLIC.len() + 64,
        ),
        _ => return None,
    };
    let rest = der.strip_prefix(outer)?.strip_prefix(&ALGORITHM[..])?;
    let rest = rest.strip_prefix(&inner[..])?;
    let rest = rest.strip_prefix(&[0x02, 0x01, 0x01, 0x04, 0x20][..])?;
    let (d, after) = rest.split_at_checked(32)?;
    if head_only {
        return Some((d, None));
    }
    if tail == 0 {
        return after.is_empty().then_some((d, None));
    }
    let after = if tail == PUBLIC.len() + 64 {
        after
    } else {
        after.strip_prefix(&PARAMETERS[..])?
    };
    // The BIT STRING's content: 0x04 (uncompressed), then x and y.
    let public = after.strip_prefix(&PUBLIC[..PUBLIC.len() - 1])?;
    (public.len() == 65).then_some((d, Some(public)))
}

fn from_jwk(text: &str) -> Result<Material, String> {
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
    if !scalar_in_range(&d) {
        return Err("is a JWK whose `d` is not a valid P-256 key".into());
    }
    Ok(Material::Jwk {
        d,
        x: field("x").map(str::to_owned),
        y: field("y").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
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
    fn the_cheap_check_leaves_only_the_public_part_to_the_full_parse() {
        // A PKCS#8 key whose embedded public key is not its private key's.
        let body: String = P256_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut der = STANDARD.decode(body).unwrap();
        *der.last_mut().unwrap() ^= 1;
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(&der)
        );
        let jwk = {
            let mut j: Value = serde_json::from_str(P256_JWK).unwrap();
            j["y"] = json!(P256_X);
            j.to_string()
        };
        for (text, reason) in [
            (pem.as_str(), PUBLIC_MISMATCH_PKCS8),
            (jwk.as_str(), "is a JWK whose `x` and `y` do not belong to its `d`"),
        ] {
            let configured = ConfiguredKey::check(text).expect("passes the cheap check");
            assert!(!configured.is_parsed());
            assert_eq!(format!("{configured:?}"), "ConfiguredKey([redacted])");
            assert_eq!(configured.key().unwrap_err(), reason);
            assert_eq!(ClientPrivateKey::parse(text).unwrap_err(), reason);
        }
        // Good keys: parsed once, on first use.
        for text in [P256_PEM, P256_JWK] {
            let configured = ConfiguredKey::check(text).unwrap();
            assert!(!configured.is_parsed());
            assert_eq!(configured.key().unwrap().kid(), P256_THUMBPRINT);
            assert!(configured.is_parsed());
        }
        // Everything else is refused by the cheap check, with the same reason.
        let zero_d = {
            let mut j: Value = serde_json::from_str(P256_JWK).unwrap();
            j["d"] = json!(URL_SAFE_NO_PAD.encode([0xffu8; 32]));
            j.to_string()
        };
        for text in [P384_PEM, RSA_PEM, P384_JWK, P256_SEC1_PEM, "hunter2", &zero_d] {
            assert_eq!(
                ConfiguredKey::check(text).unwrap_err(),
                ClientPrivateKey::parse(text).unwrap_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn the_pem_body_decodes_as_standard_base64_without_its_whitespace() {
        let cases = [
            "", "QQ==", "QUI=", "QUJD", "QUJDRA==", " QU\nJD\r\n RA = =\t", "QR==", "QUJ=",
            "QQ=", "QQ", "Q", "QUJDRA=x", "QUJD=", "QU=JD", "!!!!", "QUJD-_", "AAAA",
        ];
        let body: String = P256_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
        for text in cases.into_iter().chain([body.as_str()]) {
            let stripped: String = text.split_whitespace().collect();
            assert_eq!(decode_pem_body(text, usize::MAX), STANDARD.decode(stripped).ok(), "{text:?}");
        }
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
