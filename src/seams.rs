//! Narrow seams between the app logic and the platform, so the logic runs natively in tests.

use std::time::Duration;

/// Seconds since the Unix epoch, and waiting.
pub trait Clock {
    fn now(&self) -> i64;
    /// Blocks this request for `d` (a request waiting for another's refresh).
    fn pause(&self, d: Duration);
}

/// A cryptographically secure random source.
pub trait Random {
    fn fill(&self, buf: &mut [u8]);
}

/// Raw outgoing HTTP, as `oauth2` models it.
pub type HttpRequest = http::Request<Vec<u8>>;
pub type HttpResponse = http::Response<Vec<u8>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The IdP did not answer within the configured timeout.
    Timeout,
    /// Connection refused, DNS failure, TLS failure and the like.
    Unreachable(String),
    /// The platform refused the destination (not in `allowed_outbound_hosts`).
    Denied,
    /// The response body was larger than we accept from an IdP.
    TooLarge,
    Other(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::Unreachable(e) => write!(f, "unreachable ({e})"),
            HttpError::Denied => f.write_str("destination not allowed by allowed_outbound_hosts"),
            HttpError::TooLarge => f.write_str("response too large"),
            HttpError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for HttpError {}

pub trait HttpClient {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// The largest response body accepted from the IdP (discovery, JWKS, tokens, userinfo).
pub const MAX_IDP_RESPONSE: usize = 256 * 1024;

/// Random bytes encoded URL-safe without padding: session ids, state, nonce, PKCE verifier.
pub fn random_token(rng: &dyn Random, bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
