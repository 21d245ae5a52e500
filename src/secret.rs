//! Values that must never reach a log line or an error page, one type per
//! kind, so a refresh token cannot be passed where an access token belongs.
//!
//! Hand-written rather than `oauth2`'s types of the same names: those have no
//! `PartialEq` without an extra feature, and OpenID Connect's ID token and
//! nonce, the login's state and the session's CSRF token are not among them.
//! `token` converts at the `oauth2` boundary.

use crate::ports::Random;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Declares a secret string type: `Debug` prints only its kind, reading it
/// needs an explicit `expose()`, and it is stored as the plain string.
macro_rules! secret_kind {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps `value`.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The value itself, for the one place that must send or compare it.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    )*};
}

secret_kind! {
    /// The client's password at the IdP's token endpoint.
    ClientSecret;
    /// The code the IdP sends back to `/callback`, good for one token request.
    AuthorizationCode;
    /// Lets its holder call APIs as the user.
    AccessToken;
    /// Gets new tokens from the IdP for as long as the grant lasts.
    RefreshToken;
    /// The IdP's signed statement of who logged in (compact JWT).
    IdToken;
    /// The session's token that state-changing forms must carry.
    CsrfToken;
    /// The login's `state`: ties the callback to the browser that started it.
    LoginState;
    /// The login's `nonce`: ties the ID token to this login.
    Nonce;
    /// The PKCE code verifier: proves the code's redeemer started the login.
    PkceVerifier;
    /// A session's DPoP private key (base64url scalar): signs its proofs.
    DpopPrivateKey;
}

/// Random bytes encoded URL-safe without padding: CSRF tokens, state, nonce, PKCE verifier.
pub fn random_token(rng: &dyn Random, bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Compares two byte strings in time independent of where they differ,
/// for state, CSRF tokens and other values an attacker may probe.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value_and_names_the_kind() {
        let s = RefreshToken::new("hunter2");
        assert_eq!(format!("{s:?}"), "RefreshToken([redacted])");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(
            format!("{:?}", ClientSecret::new("hunter2")),
            "ClientSecret([redacted])"
        );
    }

    #[test]
    fn serializes_as_plain_string() {
        let s = AccessToken::new("abc");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"abc\"");
        let back: AccessToken = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
