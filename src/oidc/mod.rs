//! The OpenID Connect relying-party logic: discovery, keys, ID-token validation,
//! the token endpoint, userinfo and the login transaction.

mod cache;
pub mod discovery;
pub mod dpop;
pub mod id_token;
pub mod jwks;
pub mod logout_token;
pub mod par;
pub mod scope;
pub mod token;
pub mod transaction;
pub(crate) mod userinfo;

use crate::ports::StoreError;
use crate::ports::{HttpClient, HttpError, HttpRequest};

/// Why talking to the IdP failed (`handlers::errors` says what the user sees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcError {
    /// The store failed (503).
    Store(StoreError),
    /// The IdP could not be reached (502) or timed out (504).
    Transport(HttpError),
    /// The IdP answered with something we cannot accept (502).
    BadResponse(String),
    /// The ID token (or logout token) failed validation (401).
    InvalidToken(String),
    /// The userinfo answer contradicts the ID token (401).
    InvalidUserinfo(String),
    /// A setting that only fails when used: `client_private_key` that does
    /// not fully parse, met when signing an assertion (503, its config page).
    Config(crate::config::ConfigError),
}

impl From<StoreError> for OidcError {
    fn from(e: StoreError) -> Self {
        OidcError::Store(e)
    }
}

/// GETs a JSON object from the IdP (discovery, JWKS): 200 and a JSON object, or an error.
pub fn fetch_json(
    http: &dyn HttpClient,
    url: &str,
    what: &str,
) -> Result<serde_json::Value, OidcError> {
    let request: HttpRequest = http::Request::get(url)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|_| OidcError::BadResponse(format!("invalid {what} URL")))?;
    let response = http.send(request).map_err(OidcError::Transport)?;
    if response.status() != 200 {
        return Err(OidcError::BadResponse(format!(
            "{what} answered HTTP {}",
            response.status().as_u16()
        )));
    }
    match serde_json::from_slice::<serde_json::Value>(response.body()) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(OidcError::BadResponse(format!(
            "{what} is not a JSON object"
        ))),
    }
}
