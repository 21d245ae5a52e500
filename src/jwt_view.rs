//! An access token that is a JWT (Keycloak's are), decoded for `/user` to
//! show: its header and claims as data. Nothing here checks its signature and
//! nothing reads it for a decision; the access token is for the APIs it was
//! issued to, and only they validate it.

use crate::pretty_json::PrettyJson;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The largest token decoded for display.
const MAX_TOKEN: usize = 16 * 1024;

/// The readable parts of a JWT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwtView {
    /// The JOSE header.
    pub header: PrettyJson,
    /// The claims.
    pub claims: PrettyJson,
    /// `cnf.jkt` (RFC 9449, section 6.1): the thumbprint of the key a DPoP
    /// token is bound to, picked out now so `/user` parses nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf_jkt: Option<String>,
}

impl JwtView {
    /// The header and claims of a compact JWS, or `None` for an opaque token
    /// (or anything that is not three base64url parts with two JSON objects).
    pub fn decode(token: &str) -> Option<JwtView> {
        if token.len() > MAX_TOKEN {
            return None;
        }
        let mut parts = token.split('.');
        let (header, claims, _signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let claims = object(claims)?;
        let cnf_jkt = claims
            .get("cnf")
            .and_then(|c| c.get("jkt"))
            .and_then(Value::as_str)
            .filter(|j| j.len() <= 128)
            .map(str::to_owned);
        Some(JwtView {
            header: PrettyJson::new(&object(header)?),
            claims: PrettyJson::new(&claims),
            cnf_jkt,
        })
    }
}

fn object(part: &str) -> Option<Map<String, Value>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn decodes_a_jws_and_leaves_opaque_tokens_alone() {
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256","typ":"at+jwt"}"#),
            b64(r#"{"sub":"alice","scope":"openid"}"#)
        );
        let view = JwtView::decode(&token).expect("a JWT");
        assert!(view.header.text().contains("\"at+jwt\""));
        assert!(view.claims.text().contains("\"alice\""));
        assert_eq!(view.cnf_jkt, None);
        for opaque in [
            "ZisjoggXa1LCuhquBUTb7bIiRHMGt6UDMze2KdI00vz",
            "a.b",
            "a.b.c.d",
            &format!("{}.{}.sig", b64("[1]"), b64("{}")),
            &format!("{}.not-base64!.sig", b64("{}")),
        ] {
            assert_eq!(JwtView::decode(opaque), None, "{opaque}");
        }
    }

    #[test]
    fn picks_out_the_dpop_binding() {
        let bound = |claims: &str| {
            let token = format!("{}.{}.sig", b64(r#"{"alg":"ES256"}"#), b64(claims));
            JwtView::decode(&token).unwrap().cnf_jkt
        };
        assert_eq!(
            bound(r#"{"cnf":{"jkt":"0ZcOCORZNYy"}}"#).as_deref(),
            Some("0ZcOCORZNYy")
        );
        assert_eq!(bound(r#"{"cnf":{"x5t#S256":"abc"}}"#), None);
        assert_eq!(bound(r#"{"cnf":{"jkt":7}}"#), None);
        assert_eq!(
            bound(&format!(r#"{{"cnf":{{"jkt":"{}"}}}}"#, "j".repeat(300))).map(|j| j.len()),
            None
        );
    }
}
