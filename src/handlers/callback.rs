//! `GET /callback`: the IdP sends the browser back with a code (or an error).
//!
//! Checks run before anything is consumed, so a tampered or replayed callback
//! leaves the store as it was. After the code exchange the ID token is fully
//! validated, userinfo cross-checked, and a brand-new session created.

use super::context::Ctx;
use crate::cookies;
use crate::oidc::transaction::{PendingLogin, StateError};
use crate::oidc::{OidcError, token, userinfo};
use crate::request::{Request, truncate};
use crate::response::{AppError, AppResult, Response};
use crate::secret::Secret;
use crate::session::{Identity, PrettyJson, Tokens};

const UNKNOWN_STATE: &str = "Unknown login state: this login was not started here, has expired, or was already completed. Please log in again.";

pub fn finish(req: &Request, ctx: &Ctx) -> AppResult {
    let params = req.query_params()?;
    let login_cookie = ctx.clear_cookie(cookies::LOGIN);
    let bad = |msg: &str| AppError::bad_request(msg).with_cookie(login_cookie.clone());

    let Some(login_ticket) = cookies::read(
        req.headers_named("cookie"),
        &ctx.cookie_name(cookies::LOGIN),
    ) else {
        return Err(bad(UNKNOWN_STATE).logged("callback: no login cookie"));
    };
    let Some(pending) = PendingLogin::find(ctx.kv, ctx.clock, &login_ticket)? else {
        return Err(bad(UNKNOWN_STATE).logged("callback: unknown login state"));
    };
    match pending.check_state(params.get("state").map(String::as_str)) {
        Ok(()) => {}
        Err(StateError::Missing) => {
            return Err(AppError::bad_request(
                "The callback has no state parameter.",
            ));
        }
        Err(StateError::Mismatch | StateError::Used) => {
            return Err(
                AppError::bad_request("The state parameter does not match this login.")
                    .logged("callback: state mismatch"),
            );
        }
    }

    let meta = ctx.discovery()?;
    // RFC 9207: the authorization response must come from our issuer.
    match params.get("iss") {
        Some(iss) if *iss != ctx.cfg.issuer => {
            return Err(AppError::bad_request(
                "The response comes from a different issuer (iss) than the configured one.",
            )
            .logged("callback: iss mismatch"));
        }
        None if meta.authorization_response_iss_parameter_supported == Some(true) => {
            return Err(AppError::bad_request(
                "The response lacks the iss parameter its issuer promises (RFC 9207).",
            ));
        }
        _ => {}
    }

    if let Some(error) = params.get("error") {
        pending.abandon(ctx.kv)?;
        let description = params
            .get("error_description")
            .map(|d| format!(": {}", truncate(d, 300)))
            .unwrap_or_default();
        let status = if error == "access_denied" { 403 } else { 400 };
        return Err(AppError::new(
            status,
            format!(
                "The identity provider reported `{}`{description}",
                truncate(error, 60)
            ),
        )
        .with_cookie(login_cookie));
    }
    let Some(code) = params
        .get("code")
        .filter(|c| !c.is_empty() && c.len() <= 2048)
    else {
        return Err(AppError::bad_request(
            "The callback has no authorization code.",
        ));
    };

    let verified = match pending.verify(
        ctx.kv,
        ctx.clock,
        params.get("state").map(String::as_str),
        Secret::new(code.clone()),
    )? {
        Ok(v) => v,
        Err(StateError::Used) => {
            return Err(bad(UNKNOWN_STATE).logged("callback: login already completed"));
        }
        Err(_) => {
            return Err(AppError::bad_request(
                "The state parameter does not match this login.",
            ));
        }
    };
    // From here on the transaction is consumed; every failure also clears its cookie.
    let fail = |e: AppError| e.with_cookie(login_cookie.clone());

    let tokens =
        token::exchange_code(ctx.http, ctx.cfg, &meta, &verified).map_err(|e| fail(e.into()))?;
    let Some(raw_id_token) = tokens.id_token.clone() else {
        return Err(fail(
            OidcError::BadResponse("the token response has no id_token".into()).into(),
        ));
    };
    let valid = ctx
        .validate_id_token(&meta, &raw_id_token, Some(verified.txn.nonce.expose()))
        .map_err(|e| fail(e.into()))?;
    let info = match &meta.userinfo_endpoint {
        Some(endpoint) => Some(
            userinfo::fetch(ctx.http, endpoint, tokens.access_token.expose(), &valid.sub)
                .map_err(|e| fail(e.into()))?,
        ),
        None => None,
    };

    let identity = Identity {
        username: super::username::username(&valid.claims, info.as_ref(), &valid.sub),
        iss: valid.iss,
        sub: valid.sub,
        sid: valid.sid,
        claims: PrettyJson::new(&valid.claims),
        userinfo: info.as_ref().map(PrettyJson::new),
    };
    let tokens = Tokens {
        id_token: Secret::new(raw_id_token),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        token_type: "Bearer".into(),
        access_token_expires_at: tokens.expires_in.map(|s| ctx.clock.now().saturating_add(s)),
        scope: tokens.scope.or(Some(verified.txn.scope.clone())),
    };

    // A session cookie from before the login is never reused (no fixation).
    let sessions = ctx.sessions();
    if let Some(old) = ctx.session_ticket(req)
        && let Some(previous) = sessions.load(&old).map_err(|e| fail(e.into()))?
    {
        sessions
            .end(old.id(), previous.created_at)
            .map_err(|e| fail(e.into()))?;
    }
    let (ticket, session) = sessions
        .create(identity, tokens)
        .map_err(|e| fail(e.into()))?;
    // Without its index entries a back-channel logout could not find the session:
    // better no session than one that cannot be ended.
    let index = session.identity.index_keys();
    if let Err(e) = crate::session_index::add(ctx.kv, &index, ticket.id()) {
        let _ = sessions.end(ticket.id(), session.created_at);
        return Err(fail(e.into()));
    }
    let session_cookie = cookies::set(
        &ctx.cookie_name(cookies::SESSION),
        &ticket.cookie_value(),
        sessions.cookie_max_age(&session),
        ctx.cfg.https(),
    );
    Ok(Response::redirect("/user")
        .with_cookie(session_cookie)
        .with_cookie(login_cookie))
}
