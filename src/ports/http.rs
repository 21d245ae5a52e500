//! Outgoing HTTP to the IdP.

/// Raw outgoing HTTP, as `oauth2` models it.
pub type HttpRequest = http::Request<Vec<u8>>;
/// A whole response from the IdP, body read.
pub type HttpResponse = http::Response<Vec<u8>>;

/// Why an outgoing request got no usable response.
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
    /// Anything else the platform reports.
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

/// Sends requests to the IdP (and only there: the platform confines them).
pub trait HttpClient {
    /// Sends `request` and reads the whole response, within the timeout.
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// The largest response body accepted from the IdP (discovery, JWKS, tokens, userinfo).
pub const MAX_IDP_RESPONSE: usize = 256 * 1024;
