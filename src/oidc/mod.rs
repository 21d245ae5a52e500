//! The OpenID Connect relying-party logic: discovery, keys, ID-token validation,
//! the token endpoint, userinfo and the login transaction.

pub mod discovery;
pub mod id_token;
pub mod jwks;
pub mod logout_token;
pub mod scope;
#[cfg(test)]
pub mod test_keys;
pub mod token;
pub mod transaction;
pub mod userinfo;

use crate::response::AppError;
use crate::seams::{HttpClient, HttpError, HttpRequest};
use crate::store::StoreError;

/// Why talking to the IdP failed, mapped to the status the user sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcError {
    Store(StoreError),
    /// The IdP could not be reached (502) or timed out (504).
    Transport(HttpError),
    /// The IdP answered with something we cannot accept (502).
    BadResponse(String),
    /// The ID token (or logout token) failed validation (401).
    InvalidToken(String),
    /// The userinfo answer contradicts the ID token (401).
    InvalidUserinfo(String),
}

impl From<StoreError> for OidcError {
    fn from(e: StoreError) -> Self {
        OidcError::Store(e)
    }
}

impl From<OidcError> for AppError {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::Store(e) => e.into(),
            OidcError::Transport(HttpError::Timeout) => AppError::new(
                504,
                "The identity provider did not answer in time. Please try again.",
            )
            .logged("idp: timed out"),
            OidcError::Transport(e) => AppError::new(
                502,
                "The identity provider could not be reached. Please try again later.",
            )
            .logged(format!("idp: {e}")),
            OidcError::BadResponse(why) => AppError::new(
                502,
                format!("The identity provider sent an invalid response: {why}."),
            )
            .logged(format!("idp: {why}")),
            OidcError::InvalidUserinfo(why) => AppError::new(
                401,
                format!("The identity provider's userinfo response was rejected: {why}."),
            )
            .logged(format!("userinfo rejected: {why}")),
            OidcError::InvalidToken(why) => AppError::new(
                401,
                format!("The identity provider's ID token was rejected: {why}."),
            )
            .logged(format!("id_token rejected: {why}")),
        }
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
