//! Fresh values the fake stamps what it issues with: the current time and random
//! strings.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (`iat`, `exp`).
pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A random string for codes, tokens, nonces and `request_uri`s.
pub(super) fn random() -> String {
    crate::oidc::random_token(32)
}
