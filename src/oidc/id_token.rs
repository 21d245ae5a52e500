//! ID-token validation (OpenID Connect Core 1.0, section 3.1.3.7).
//!
//! Only asymmetric signatures are accepted, with keys from the IdP's JWKS:
//! never `none`, never HS* (whose "key" an attacker could know). The caller
//! refetches the JWKS once when the token names an unknown key.

use crate::secret::constant_time_eq;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};

/// Allowed clock difference with the IdP, in seconds.
pub const CLOCK_SKEW: i64 = 60;
const MAX_TOKEN_LEN: usize = 16 * 1024;

const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What the token must say.
pub struct Expectations<'a> {
    /// The configured issuer: `iss` must be it.
    pub issuer: &'a str,
    /// Our client id: `aud` must contain it.
    pub client_id: &'a str,
    /// The nonce sent with the authorization request; `None` for refreshed tokens.
    pub nonce: Option<&'a str>,
    /// The time to check `exp`, `iat` and `nbf` against.
    pub now: i64,
}

/// An ID token that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidIdToken {
    /// The user, at the issuer.
    pub sub: String,
    /// The issuer.
    pub iss: String,
    /// The IdP's session, for back-channel logout.
    pub sid: Option<String>,
    /// Every claim, as the IdP sent them.
    pub claims: Map<String, Value>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdTokenError {
    /// No key in the JWKS matches (refetch once, then give up).
    UnknownKey,
    /// The token fails a check; the text says which.
    Invalid(String),
}

fn invalid(why: impl Into<String>) -> IdTokenError {
    IdTokenError::Invalid(why.into())
}

/// Validates `token` against `keys` and `expect`; returns its claims.
pub fn validate(
    token: &str,
    keys: &[Jwk],
    expect: &Expectations,
) -> Result<ValidIdToken, IdTokenError> {
    let claims = verify(token, keys, expect.issuer, expect.client_id)?;
    check_times(&claims, expect.now)?;
    check_claims(claims, expect)
}

/// Checks the signature with the IdP's keys, and `iss` and `aud`: what every
/// JWT from the IdP (ID token, logout token) must pass. Returns the claims.
pub fn verify(
    token: &str,
    keys: &[Jwk],
    issuer: &str,
    client_id: &str,
) -> Result<Map<String, Value>, IdTokenError> {
    let JoseHeader { alg, kid } = header(token)?;
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|k| kid.is_none() || k.common.key_id == kid)
        .filter(|k| key_fits(k, alg))
        .collect();
    if candidates.is_empty() {
        return Err(IdTokenError::UnknownKey);
    }

    let mut validation = Validation::new(alg);
    // Time claims are checked in `check_times` against the injected clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["iss", "aud"]);

    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) => match e.kind() {
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidEcdsaKey
                | ErrorKind::InvalidEddsaKey
                | ErrorKind::InvalidRsaKey(_)
                | ErrorKind::InvalidKeyFormat
                | ErrorKind::Provider(_) => continue,
                kind => return Err(invalid(describe(kind))),
            },
        }
    }
    Err(invalid("signature does not verify with the IdP's keys"))
}

/// `exp` and `iat` are required, `nbf` optional; all within `CLOCK_SKEW` of `now`.
pub fn check_times(claims: &Map<String, Value>, now: i64) -> Result<(), IdTokenError> {
    let time = |name: &str| {
        claims.get(name).map(|v| {
            v.as_i64()
                .ok_or_else(|| invalid(format!("the `{name}` claim is malformed")))
        })
    };
    let exp = time("exp").unwrap_or_else(|| Err(invalid("the `exp` claim is missing")))?;
    let iat = time("iat").unwrap_or_else(|| Err(invalid("the `iat` claim is missing")))?;
    if exp + CLOCK_SKEW <= now {
        return Err(invalid("the token has expired"));
    }
    if iat > now + CLOCK_SKEW {
        return Err(invalid("the token was issued in the future (iat)"));
    }
    if let Some(nbf) = time("nbf").transpose()?
        && nbf > now + CLOCK_SKEW
    {
        return Err(invalid("the token is not valid yet (nbf)"));
    }
    Ok(())
}

/// `azp`, when present, must be us; with several audiences it must be present.
pub fn check_azp(claims: &Map<String, Value>, client_id: &str) -> Result<(), IdTokenError> {
    let audiences = match claims.get("aud") {
        Some(Value::Array(a)) => a.len(),
        _ => 1,
    };
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == client_id => Ok(()),
        Some(_) => Err(invalid("the token was issued to another party (azp)")),
        None if audiences > 1 => Err(invalid("several audiences but no `azp` claim")),
        None => Ok(()),
    }
}

/// What the JOSE header says about verifying the token.
struct JoseHeader {
    alg: Algorithm,
    kid: Option<String>,
}

/// The header as sent; `crit` only to refuse it.
#[derive(serde::Deserialize)]
struct RawHeader {
    alg: Option<Value>,
    kid: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

/// Reads the header (once) and refuses anything but the asymmetric algorithms.
fn header(token: &str) -> Result<JoseHeader, IdTokenError> {
    use base64::Engine;
    if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(invalid("not a signed JWT"));
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap_or_default())
        .map_err(|_| invalid("malformed header"))?;
    let header: RawHeader =
        serde_json::from_slice(&raw).map_err(|_| invalid("malformed header"))?;
    let name = header
        .alg
        .as_ref()
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("no `alg` in header"))?;
    if header.crit.is_some() {
        return Err(invalid("unsupported critical header parameters"));
    }
    let alg = name
        .parse::<Algorithm>()
        .ok()
        .filter(|a| ACCEPTED.contains(a))
        .ok_or_else(|| {
            invalid(format!(
                "algorithm `{}` is not accepted",
                crate::truncate::truncate(name, 20)
            ))
        })?;
    Ok(JoseHeader {
        alg,
        kid: header.kid,
    })
}

/// A key can verify `alg` only if its type (and curve) match, and its own `alg`, if any, is `alg`.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg != KeyAlgorithm::from(alg)
    {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512)
        | (AlgorithmParameters::RSA(_), Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512) => {
            true
        }
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "wrong issuer (iss)".into(),
        ErrorKind::InvalidAudience => "this client is not an audience (aud)".into(),
        ErrorKind::MissingRequiredClaim(c) => {
            format!("the `{}` claim is missing", crate::truncate::truncate(c, 20))
        }
        ErrorKind::InvalidClaimFormat(c) => format!(
            "the `{}` claim is malformed",
            crate::truncate::truncate(c, 20)
        ),
        _ => "malformed token".into(),
    }
}

fn check_claims(
    claims: Map<String, Value>,
    expect: &Expectations,
) -> Result<ValidIdToken, IdTokenError> {
    let sub = match claims.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= 255 => s.to_owned(),
        _ => return Err(invalid("the `sub` claim is missing or malformed")),
    };
    check_azp(&claims, expect.client_id)?;
    if let Some(expected) = expect.nonce {
        match claims.get("nonce").and_then(Value::as_str) {
            Some(n) if constant_time_eq(n.as_bytes(), expected.as_bytes()) => {}
            Some(_) => return Err(invalid("the nonce does not match this login")),
            None => return Err(invalid("the `nonce` claim is missing")),
        }
    }
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let sid = claims
        .get("sid")
        .and_then(Value::as_str)
        .filter(|s| s.len() <= 255)
        .map(str::to_owned);
    Ok(ValidIdToken {
        sub,
        iss,
        sid,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::jwks::usable_keys;
    use test_support::TestKey;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "https://idp.example/realms/demo";

    fn expect() -> Expectations<'static> {
        Expectations {
            issuer: ISS,
            client_id: "client1",
            nonce: Some("n-123"),
            now: NOW,
        }
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": "client1", "sub": "alice", "exp": NOW + 300, "iat": NOW, "nonce": "n-123", "sid": "s1"})
    }

    fn keys(list: &[(&TestKey, &str)]) -> Vec<Jwk> {
        usable_keys(
            &json!({"keys": list.iter().map(|(k, kid)| k.public_jwk(kid)).collect::<Vec<_>>()}),
        )
        .unwrap()
    }

    fn check(token: &str, keys: &[Jwk]) -> Result<ValidIdToken, IdTokenError> {
        validate(token, keys, &expect())
    }

    fn rejected_with(mutate: impl FnOnce(&mut Value)) -> String {
        let mut c = claims();
        mutate(&mut c);
        let token = test_support::rsa().sign(Some("k1"), &c);
        match check(&token, &keys(&[(test_support::rsa(), "k1")])) {
            Err(IdTokenError::Invalid(why)) => why,
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    #[test]
    fn accepts_rs256_ps256_es256_eddsa() {
        let ks = keys(&[
            (test_support::rsa(), "r"),
            (test_support::ec(), "e"),
            (test_support::ed(), "d"),
        ]);
        for token in [
            test_support::rsa().sign(Some("r"), &claims()),
            test_support::rsa().sign_as(Algorithm::PS256, Some("r"), &claims()),
            test_support::ec().sign(Some("e"), &claims()),
            test_support::ed().sign(Some("d"), &claims()),
        ] {
            let v = check(&token, &ks).unwrap();
            assert_eq!(v.sub, "alice");
            assert_eq!(v.sid.as_deref(), Some("s1"));
            assert_eq!(v.claims["nonce"], "n-123");
        }
    }

    #[test]
    fn rejects_bad_signatures() {
        let ks = keys(&[(test_support::rsa(), "k1"), (test_support::ec(), "k2")]);
        let forged = test_support::rsa_other().sign(Some("k1"), &claims());
        assert!(matches!(check(&forged, &ks), Err(IdTokenError::Invalid(_))));
        let forged = test_support::ec_other().sign(Some("k2"), &claims());
        assert!(matches!(check(&forged, &ks), Err(IdTokenError::Invalid(_))));
        // A valid token with one payload byte changed.
        let good = test_support::rsa().sign(Some("k1"), &claims());
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[1] = test_support::unsigned(&json!({}), &json!({"sub": "mallory"}), b"")
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned();
        assert!(check(&parts.join("."), &ks).is_err());
    }

    #[test]
    fn rejects_none_and_hmac() {
        let ks = keys(&[(test_support::rsa(), "k1")]);
        let none = test_support::unsigned(&json!({"alg": "none"}), &claims(), b"");
        assert!(matches!(check(&none, &ks), Err(IdTokenError::Invalid(w)) if w.contains("none")));
        let hs = test_support::hs256_forgery(&claims(), b"the-client-secret", Some("k1"));
        assert!(matches!(check(&hs, &ks), Err(IdTokenError::Invalid(w)) if w.contains("HS256")));
        let n = test_support::rsa().public_jwk("k1")["n"]
            .as_str()
            .unwrap()
            .to_owned();
        let hs = test_support::hs256_forgery(&claims(), n.as_bytes(), None);
        assert!(check(&hs, &ks).is_err());
    }

    #[test]
    fn unknown_kid_asks_for_refetch() {
        let ks = keys(&[(test_support::rsa(), "old")]);
        let token = test_support::rsa().sign(Some("new"), &claims());
        assert_eq!(check(&token, &ks), Err(IdTokenError::UnknownKey));
        let ec_token = test_support::ec().sign(None, &claims());
        assert_eq!(check(&ec_token, &ks), Err(IdTokenError::UnknownKey));
    }

    #[test]
    fn kid_absent_single_and_multiple_keys() {
        let single = keys(&[(test_support::rsa(), "k1")]);
        assert!(check(&test_support::rsa().sign(None, &claims()), &single).is_ok());
        let multiple = keys(&[(test_support::rsa_other(), "a"), (test_support::rsa(), "b")]);
        assert!(check(&test_support::rsa().sign(None, &claims()), &multiple).is_ok());
        let stranger = test_support::unsigned(&json!({"alg": "RS256"}), &claims(), &[7u8; 256]);
        assert!(matches!(
            check(&stranger, &multiple),
            Err(IdTokenError::Invalid(_))
        ));
    }

    #[test]
    fn key_alg_and_type_must_fit() {
        let mut jwk = test_support::rsa().public_jwk("k1");
        jwk["alg"] = json!("PS256");
        let ks = usable_keys(&json!({"keys": [jwk]})).unwrap();
        assert_eq!(
            check(&test_support::rsa().sign(Some("k1"), &claims()), &ks),
            Err(IdTokenError::UnknownKey)
        );
    }

    #[test]
    fn rejects_claim_problems() {
        assert!(rejected_with(|c| c["aud"] = json!("other")).contains("aud"));
        assert!(
            rejected_with(|c| {
                c.as_object_mut().unwrap().remove("aud");
            })
            .contains("aud")
        );
        assert!(
            rejected_with(|c| {
                c.as_object_mut().unwrap().remove("iat");
            })
            .contains("iat")
        );
        assert!(
            rejected_with(|c| {
                c.as_object_mut().unwrap().remove("sub");
            })
            .contains("sub")
        );
        assert!(rejected_with(|c| c["sub"] = json!("")).contains("sub"));
        assert!(rejected_with(|c| c["iss"] = json!("https://evil.example")).contains("iss"));
        assert!(rejected_with(|c| c["exp"] = json!(NOW - 120)).contains("expired"));
        assert!(rejected_with(|c| c["nbf"] = json!(NOW + 600)).contains("nbf"));
        assert!(rejected_with(|c| c["iat"] = json!(NOW + 600)).contains("iat"));
        assert!(rejected_with(|c| c["nonce"] = json!("other")).contains("nonce"));
        assert!(
            rejected_with(|c| {
                c.as_object_mut().unwrap().remove("nonce");
            })
            .contains("nonce")
        );
        assert!(rejected_with(|c| c["aud"] = json!(["client1", "other"])).contains("azp"));
        assert!(
            rejected_with(|c| {
                c["aud"] = json!(["client1", "other"]);
                c["azp"] = json!("other");
            })
            .contains("azp")
        );
    }

    #[test]
    fn accepts_within_skew_and_with_azp() {
        let ks = keys(&[(test_support::rsa(), "k1")]);
        let mut c = claims();
        c["exp"] = json!(NOW - 30);
        c["aud"] = json!(["client1", "other"]);
        c["azp"] = json!("client1");
        assert!(check(&test_support::rsa().sign(Some("k1"), &c), &ks).is_ok());
    }

    #[test]
    fn refreshed_tokens_need_no_nonce() {
        let ks = keys(&[(test_support::rsa(), "k1")]);
        let mut c = claims();
        c.as_object_mut().unwrap().remove("nonce");
        let e = Expectations {
            nonce: None,
            ..expect()
        };
        assert!(validate(&test_support::rsa().sign(Some("k1"), &c), &ks, &e).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        let ks = keys(&[(test_support::rsa(), "k1"), (test_support::ed(), "d")]);
        for t in [
            "",
            ".",
            "..",
            "a.b.c",
            "eyJhbGciOiJSUzI1NiJ9..",
            &"A".repeat(20_000),
            "e30.e30.e30",
        ] {
            assert!(check(t, &ks).is_err(), "{t}");
        }
    }
}
