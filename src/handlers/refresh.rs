//! `POST /refresh`: the refresh-token grant. A new ID token is validated like the
//! first and must name the same user at the same issuer; `invalid_grant` ends the session.

use super::callback::validate_id_token;
use super::check_csrf;
use crate::app::Ctx;
use crate::cookies;
use crate::oidc::OidcError;
use crate::oidc::token::{self, TokenError};
use crate::request::Request;
use crate::response::{AppError, AppResult, Response};
use crate::secret::Secret;
use crate::session::{PrettyJson, Tokens};

pub fn refresh(req: &Request, ctx: &Ctx) -> AppResult {
    let Some((id, session)) = ctx.current_session(req)? else {
        return Ok(Response::redirect("/"));
    };
    check_csrf(req, ctx.cfg, &req.form()?, &session)?;
    let Some(refresh_token) = session.tokens.refresh_token.clone() else {
        return Err(AppError::bad_request(
            "There is no refresh token in this session. Log in with the offline_access scope to get one.",
        ));
    };
    let meta = ctx.discovery()?;
    let end_session = |message: &str, log: &str| -> AppError {
        match ctx.sessions().delete(&id) {
            Ok(()) => AppError::new(401, message)
                .logged(log)
                .with_cookie(ctx.clear_cookie(cookies::SESSION)),
            Err(e) => e.into(),
        }
    };
    let fresh = match token::refresh(ctx.http, ctx.cfg, &meta, &refresh_token) {
        Ok(t) => t,
        Err(TokenError::InvalidGrant) => {
            return Err(end_session(
                "The identity provider no longer accepts this session's refresh token. Please log in again.",
                "refresh: invalid_grant",
            ));
        }
        Err(TokenError::Failed(e)) => return Err(e.into()),
    };

    let mut identity = session.identity.clone();
    let id_token = match fresh.id_token {
        Some(raw) => {
            let valid = match validate_id_token(ctx, &meta, &raw, None) {
                Ok(v) => v,
                Err(OidcError::InvalidToken(why)) => {
                    return Err(end_session(
                        "The refreshed ID token was rejected; the session has ended. Please log in again.",
                        &format!("refresh: id_token rejected: {why}"),
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            if valid.sub != identity.sub || valid.iss != identity.iss {
                return Err(end_session(
                    "The refreshed ID token names a different user; the session has ended.",
                    "refresh: sub or iss changed",
                ));
            }
            identity.sid = valid.sid.or(identity.sid);
            identity.claims = PrettyJson::new(&valid.claims);
            Secret::new(raw)
        }
        None => session.tokens.id_token.clone(),
    };
    let tokens = Tokens {
        id_token,
        access_token: fresh.access_token,
        // Without rotation the IdP keeps the old refresh token valid.
        refresh_token: fresh.refresh_token.or(Some(refresh_token)),
        token_type: "Bearer".into(),
        access_token_expires_at: fresh.expires_in.map(|s| ctx.clock.now().saturating_add(s)),
        scope: fresh.scope.or(session.tokens.scope.clone()),
    };
    ctx.sessions()
        .update_tokens(&id, session, identity, tokens)?;
    Ok(Response::redirect("/user"))
}
