//! Tickets: what a cookie carries for a server-side record (a session or a
//! login in progress), and the sealing of that record with a key only the
//! cookie holds.
//!
//! A ticket is an id and a secret, 128 and 256 bits from the CSPRNG. The store
//! key derives from the id alone, so an operator can list one key per browser;
//! the record's private part is encrypted and authenticated (XChaCha20-Poly1305,
//! the store key as associated data) under a key derived from the secret, which
//! the store never sees. So a reader of the store learns key names and times,
//! and can act as nobody: a key name is not a cookie, and a record does not
//! open without the cookie's secret. This is oauth2-proxy's ticket design.
//!
//! The secret is 256 uniformly random bits, so it serves as the sealing key as
//! it is (no key derivation needed). The record also keeps a verifier of the
//! secret, a domain-separated SHA-256 of it: one hash, which reveals nothing
//! of the key, lets a wrong secret be told apart from a damaged record: a cookie
//! with someone else's id and a guessed secret opens nothing and removes
//! nothing, while a record that fails to open under its own secret was
//! tampered with and is dropped.

use crate::ports::Random;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ID_BYTES: usize = 16;
const SECRET_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
/// Base64 lengths of the two halves (no padding).
const ID_CHARS: usize = 22;
const SECRET_CHARS: usize = 43;

/// The public half of a ticket: names the record in the store, opens nothing.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RecordId(String);

impl RecordId {
    /// Accepts only well-formed ids, so garbage never reaches a key name.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == ID_CHARS && is_b64url(raw) && decodes_to(raw, ID_BYTES))
            .then(|| Self(raw.to_owned()))
    }

    /// The id as it appears in key names.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not a credential, but it names a user's record: kept out of logs anyway.
        f.write_str("RecordId([redacted])")
    }
}

/// An id and its secret, as a cookie carries them: `<id>.<secret>`.
#[derive(Clone)]
pub struct Ticket {
    id: RecordId,
    secret: [u8; SECRET_BYTES],
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticket([redacted])")
    }
}

/// A record's private part failed to open: tampered with, or not ours.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsealable;

impl Ticket {
    /// A fresh ticket: a new id and a new secret.
    pub fn generate(rng: &dyn Random) -> Self {
        let mut id = [0u8; ID_BYTES];
        rng.fill(&mut id);
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill(&mut secret);
        Self {
            id: RecordId(B64.encode(id)),
            secret,
        }
    }

    /// Parses a cookie value; anything but `<22 chars>.<43 chars>` of
    /// URL-safe base64 is `None` (old-format cookies among them).
    pub fn parse(raw: &str) -> Option<Self> {
        let (id, secret) = raw.split_once('.')?;
        let id = RecordId::parse(id)?;
        if secret.len() != SECRET_CHARS || !is_b64url(secret) {
            return None;
        }
        let bytes = B64.decode(secret).ok()?;
        Some(Self {
            id,
            secret: bytes.try_into().ok()?,
        })
    }

    /// The cookie value. Only ever put in a `Set-Cookie` header.
    pub fn cookie_value(&self) -> String {
        format!("{}.{}", self.id.0, B64.encode(self.secret))
    }

    /// Which record this ticket opens.
    pub fn id(&self) -> &RecordId {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.secret.into())
    }

    /// What the record keeps to recognise this ticket's secret: a hash of it,
    /// from which neither the secret nor the sealing key can be computed.
    pub fn verifier(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"oidc-client ticket verifier v1\n");
        h.update(self.secret);
        B64.encode(h.finalize())
    }

    /// Whether `stored` is this ticket's verifier, in constant time.
    pub fn matches(&self, stored: &str) -> bool {
        self.verifier().as_bytes().ct_eq(stored.as_bytes()).into()
    }

    /// Encrypts `plain` for the record stored under `key`: base64 of nonce and ciphertext.
    pub fn seal(&self, rng: &dyn Random, key: &str, plain: &[u8]) -> String {
        B64.encode(self.seal_bytes(rng, key, plain))
    }

    /// Decrypts what [`Ticket::seal`] made for `key`.
    pub fn open(&self, key: &str, sealed: &str) -> Result<Vec<u8>, Unsealable> {
        self.open_bytes(key, &B64.decode(sealed).map_err(|_| Unsealable)?)
    }

    /// Encrypts `plain` for the record stored under `key`: nonce, then ciphertext and tag.
    pub fn seal_bytes(&self, rng: &dyn Random, key: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rng.fill(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: key.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any in-memory message");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts what [`Ticket::seal_bytes`] made for `key`.
    pub fn open_bytes(&self, key: &str, bytes: &[u8]) -> Result<Vec<u8>, Unsealable> {
        if bytes.len() < NONCE_BYTES {
            return Err(Unsealable);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| Unsealable)
    }
}

fn is_b64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Rejects non-canonical encodings (trailing bits set), so one id has one spelling.
fn decodes_to(s: &str, len: usize) -> bool {
    B64.decode(s).is_ok_and(|b| b.len() == len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::CountingRandom;

    #[test]
    fn cookie_value_round_trips_and_has_the_documented_shape() {
        let t = Ticket::generate(&CountingRandom::default());
        let v = t.cookie_value();
        assert_eq!(v.len(), ID_CHARS + 1 + SECRET_CHARS);
        assert!(v.starts_with(&format!("{}.", t.id().as_str())));
        let back = Ticket::parse(&v).unwrap();
        assert_eq!(back.id(), t.id());
        assert_eq!(back.secret, t.secret);
    }

    #[test]
    fn malformed_values_are_refused() {
        let t = Ticket::generate(&CountingRandom::default()).cookie_value();
        let (id, secret) = t.split_once('.').unwrap();
        for bad in [
            "",
            id,
            &format!("{id}."),
            &format!(".{secret}"),
            &format!("{id}.{secret}x"),
            &format!("{id}x.{secret}"),
            &format!("{id}.{}", &secret[1..]),
            &format!("{id}.{secret}.{secret}"),
            &"a".repeat(43),
            &format!("{}+.{secret}", &id[1..]),
        ] {
            assert!(Ticket::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn sealed_data_opens_only_with_its_ticket_and_key() {
        let rng = CountingRandom::default();
        let t = Ticket::generate(&rng);
        let other = Ticket::generate(&rng);
        let sealed = t.seal(&rng, "sess:a", b"tokens");
        assert_eq!(t.open("sess:a", &sealed).unwrap(), b"tokens");
        assert_eq!(
            t.open("sess:b", &sealed),
            Err(Unsealable),
            "bound to its key"
        );
        assert_eq!(other.open("sess:a", &sealed), Err(Unsealable));
        let mut bytes = B64.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(t.open("sess:a", &B64.encode(bytes)), Err(Unsealable));
        assert_eq!(t.open("sess:a", "!!"), Err(Unsealable));
        assert_eq!(t.open("sess:a", "AAAA"), Err(Unsealable));
    }

    #[test]
    fn the_verifier_recognises_only_its_secret_and_reveals_neither_half() {
        let rng = CountingRandom::default();
        let t = Ticket::generate(&rng);
        let v = t.verifier();
        assert!(t.matches(&v));
        assert!(!Ticket::generate(&rng).matches(&v));
        assert!(!t.cookie_value().contains(&v));
        assert!(!v.contains(&B64.encode(t.secret)));
    }

    #[test]
    fn debug_hides_both_halves() {
        let t = Ticket::generate(&CountingRandom::default());
        let shown = format!("{t:?} {:?}", t.id());
        assert!(!shown.contains(t.id().as_str()));
    }
}
