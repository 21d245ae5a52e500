//! Tokens no IdP key signed: the forgeries a relying party must refuse.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

use crate::base64url;

/// A compact JWS with any header and signature bytes, e.g. `alg: none`, which
/// jsonwebtoken refuses to produce.
pub fn unsigned(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        base64url(&serde_json::to_vec(header).expect("a JSON header")),
        base64url(&serde_json::to_vec(claims).expect("JSON claims")),
        base64url(signature)
    )
}

/// HS256 over `claims` with `secret` as the HMAC key: the classic key-confusion
/// forgery (the secret being the client secret or an RSA public key's PEM or modulus).
pub fn hs256_forgery(claims: &Value, secret: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("HS256")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::json;

    fn header_of(token: &str) -> Header {
        jsonwebtoken::decode_header(token).expect("a readable header")
    }

    #[test]
    fn unsigned_carries_the_header_claims_and_signature_given() {
        let token = unsigned(&json!({"alg": "none"}), &json!({"sub": "alice"}), b"sig");
        let parts: Vec<_> = token.split('.').collect();
        assert_eq!(
            parts,
            ["eyJhbGciOiJub25lIn0", "eyJzdWIiOiJhbGljZSJ9", "c2ln"]
        );
    }

    #[test]
    fn hs256_forgery_verifies_with_its_secret_only() {
        let claims = json!({"sub": "alice"});
        let token = hs256_forgery(&claims, b"secret", Some("k1"));
        assert_eq!(header_of(&token).kid.as_deref(), Some("k1"));
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let check = |secret: &[u8]| {
            jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(secret), &validation)
        };
        assert_eq!(check(b"secret").expect("verifies").claims, claims);
        assert!(check(b"other").is_err());
    }
}
