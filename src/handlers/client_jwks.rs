//! `GET /jwks.json`: the public half of the client's `private_key_jwt` key,
//! for the IdP to fetch (Keycloak's "JWKS URL", a client's `jwks_uri`).
//!
//! Without `private_key_jwt` there is nothing to publish, so the page is a
//! 404 as for any unknown address. The document names the key by its
//! thumbprint, so a rotated key is a new `kid` and IdPs refetch on it; five
//! minutes of caching spares the component without delaying a rotation much.
//! A key that fails the full parse gets the configuration page.

use super::context::Ctx;
use crate::request::Request;
use crate::response::{AppError, AppResult, Response};
use serde_json::json;

pub(crate) fn show(_: &Request, ctx: &Ctx) -> AppResult {
    // The full parse (public key, thumbprint) happens here, not at loading.
    let Some(key) = ctx.cfg.client_auth.signing_key() else {
        return Err(AppError::new(
            404,
            "There is no page at this address: this client does not use private_key_jwt, so it publishes no keys.",
        ));
    };
    let key = key?;
    let body = json!({ "keys": [key.public_jwk()] }).to_string();
    Ok(Response {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "public, max-age=300".into()),
        ],
        body: body.into_bytes(),
    })
}
