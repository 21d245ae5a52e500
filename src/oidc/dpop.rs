//! DPoP (RFC 9449): each session gets its own P-256 key at login, and every
//! request that uses its tokens (token, refresh, userinfo) carries a fresh
//! proof signed with it, so a token copied out of the store or off the wire
//! is useless without the key. The key lives only in the sealed login
//! transaction and then in the sealed session record.
//!
//! The stored form is the private scalar as a redacted string plus the key's
//! thumbprint: reading a session (every `GET /user`) decodes no key, since
//! building one costs a scalar multiplication; [`DpopBinding::signing_key`]
//! builds it only where a proof is signed.

use super::OidcError;
use crate::es256::Es256Key;
use crate::ports::{Clock, Random};
use crate::secret::{DpopPrivateKey, random_token};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

/// A session's DPoP key, as the sealed records keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpopBinding {
    /// The private scalar, base64url.
    pub key: DpopPrivateKey,
    /// The RFC 7638 thumbprint of its public key: the `jkt` the IdP binds
    /// tokens to (sent as `dpop_jkt`, echoed in a JWT's `cnf.jkt`).
    pub jkt: String,
}

impl DpopBinding {
    /// A fresh key for a new login.
    pub fn generate(rng: &dyn Random) -> Self {
        let key = Es256Key::generate(rng);
        Self {
            key: DpopPrivateKey::new(URL_SAFE_NO_PAD.encode(key.scalar())),
            jkt: key.thumbprint(),
        }
    }

    /// The key, to sign proofs with. A stored key that does not decode is
    /// a damaged record (it was sealed, so never an attacker's).
    pub fn signing_key(&self) -> Result<Es256Key, OidcError> {
        URL_SAFE_NO_PAD
            .decode(self.key.expose())
            .ok()
            .and_then(|d| Es256Key::from_scalar(&d))
            .ok_or_else(|| OidcError::BadResponse("the session's DPoP key is damaged".into()))
    }
}

/// What one proof is for: the request it goes with.
pub struct ProofFor<'a> {
    /// `POST` for the token endpoint, `GET` for userinfo.
    pub method: &'a str,
    /// The endpoint; its query and fragment are left out (`htu`).
    pub url: &'a str,
    /// The server's last `DPoP-Nonce`, when it asked for one.
    pub nonce: Option<&'a str>,
    /// The access token the request presents (`ath`), at a resource.
    pub access_token: Option<&'a str>,
}

/// A fresh DPoP proof JWT (RFC 9449, section 4.2).
pub fn proof(key: &Es256Key, what: &ProofFor, clock: &dyn Clock, rng: &dyn Random) -> String {
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()});
    let mut claims = json!({
        "jti": random_token(rng, 18),
        "htm": what.method,
        "htu": htu(what.url),
        "iat": clock.now(),
    });
    if let Some(nonce) = what.nonce {
        claims["nonce"] = json!(nonce);
    }
    if let Some(token) = what.access_token {
        claims["ath"] = json!(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())));
    }
    key.sign_jwt(&header, &claims)
}

/// The URL without its query and fragment (RFC 9449, section 4.2).
fn htu(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// The nonce a server asks for in its `DPoP-Nonce` header: printable ASCII
/// without spaces (RFC 9449, section 8.1's `NQCHAR`), at most 512 bytes;
/// anything else is ignored.
pub fn server_nonce(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get("dpop-nonce")?.to_str().ok()?;
    let fine = !value.is_empty()
        && value.len() <= 512
        && value.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    fine.then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CountingRandom, FixedClock};
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    use serde_json::Value;

    fn verify(proof: &str) -> (Value, Value) {
        let header = decode_header(proof).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        let jwk = header.jwk.expect("the public key rides in the header");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = decode::<Value>(proof, &DecodingKey::from_jwk(&jwk).unwrap(), &validation)
            .expect("signed by the key in its header")
            .claims;
        let header_json: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(proof.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        (header_json, claims)
    }

    #[test]
    fn a_proof_names_its_request_and_carries_no_private_member() {
        let rng = CountingRandom::default();
        let binding = DpopBinding::generate(&rng);
        let key = binding.signing_key().unwrap();
        let what = ProofFor {
            method: "GET",
            url: "https://idp.example/userinfo?x=1#y",
            nonce: Some("n-1"),
            access_token: Some("at-1"),
        };
        let (header, claims) = verify(&proof(&key, &what, &FixedClock::at(1_000), &rng));
        let mut members: Vec<&str> = header["jwk"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["crv", "kty", "x", "y"], "no `d`");
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://idp.example/userinfo");
        assert_eq!(claims["iat"], 1_000);
        assert_eq!(claims["nonce"], "n-1");
        // RFC 9449 section 7.1: base64url(SHA-256("at-1")).
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"at-1"))
        );
        assert_eq!(claims["jti"].as_str().unwrap().len(), 24);
        let second = verify(&proof(&key, &what, &FixedClock::at(1_000), &rng)).1;
        assert_ne!(second["jti"], claims["jti"], "a fresh jti per proof");

        let token_proof = ProofFor {
            method: "POST",
            url: "https://idp.example/token",
            nonce: None,
            access_token: None,
        };
        let claims = verify(&proof(&key, &token_proof, &FixedClock::at(1), &rng)).1;
        assert!(claims.get("nonce").is_none() && claims.get("ath").is_none());
    }

    #[test]
    fn the_binding_keeps_the_thumbprint_of_its_key() {
        let binding = DpopBinding::generate(&CountingRandom::default());
        assert_eq!(binding.signing_key().unwrap().thumbprint(), binding.jkt);
        assert!(!format!("{binding:?}").contains(binding.key.expose()));
        let damaged = DpopBinding {
            key: DpopPrivateKey::new("AAAA"),
            jkt: binding.jkt.clone(),
        };
        assert!(damaged.signing_key().is_err());
    }

    #[test]
    fn only_a_well_formed_server_nonce_is_taken() {
        let nonce = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert("dpop-nonce", v.parse().unwrap());
            server_nonce(&h)
        };
        assert_eq!(nonce("eyJ7S_zG.eyJH0-Z.HX4w-7v").as_deref(), Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"));
        assert_eq!(nonce("has space"), None);
        assert_eq!(nonce(&"n".repeat(513)), None);
        assert_eq!(server_nonce(&http::HeaderMap::new()), None);
    }
}
