//! Logout tokens (OpenID Connect Back-Channel Logout 1.0, section 2.6).
//!
//! Signed like ID tokens and checked the same way for signature, `iss` and
//! `aud`, but they carry the back-channel `events` claim, name a `sub` and/or a
//! `sid`, never a `nonce`, and each `jti` is accepted once.

use super::id_token::{self, IdTokenError, check_azp, check_times};
use jsonwebtoken::jwk::Jwk;
use serde_json::{Map, Value};

/// The `events` member every logout token carries.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    /// The issuer.
    pub iss: String,
    /// The user whose sessions end, if named.
    pub sub: Option<String>,
    /// The IdP session that ended, if named.
    pub sid: Option<String>,
    /// The token's id: each is accepted once.
    pub jti: String,
    /// When the token expires.
    pub exp: i64,
}

fn invalid(why: &str) -> IdTokenError {
    IdTokenError::Invalid(why.to_owned())
}

/// Validates a logout token (Back-Channel Logout 1.0, section 2.6).
pub fn validate(
    token: &str,
    keys: &[Jwk],
    issuer: &str,
    client_id: &str,
    now: i64,
) -> Result<LogoutToken, IdTokenError> {
    let claims = id_token::verify(token, keys, issuer, client_id)?;
    check_times(&claims, now)?;
    check_azp(&claims, client_id)?;
    check_claims(&claims)
}

fn short_string(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, IdTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => Ok(Some(s.clone())),
        Some(_) => Err(IdTokenError::Invalid(format!(
            "the `{name}` claim is malformed"
        ))),
    }
}

fn check_claims(claims: &Map<String, Value>) -> Result<LogoutToken, IdTokenError> {
    match claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(EVENT))
    {
        Some(Value::Object(_)) => {}
        _ => {
            return Err(invalid(
                "the `events` claim lacks the back-channel logout event",
            ));
        }
    }
    if claims.contains_key("nonce") {
        return Err(invalid("a logout token must not contain a nonce"));
    }
    let sub = short_string(claims, "sub")?;
    let sid = short_string(claims, "sid")?;
    if sub.is_none() && sid.is_none() {
        return Err(invalid("a logout token must name a `sub` or a `sid`"));
    }
    let jti = short_string(claims, "jti")?.ok_or_else(|| invalid("the `jti` claim is missing"))?;
    Ok(LogoutToken {
        iss: claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        sub,
        sid,
        jti,
        exp: claims
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::jwks::usable_keys;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "https://idp.example/realms/demo";

    fn claims() -> Value {
        json!({"iss": ISS, "aud": "client1", "iat": NOW, "exp": NOW + 120, "jti": "j1", "sid": "s1", "sub": "alice",
               "events": {EVENT: {}}})
    }

    fn check(c: &Value) -> Result<LogoutToken, IdTokenError> {
        let keys = usable_keys(&json!({"keys": [test_support::ec().public_jwk("k")]})).unwrap();
        validate(
            &test_support::ec().sign(Some("k"), c),
            &keys,
            ISS,
            "client1",
            NOW,
        )
    }

    #[test]
    fn accepts_a_valid_token() {
        let t = check(&claims()).unwrap();
        assert_eq!(
            (t.sub.as_deref(), t.sid.as_deref(), t.jti.as_str()),
            (Some("alice"), Some("s1"), "j1")
        );
    }

    #[test]
    fn rejects_what_the_spec_forbids() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "events",
                Box::new(|c| {
                    c.as_object_mut().unwrap().remove("events");
                }),
            ),
            ("events", Box::new(|c| c["events"] = json!({"other": {}}))),
            ("nonce", Box::new(|c| c["nonce"] = json!("n"))),
            (
                "sub",
                Box::new(|c| {
                    let o = c.as_object_mut().unwrap();
                    o.remove("sub");
                    o.remove("sid");
                }),
            ),
            (
                "jti",
                Box::new(|c| {
                    c.as_object_mut().unwrap().remove("jti");
                }),
            ),
            ("aud", Box::new(|c| c["aud"] = json!("other"))),
            (
                "iss",
                Box::new(|c| c["iss"] = json!("https://evil.example")),
            ),
            ("expired", Box::new(|c| c["exp"] = json!(NOW - 600))),
            (
                "iat",
                Box::new(|c| {
                    c.as_object_mut().unwrap().remove("iat");
                }),
            ),
        ];
        for (what, mutate) in cases {
            let mut c = claims();
            mutate(&mut c);
            match check(&c) {
                Err(IdTokenError::Invalid(why)) => assert!(why.contains(what), "{what}: {why}"),
                other => panic!("{what}: expected rejection, got {other:?}"),
            }
        }
    }

    #[test]
    fn sid_or_sub_alone_is_enough() {
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        assert!(check(&c).is_ok());
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sid");
        assert!(check(&c).is_ok());
    }
}
