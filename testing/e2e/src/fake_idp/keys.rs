//! Signing keys the tests generate (RSA 2048 and P-256) and the tokens the fake IdP
//! makes with them, including the forgeries a relying party must refuse.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA 2048, signs RS256.
    Rsa,
    /// P-256, signs ES256.
    Ec,
}

/// A private key with its kid and public JWK.
pub struct SigningKey {
    pub kid: String,
    pub kind: KeyKind,
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public JWK without `kid`.
    public: Value,
    /// For RSA keys: the public key as SPKI PEM (what an HS256 key-confusion attack uses).
    public_pem: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, {:?})", self.kid, self.alg)
    }
}

impl SigningKey {
    /// A fresh key of `kind` named `kid`.
    pub fn generate(kind: KeyKind, kid: &str) -> SigningKey {
        match kind {
            KeyKind::Rsa => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                use rsa::pkcs8::{EncodePublicKey, LineEnding};
                use rsa::traits::PublicKeyParts;
                let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                    .expect("generate an RSA key");
                let public = json!({
                    "kty": "RSA",
                    "n": b64(&key.n().to_bytes_be()),
                    "e": b64(&key.e().to_bytes_be()),
                    "use": "sig",
                    "alg": "RS256",
                });
                let pem = key
                    .to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .expect("encode the RSA public key");
                let der = key.to_pkcs1_der().expect("encode the RSA key");
                SigningKey {
                    kid: kid.to_string(),
                    kind,
                    alg: Algorithm::RS256,
                    encoding: EncodingKey::from_rsa_der(der.as_bytes()),
                    public,
                    public_pem: Some(pem),
                }
            }
            KeyKind::Ec => {
                use p256::elliptic_curve::sec1::ToEncodedPoint;
                use p256::pkcs8::EncodePrivateKey;
                let key = p256::SecretKey::random(&mut rand::thread_rng());
                let point = key.public_key().to_encoded_point(false);
                let public = json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": b64(point.x().expect("x")),
                    "y": b64(point.y().expect("y")),
                    "use": "sig",
                    "alg": "ES256",
                });
                let der = key.to_pkcs8_der().expect("encode the EC key");
                SigningKey {
                    kid: kid.to_string(),
                    kind,
                    alg: Algorithm::ES256,
                    encoding: EncodingKey::from_ec_der(der.as_bytes()),
                    public,
                    public_pem: None,
                }
            }
        }
    }

    /// The public JWK with this key's kid.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.public.clone();
        jwk["kid"] = json!(self.kid);
        jwk
    }

    /// The SPKI PEM of an RSA public key.
    pub fn public_pem(&self) -> Option<&str> {
        self.public_pem.as_deref()
    }

    /// Signs `claims` with this key; the header names `kid` (None: no `kid` header).
    pub fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign a token")
    }
}

/// A compact JWS with any header and signature bytes (e.g. `alg: none`, which
/// jsonwebtoken refuses to produce).
pub fn unsigned(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap()),
        b64(signature)
    )
}

/// HS256 over the claims with `secret` as the HMAC key: the key-confusion forgery.
pub fn hs256(claims: &Value, secret: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("HS256")
}
