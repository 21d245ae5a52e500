//! DPoP (RFC 9449) as the fake's token and userinfo endpoints check it: every proof
//! is decoded and kept for the tests, then checked as section 4.3 says (one header; a
//! JWT whose header has `typ: dpop+jwt`, `alg: ES256` and a public P-256 `jwk`; a
//! signature by that jwk; `htm` and `htu` of this request; `iat` within a minute; a
//! `jti` never seen; `ath` for a resource request; the server's nonce when it wants
//! one). Each violation is a problem of the client.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::endpoint::Endpoint;
use super::fresh::{now, random};
use super::http::HttpRequest;

/// When an endpoint wants a server-provided nonce in the proof (RFC 9449 section 8
/// and 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpopNonce {
    /// Never.
    #[default]
    None,
    /// One nonce for the fake's lifetime: a proof without it is answered with a
    /// `use_dpop_nonce` challenge naming it, a proof with it is accepted.
    Once,
    /// Every proof is answered with a challenge, each time with a fresh nonce.
    Always,
}

/// The members of a JWK that only a private key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The RFC 7638 thumbprint of a P-256 public JWK: base64url(SHA-256) of its required
/// members in lexicographic order. None when a member is missing or not a string.
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let (crv, kty, x, y) = (member("crv")?, member("kty")?, member("x")?, member("y")?);
    // serde_json's Map keeps keys sorted, and to_string adds no whitespace.
    let canonical = json!({"crv": crv, "kty": kty, "x": x, "y": y}).to_string();
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// base64url(SHA-256(access token)), the `ath` claim.
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The outcome of checking a request's DPoP proof.
#[derive(Debug)]
pub(super) enum Check {
    /// No `DPoP` header.
    Absent,
    /// A valid proof by the key with this thumbprint.
    Valid { jkt: String },
    /// A proof breaking RFC 9449 (why is noted in the problems).
    Invalid,
    /// A valid proof without the nonce the endpoint wants: challenge with this one.
    NonceNeeded(String),
}

/// What the fake remembers of DPoP across requests.
#[derive(Debug, Default)]
pub(super) struct DpopState {
    /// Every proof received, decoded (header, claims), oldest first.
    pub proofs: Vec<(Endpoint, Value, Value)>,
    /// Every nonce handed out, oldest first.
    pub issued_nonces: Vec<String>,
    /// The nonce an endpoint with [`DpopNonce::Once`] wants.
    current: HashMap<Endpoint, String>,
    jtis: HashSet<String>,
}

impl DpopState {
    /// Checks the proof of `request` at `endpoint`, whose URL is `htu`; `access_token`
    /// is the token a resource request presents (its proof needs `ath`). Violations go
    /// to `problems`.
    pub fn check(
        &mut self,
        endpoint: Endpoint,
        request: &HttpRequest,
        htu: &str,
        policy: DpopNonce,
        access_token: Option<&str>,
        problems: &mut Vec<String>,
    ) -> Check {
        let Some(proof) = request.header("dpop") else {
            return Check::Absent;
        };
        let at = endpoint_name(endpoint);
        let mut found = Vec::new();
        // The server joined repeated headers with ", "; a JWT has no comma.
        if proof.contains(',') {
            found.push("more than one DPoP header".to_string());
        }
        let Some((header, claims)) = decode(proof) else {
            problems.push(format!(
                "DPoP proof at {at}: not a JWT with JSON header and claims"
            ));
            return Check::Invalid;
        };
        self.proofs.push((endpoint, header.clone(), claims.clone()));
        found.extend(check_header(&header));
        if let Err(why) = verify_signature(proof, &header["jwk"]) {
            found.push(why);
        }
        found.extend(self.check_claims(request, htu, &claims, access_token));
        if !found.is_empty() {
            for f in found {
                problems.push(format!("DPoP proof at {at}: {f}"));
            }
            return Check::Invalid;
        }
        let jkt = jwk_thumbprint(&header["jwk"]).expect("a checked jwk has its members");
        let sent = claims.get("nonce").and_then(Value::as_str);
        match policy {
            DpopNonce::None => Check::Valid { jkt },
            DpopNonce::Once => {
                let wanted = match self.current.get(&endpoint) {
                    Some(nonce) => nonce.clone(),
                    None => {
                        let nonce = self.issue();
                        self.current.insert(endpoint, nonce.clone());
                        nonce
                    }
                };
                if sent == Some(wanted.as_str()) {
                    Check::Valid { jkt }
                } else {
                    Check::NonceNeeded(wanted)
                }
            }
            DpopNonce::Always => Check::NonceNeeded(self.issue()),
        }
    }

    fn issue(&mut self) -> String {
        let nonce = random();
        self.issued_nonces.push(nonce.clone());
        nonce
    }

    fn check_claims(
        &mut self,
        request: &HttpRequest,
        htu: &str,
        claims: &Value,
        access_token: Option<&str>,
    ) -> Vec<String> {
        let mut found = Vec::new();
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("htm") != Some(request.method.as_str()) {
            found.push(format!(
                "htm is {:?}, not the request's {}",
                claims.get("htm"),
                request.method
            ));
        }
        if text("htu") != Some(htu) {
            found.push(format!("htu is {:?}, not {htu}", claims.get("htu")));
        }
        match claims.get("iat").and_then(Value::as_i64) {
            Some(iat) if (iat - now()).abs() <= 60 => {}
            _ => found.push(format!(
                "iat {:?} is not within a minute",
                claims.get("iat")
            )),
        }
        match text("jti").filter(|j| !j.is_empty()) {
            None => found.push("no jti".into()),
            Some(jti) => {
                if !self.jtis.insert(jti.to_string()) {
                    found.push("a jti seen before (a replayed proof)".into());
                }
            }
        }
        if let Some(token) = access_token
            && text("ath") != Some(access_token_hash(token).as_str())
        {
            found.push(format!(
                "ath {:?} is not the access token's hash",
                claims.get("ath")
            ));
        }
        if let Some(nonce) = claims.get("nonce")
            && !nonce
                .as_str()
                .is_some_and(|n| self.issued_nonces.iter().any(|i| i == n))
        {
            found.push(format!("nonce {nonce} was never issued"));
        }
        found
    }
}

fn endpoint_name(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Token => "token",
        Endpoint::Userinfo => "userinfo",
        Endpoint::Par => "PAR",
        _ => "another endpoint",
    }
}

/// The header and claims of a compact JWS, if both are JSON objects.
pub(super) fn decode(jwt: &str) -> Option<(Value, Value)> {
    let mut parts = jwt.split('.');
    let (Some(header), Some(claims), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let part = |p: &str| -> Option<Value> {
        let value: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
        value.is_object().then_some(value)
    };
    Some((part(header)?, part(claims)?))
}

/// `typ`, `alg` and a public P-256 `jwk`.
fn check_header(header: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if header["typ"] != json!("dpop+jwt") {
        found.push(format!("typ is {}, not dpop+jwt", header["typ"]));
    }
    if header["alg"] != json!("ES256") {
        found.push(format!("alg is {}, not ES256", header["alg"]));
    }
    let jwk = &header["jwk"];
    if !jwk.is_object() {
        found.push("no jwk in the header".into());
        return found;
    }
    let private: Vec<&str> = PRIVATE_MEMBERS
        .into_iter()
        .filter(|m| jwk.get(m).is_some())
        .collect();
    if !private.is_empty() {
        found.push(format!("the jwk has private members {private:?}"));
    }
    if jwk["kty"] != json!("EC") || jwk["crv"] != json!("P-256") {
        found.push(format!(
            "the jwk is {}/{}, not EC/P-256",
            jwk["kty"], jwk["crv"]
        ));
    }
    if !jwk["x"].is_string() || !jwk["y"].is_string() {
        found.push("the jwk lacks x or y".into());
    }
    found
}

/// An ES256 signature by `jwk` over the proof's first two parts.
fn verify_signature(proof: &str, jwk: &Value) -> Result<(), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, jwk::Jwk};
    let (message, signature) = proof.rsplit_once('.').ok_or("no signature")?;
    let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(|e| format!("the jwk: {e}"))?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("the jwk: {e}"))?;
    match jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, Algorithm::ES256) {
        Ok(true) => Ok(()),
        Ok(false) => Err("the signature does not verify with the jwk".into()),
        Err(e) => Err(format!("the signature: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use test_support::client_keys::{P256_PEM, P256_THUMBPRINT, P256_X, P256_Y};

    const HTU: &str = "http://127.0.0.1:1/realms/fake/protocol/openid-connect/token";

    fn public_jwk() -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y})
    }

    /// A proof signed by the test key with this header jwk (as given, private
    /// members too) and these claims.
    fn proof(jwk: Value, claims: &Value) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let message = format!("{}.{}", b64(&header), b64(claims));
        let der: String = P256_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(der)
            .unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_der(&der);
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::ES256)
                .unwrap();
        format!("{message}.{signature}")
    }

    fn request(proof: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/".into(),
            query: None,
            headers: BTreeMap::from([("dpop".to_string(), proof.to_string())]),
            body: Vec::new(),
        }
    }

    fn claims(jti: &str) -> Value {
        json!({"jti": jti, "htm": "POST", "htu": HTU, "iat": now()})
    }

    #[test]
    fn thumbprint_is_rfc_7638() {
        assert_eq!(
            jwk_thumbprint(&public_jwk()).as_deref(),
            Some(P256_THUMBPRINT)
        );
    }

    #[test]
    fn a_valid_proof_then_its_replay_and_a_forged_one() {
        let mut state = DpopState::default();
        let mut problems = Vec::new();
        let good = proof(public_jwk(), &claims("j-1"));
        let check = |state: &mut DpopState, problems: &mut Vec<String>, p: &str| {
            state.check(
                Endpoint::Token,
                &request(p),
                HTU,
                DpopNonce::None,
                None,
                problems,
            )
        };
        assert!(matches!(
            check(&mut state, &mut problems, &good),
            Check::Valid { jkt } if jkt == P256_THUMBPRINT
        ));
        assert_eq!(problems, Vec::<String>::new());
        assert!(matches!(
            check(&mut state, &mut problems, &good),
            Check::Invalid
        ));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("replayed"), "{problems:?}");

        // Another key's x in the header: the signature no longer verifies.
        let mut other = public_jwk();
        other["x"] = test_support::ec_other().public_jwk("k")["x"].clone();
        other["y"] = test_support::ec_other().public_jwk("k")["y"].clone();
        let forged = proof(other, &claims("j-2"));
        problems.clear();
        assert!(matches!(
            check(&mut state, &mut problems, &forged),
            Check::Invalid
        ));
        assert!(
            problems.iter().any(|p| p.contains("signature")),
            "{problems:?}"
        );

        // A private member and a wrong htm.
        let mut private = public_jwk();
        private["d"] = json!("secret");
        let mut wrong = claims("j-3");
        wrong["htm"] = json!("GET");
        problems.clear();
        check(&mut state, &mut problems, &proof(private, &wrong));
        assert!(
            problems.iter().any(|p| p.contains("private members")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.contains("htm")), "{problems:?}");
    }

    #[test]
    fn once_challenges_until_the_nonce_comes_and_always_challenges() {
        let mut state = DpopState::default();
        let mut problems = Vec::new();
        let mut check = |state: &mut DpopState, claims: &Value, policy| {
            let p = proof(public_jwk(), claims);
            state.check(
                Endpoint::Token,
                &request(&p),
                HTU,
                policy,
                None,
                &mut problems,
            )
        };
        let Check::NonceNeeded(nonce) = check(&mut state, &claims("a"), DpopNonce::Once) else {
            panic!("no challenge")
        };
        let mut with = claims("b");
        with["nonce"] = json!(nonce);
        assert!(matches!(
            check(&mut state, &with, DpopNonce::Once),
            Check::Valid { .. }
        ));
        let mut again = claims("c");
        again["nonce"] = json!(nonce);
        let Check::NonceNeeded(fresh) = check(&mut state, &again, DpopNonce::Always) else {
            panic!("no challenge")
        };
        assert_ne!(fresh, nonce);
        assert_eq!(state.issued_nonces, [nonce, fresh]);
        assert_eq!(problems, Vec::<String>::new());
    }
}
