//! `POST /logout`: ends the session here, then at the IdP (RP-initiated logout)
//! when it offers an end-session endpoint.

use super::context::Ctx;
use super::csrf::check_csrf;
use crate::cookies;
use crate::log::log_line;
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::token;
use crate::request::Request;
use crate::response::{AppResult, Response};
use crate::session::Session;

pub(crate) fn logout(req: &Request, ctx: &Ctx) -> AppResult {
    let clear = ctx.clear_cookie(cookies::SESSION);
    let Some((ticket, session)) = ctx.current_session(req)? else {
        return Ok(Response::redirect("/").with_cookie(clear));
    };
    check_csrf(req, ctx.cfg, &req.form()?, &session)?;
    ctx.sessions().end(ticket.id(), session.created_at)?;
    // The IdP session ends too; its back-channel index entry has nothing left to find.
    if let Some(sid) = &session.identity.sid {
        ctx.kv.delete(&crate::keys::index(
            crate::keys::IndexKind::Sid,
            &session.identity.iss,
            sid,
        ))?;
    }
    // The local logout is done; an IdP that cannot be reached only skips the remote step.
    let end_session = match ctx.discovery() {
        Ok(meta) => {
            revoke_refresh_token(ctx, &meta, &session);
            meta.end_session_endpoint
        }
        Err(e) => {
            log_line!("logout: discovery failed, skipping end-session: {e:?}");
            None
        }
    };
    let location = match end_session.and_then(|e| url::Url::parse(&e).ok()) {
        Some(mut url) => {
            url.query_pairs_mut()
                .append_pair("id_token_hint", session.tokens.id_token.expose())
                .append_pair(
                    "post_logout_redirect_uri",
                    &ctx.cfg.post_logout_redirect_uri(),
                )
                .append_pair("client_id", &ctx.cfg.client_id);
            url.to_string()
        }
        None => "/".to_owned(),
    };
    Ok(Response::redirect(&location).with_cookie(clear))
}

/// Best effort: an offline grant would otherwise outlive the logout at the IdP.
fn revoke_refresh_token(ctx: &Ctx, meta: &ProviderMetadata, session: &Session) {
    if let (Some(endpoint), Some(rt)) = (&meta.revocation_endpoint, &session.tokens.refresh_token)
        && let Err(e) = token::revoke(&ctx.token_caller(), ctx.cfg, meta, endpoint, rt)
    {
        log_line!("logout: could not revoke the refresh token: {e:?}");
    }
}
