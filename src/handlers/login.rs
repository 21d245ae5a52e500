//! `POST /login`: starts the authorization code flow with PKCE, pushing its
//! parameters to the IdP first when PAR is on (RFC 9126).

use super::context::Ctx;
use super::csrf::check_origin;
use crate::cookies;
use crate::log::log_line;
use crate::oidc::{par, scope, token, transaction};
use crate::request::Request;
use crate::response::{AppError, AppResult, Response};

pub(crate) fn start(req: &Request, ctx: &Ctx) -> AppResult {
    check_origin(req, ctx.cfg)?;
    let form = req.form()?;
    let requested = form
        .get("scope")
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&ctx.cfg.default_scope);
    let scope = scope::normalize(requested)
        .map_err(|why| AppError::bad_request(format!("The scope {why}.")))?;
    // Refused here rather than at the token endpoint after the IdP's login.
    if let Some(Err(e)) = ctx.cfg.client_auth.signing_key() {
        return Err(e.into());
    }
    let meta = ctx.discovery()?;
    let pushed_to = par::endpoint(ctx.cfg, &meta)?;
    let (ticket, mut txn) = transaction::new(ctx.rng, ctx.clock, scope, ctx.cfg.dpop);
    txn.pushed = pushed_to.is_some();
    let url = match pushed_to {
        Some(endpoint) => par::push(&ctx.token_caller(), ctx.cfg, &meta, endpoint, &txn)?,
        None => token::authorization_request(ctx.cfg, &meta, &txn)?.to_string(),
    };
    // Only now, with the IdP's answer in hand: a refused push stores nothing.
    transaction::save(ctx.kv, ctx.clock, ctx.rng, &ticket, &txn)?;
    // Upkeep rides on logins: bounded work, never on the hot path; best effort.
    match ctx.upkeep().run() {
        Ok(ran) if ran.removed > 0 => log_line!("upkeep: removed {} record(s)", ran.removed),
        Ok(_) => {}
        Err(e) => log_line!("upkeep: {e}"),
    }
    let cookie = cookies::set(
        &ctx.cookie_name(cookies::LOGIN),
        &ticket.cookie_value(),
        transaction::LIFETIME,
        ctx.cfg.https(),
    );
    Ok(Response::redirect(&url).with_cookie(cookie))
}
