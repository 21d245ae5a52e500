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

#[cfg(test)]
pub mod fakes {
    //! Deterministic clock and randomness, and a scripted HTTP client, for unit tests.
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;

    pub struct FixedClock(pub Cell<i64>);

    impl FixedClock {
        pub fn at(t: i64) -> Self {
            Self(Cell::new(t))
        }
        pub fn advance(&self, secs: i64) {
            self.0.set(self.0.get() + secs);
        }
    }

    impl Clock for FixedClock {
        fn now(&self) -> i64 {
            self.0.get()
        }
        /// Time stands still; a test that needs more uses [`PausingClock`].
        fn pause(&self, _: Duration) {}
    }

    /// Counter-based bytes: every call yields different output, reproducibly.
    #[derive(Default)]
    pub struct CountingRandom(pub Cell<u64>);

    impl Random for CountingRandom {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf.iter_mut() {
                let n = self.0.get().wrapping_add(1);
                self.0.set(n);
                *b = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8;
            }
        }
    }

    type Handler = Box<dyn Fn(&HttpRequest) -> Result<HttpResponse, HttpError>>;

    /// A handler-based fake IdP: each request is answered by the closure, and recorded.
    pub struct FakeHttp {
        pub handler: Handler,
        pub log: RefCell<VecDeque<String>>,
    }

    impl FakeHttp {
        pub fn new(
            handler: impl Fn(&HttpRequest) -> Result<HttpResponse, HttpError> + 'static,
        ) -> Self {
            Self {
                handler: Box::new(handler),
                log: RefCell::new(VecDeque::new()),
            }
        }
        pub fn calls_to(&self, path: &str) -> usize {
            self.log
                .borrow()
                .iter()
                .filter(|u| u.ends_with(path))
                .count()
        }
    }

    impl HttpClient for FakeHttp {
        fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
            let uri = request.uri().to_string();
            let path = uri.split('?').next().unwrap_or_default().to_owned();
            self.log.borrow_mut().push_back(path);
            (self.handler)(&request)
        }
    }

    pub fn json_response(status: u16, body: &serde_json::Value) -> Result<HttpResponse, HttpError> {
        Ok(http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .unwrap())
    }
}
