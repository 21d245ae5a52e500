//! OAuth/OIDC bits a test needs when it plays the client itself: random values, PKCE,
//! client authentication, JWT payloads.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// `bytes` random bytes, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source");
    URL_SAFE_NO_PAD.encode(buf)
}

/// A PKCE verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = random_token(32);
        let challenge = s256(&verifier);
        Pkce {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

/// base64url(SHA-256(verifier)), the S256 code challenge.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The `Authorization` header value for client_secret_basic: RFC 6749 2.3.1 says the
/// id and secret are form-urlencoded before they are joined and base64-encoded (and
/// oidc-provider decodes them that way).
pub fn basic_auth(client_id: &str, client_secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(client_id), enc(client_secret)))
    )
}

/// The decoded header and payload of a compact JWS (the signature is not checked).
pub fn decode_jwt(jwt: &str) -> (serde_json::Value, serde_json::Value) {
    let mut parts = jwt.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("not a compact JWS: {jwt:?}");
    };
    let part = |p: &str| -> serde_json::Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(p.trim_end_matches('='))
            .unwrap_or_else(|e| panic!("bad base64url in JWT part {p:?}: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT part is not JSON: {e}"))
    };
    (part(header), part(payload))
}

/// The payload of a compact JWS (not verified).
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    decode_jwt(jwt).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc7636_example() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn basic_auth_encodes_first() {
        assert_eq!(
            basic_auth("client1", "a b:c"),
            format!("Basic {}", STANDARD.encode("client1:a+b%3Ac"))
        );
    }
}
