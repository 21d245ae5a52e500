//! `POST /backchannel-logout`: the IdP tells us, server to server, that a user
//! or an IdP session has logged out (OpenID Connect Back-Channel Logout 1.0).
//! We delete every session it names: with a shared store, on every replica.
//! Answers 200, or 400 with a JSON error, always `Cache-Control: no-store`.

use crate::app::Ctx;
use crate::oidc::{OidcError, logout_token};
use crate::request::Request;
use crate::response::{AppError, AppResult, Response};
use crate::session_index;

fn refuse(description: &str) -> Response {
    let body = serde_json::json!({ "error": "invalid_request", "error_description": description });
    Response {
        status: 400,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

pub fn receive(req: &Request, ctx: &Ctx) -> AppResult {
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
            eprintln!("backchannel-logout: rejected: {why}");
            return Ok(refuse(&format!("invalid logout_token: {why}")));
        }
        Err(e) => return Err(AppError::from(e)),
    };
    if ctx
        .kv
        .exists(&session_index::key("jti", &token.iss, &token.jti))?
    {
        return Ok(refuse("this logout_token was already used"));
    }

    // With a sid, only that IdP session ends; with only a sub, all of the user's sessions.
    let index_key = match (&token.sid, &token.sub) {
        (Some(sid), _) => session_index::key("sid", &token.iss, sid),
        (None, Some(sub)) => session_index::key("sub", &token.iss, sub),
        (None, None) => return Ok(refuse("no sub or sid")),
    };
    let sessions = ctx.sessions();
    let mut ended = 0;
    for id in session_index::sessions(ctx.kv, &index_key)? {
        let Some(session) = sessions.load(&id)? else {
            continue;
        };
        let same_user = token
            .sub
            .as_ref()
            .is_none_or(|sub| *sub == session.identity.sub);
        let same_sid = token.sid.is_none() || token.sid == session.identity.sid;
        if same_user && same_sid && session.identity.iss == token.iss {
            sessions.delete(&id)?;
            ended += 1;
        }
    }
    ctx.kv.delete(&index_key)?;
    // Recorded last: if the store failed above, the IdP may retry the same token.
    session_index::first_use_of_jti(ctx.kv, &token.iss, &token.jti, token.exp)?;
    eprintln!("backchannel-logout: ended {ended} session(s)");
    Ok(Response::text(200, ""))
}
