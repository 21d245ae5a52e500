//! What the user is told when the store, the IdP or a token fails: the
//! protocol's errors become statuses and English pages here, at the edge, so
//! the protocol layer knows nothing of pages.

use crate::config::ConfigError;
use crate::oidc::OidcError;
use crate::oidc::token::TokenError;
use crate::ports::{HttpError, StoreError};
use crate::response::AppError;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::new(
            503,
            "The session store is unavailable.",
        )
        .with_next("Try again in a minute; if it keeps failing, an operator should check that the key-value store (Redis in the shared setup) is reachable.")
        .logged(e.to_string())
    }
}

/// The 503 page for an invalid setting, naming the variable and its example
/// (not logged: the caller says where it was met).
pub(crate) fn misconfigured(e: &ConfigError) -> AppError {
    AppError::new(503, format!("This app is not configured correctly: {e}."))
        .with_next("An operator must set that variable (see Configuration in the README), then restart the app.")
}

/// A setting found invalid where it is used (`client_private_key`, which
/// loading checks only cheaply): the same page as one found at loading.
impl From<ConfigError> for AppError {
    fn from(e: ConfigError) -> Self {
        misconfigured(&e).logged(format!("config: {e}"))
    }
}

impl From<OidcError> for AppError {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::Store(e) => e.into(),
            OidcError::Config(e) => e.into(),
            OidcError::Transport(HttpError::Timeout) => {
                AppError::new(504, "The identity provider did not answer in time.")
                    .logged("idp: timed out")
            }
            OidcError::Transport(e) => {
                AppError::new(502, "The identity provider could not be reached.")
                    .logged(format!("idp: {e}"))
            }
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

impl From<TokenError> for AppError {
    /// A code the IdP refused means starting over; anything else is the IdP's failure.
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::InvalidGrant => AppError::bad_request(
                "The authorization code was rejected by the identity provider (invalid_grant).",
            )
            .logged("token: invalid_grant"),
            TokenError::Failed(e) => e.into(),
        }
    }
}
