//! `POST /refresh`: the refresh-token grant. A new ID token is validated like the
//! first and must name the same user at the same issuer; `invalid_grant` ends the session.
//!
//! One refresh at a time per session, on every replica: the grant is sent only
//! under the session's lock (see `lock`), with the refresh token read again
//! under it. A request that finds the lock taken (a double click, a second
//! tab) never calls the IdP: it waits, a few seconds at most, for the other to
//! finish, then shows its result; if the other is still busy, it says so and
//! sends the user back to `/user`. With refresh-token rotation a second grant
//! would replay a used token and make the IdP revoke the whole grant.

use super::context::Ctx;
use super::csrf::check_csrf;
use crate::cookies;
use crate::jwt_view::JwtView;
use crate::lock::Held;
use crate::oidc::OidcError;
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::token::{self, TokenError};
use crate::ports::StoreError;
use crate::request::Request;
use crate::response::{AppError, AppResult, Response};
use crate::secret::IdToken;
use crate::session::{PrettyJson, Sessions, Tokens, Written};
use crate::ticket::Ticket;
use std::time::Duration;

/// How long a request waits for another's refresh: steps of this...
const WAIT_STEP: Duration = Duration::from_millis(150);
/// ...this many times (3 s in all).
const WAIT_STEPS: usize = 20;

pub(crate) fn refresh(req: &Request, ctx: &Ctx) -> AppResult {
    let Some((ticket, session)) = ctx.current_session(req)? else {
        return Ok(Response::redirect("/"));
    };
    check_csrf(req, ctx.cfg, &req.form()?, &session)?;
    if session.tokens.refresh_token.is_none() {
        return Err(no_refresh_token());
    }
    let meta = ctx.discovery()?;
    let sessions = ctx.sessions();
    let held = match my_turn(ctx, &sessions, &ticket, session.rev)? {
        Turn::Mine(held) => held,
        Turn::Refreshed => return Ok(Response::redirect("/user")),
        Turn::Ended => return Ok(logged_out(ctx)),
        Turn::Busy => {
            return Err(AppError::new(
                409,
                "These tokens are being refreshed by another request right now.",
            )
            .with_next("Open your user page (/user) again in a moment to see the new ones.")
            .logged("refresh: still under way elsewhere"));
        }
    };
    let result = refresh_held(ctx, &sessions, &meta, &ticket, &held, session.rev);
    held.release(ctx.kv);
    result
}

/// Whose turn it is to refresh a session loaded at revision `rev`.
enum Turn {
    Mine(Held),
    /// Another request refreshed it meanwhile: its result is what to show.
    Refreshed,
    /// It was ended meanwhile (a logout).
    Ended,
    /// Another request is still refreshing it.
    Busy,
}

fn my_turn(ctx: &Ctx, sessions: &Sessions, ticket: &Ticket, rev: u64) -> Result<Turn, StoreError> {
    for step in 0..=WAIT_STEPS {
        if let Some(held) = sessions.try_lock(ticket.id())? {
            return Ok(Turn::Mine(held));
        }
        if step == WAIT_STEPS {
            break;
        }
        ctx.clock.pause(WAIT_STEP);
        match sessions.stored_rev(ticket.id())? {
            None => return Ok(Turn::Ended),
            Some(now) if now != rev => return Ok(Turn::Refreshed),
            Some(_) => {}
        }
    }
    Ok(Turn::Busy)
}

/// The refresh itself, under the session's lock.
fn refresh_held(
    ctx: &Ctx,
    sessions: &Sessions,
    meta: &ProviderMetadata,
    ticket: &Ticket,
    held: &Held,
    rev: u64,
) -> AppResult {
    let Some(session) = sessions.reload(ticket, held)? else {
        return Ok(logged_out(ctx));
    };
    if session.rev != rev {
        // Refreshed between our first read and our turn.
        return Ok(Response::redirect("/user"));
    }
    let Some(refresh_token) = session.tokens.refresh_token.clone() else {
        return Err(no_refresh_token());
    };
    let end_session = |message: &str, log: &str| -> AppError {
        match sessions.end(ticket.id(), session.created_at) {
            Ok(()) => AppError::new(401, message)
                .logged(log)
                .with_cookie(ctx.clear_cookie(cookies::SESSION)),
            Err(e) => e.into(),
        }
    };
    let binding = session.tokens.dpop.clone();
    let key = binding.as_ref().map(|b| b.signing_key()).transpose()?;
    let caller = ctx.token_caller();
    let fresh = match token::refresh(&caller, ctx.cfg, meta, &refresh_token, key.as_ref()) {
        Ok(t) => t,
        Err(TokenError::InvalidGrant) => {
            return Err(end_session(
                "The identity provider no longer accepts this session's refresh token.",
                "refresh: invalid_grant",
            ));
        }
        Err(TokenError::Failed(e)) => return Err(e.into()),
    };

    let mut identity = session.identity.clone();
    let (id_token, id_token_expires_at) = match fresh.id_token {
        Some(raw) => {
            let valid = match ctx.validate_id_token(meta, &raw, None) {
                Ok(v) => v,
                Err(OidcError::InvalidToken(why)) => {
                    return Err(end_session(
                        "The refreshed ID token was rejected; the session has ended.",
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
            let exp = valid.claims.get("exp").and_then(serde_json::Value::as_i64);
            (IdToken::new(raw), exp)
        }
        None => (
            session.tokens.id_token.clone(),
            session.tokens.id_token_expires_at,
        ),
    };
    let tokens = Tokens {
        id_token,
        access_token_jwt: JwtView::decode(fresh.access_token.expose()),
        access_token: fresh.access_token,
        // Without rotation the IdP keeps the old refresh token valid.
        refresh_token: fresh.refresh_token.or(Some(refresh_token)),
        token_type: session.tokens.token_type.clone(),
        access_token_expires_at: fresh.expires_in.map(|s| ctx.clock.now().saturating_add(s)),
        id_token_expires_at,
        scope: fresh.scope.or(session.tokens.scope.clone()),
        // The key stays with the session: the new tokens are bound to it too.
        dpop: binding,
    };
    match sessions.store_refreshed(ticket, held, session, identity, tokens)? {
        Written::Stored(_) => Ok(Response::redirect("/user")),
        Written::Ended => Ok(logged_out(ctx)),
    }
}

fn no_refresh_token() -> AppError {
    AppError::bad_request("There is no refresh token in this session.")
        .with_next("Log out, then log in again with the offline_access scope to get one.")
}

/// The session ended while this request ran: back to the start, cookie cleared.
fn logged_out(ctx: &Ctx) -> Response {
    Response::redirect("/").with_cookie(ctx.clear_cookie(cookies::SESSION))
}
