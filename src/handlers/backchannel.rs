//! `POST /backchannel-logout`: the IdP tells us, server to server, that a user
//! or an IdP session has logged out (OpenID Connect Back-Channel Logout 1.0).
//! We delete every session it names: with a shared store, on every replica.
//! Answers 200, or 400 with a JSON error, always `Cache-Control: no-store`.

use super::context::Ctx;
use crate::keys;
use crate::log::log_line;
use crate::oidc::{OidcError, logout_token};
use crate::ports::StoreError;
use crate::request::Request;
use crate::response::{AppError, AppResult, Response};
use crate::session_index::{self, JtiClaim};

fn refuse(description: &str) -> Response {
    let body = serde_json::json!({ "error": "invalid_request", "error_description": description });
    Response {
        status: 400,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

pub(crate) fn receive(req: &Request, ctx: &Ctx) -> AppResult {
    let Ok(form) = req.form() else {
        return Ok(refuse("expected a form with logout_token"));
    };
    let Some(raw) = form.get("logout_token") else {
        return Ok(refuse("missing logout_token"));
    };
    let meta = ctx.discovery()?;
    let now = ctx.clock.now();
    let token = match ctx.backchannel_keys().verify_with(&meta.jwks_uri, |keys| {
        logout_token::validate(raw, keys, &ctx.cfg.issuer, &ctx.cfg.client_id, now)
    }) {
        Ok(t) => t,
        Err(OidcError::InvalidToken(why)) => {
            log_line!("backchannel-logout: rejected: {why}");
            return Ok(refuse(&format!("invalid logout_token: {why}")));
        }
        Err(e) => return Err(AppError::from(e)),
    };
    // With a sid, only that IdP session ends; with only a sub, all of the
    // user's sessions. A session must be listed under every key the token names.
    let named: Vec<String> = [
        token
            .sid
            .as_ref()
            .map(|sid| keys::index(keys::IndexKind::Sid, &token.iss, sid)),
        token
            .sub
            .as_ref()
            .map(|sub| keys::index(keys::IndexKind::Sub, &token.iss, sub)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if named.is_empty() {
        return Ok(refuse("no sub or sid"));
    }
    let claim = session_index::claim_jti(ctx.kv, &ctx.upkeep(), &token.iss, &token.jti, token.exp)?;
    if matches!(claim, JtiClaim::Seen) {
        return Ok(refuse("this logout_token was already used"));
    }
    match end_listed(ctx, &named) {
        Ok(ended) => {
            log_line!("backchannel-logout: ended {ended} session(s)");
            Ok(Response::text(200, ""))
        }
        Err(e) => {
            // Not done: let the IdP's retry of the same token through.
            claim.undo(ctx.kv);
            Err(e.into())
        }
    }
}

/// Ends every session the first named index entry lists (each record must
/// list all of `named` too), then that entry itself.
fn end_listed(ctx: &Ctx, named: &[String]) -> Result<usize, StoreError> {
    let sessions = ctx.sessions();
    let mut ended = 0;
    for id in session_index::sessions(ctx.kv, &named[0])? {
        ended += usize::from(sessions.end_if_listed(&id, named)?);
    }
    ctx.kv.delete(&named[0])?;
    Ok(ended)
}
