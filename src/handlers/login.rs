//! `POST /login`: starts the authorization code flow with PKCE.

use super::check_origin;
use crate::app::Ctx;
use crate::cookies;
use crate::oidc::{scope, token, transaction};
use crate::request::Request;
use crate::response::{AppError, AppResult, Response};

pub fn start(req: &Request, ctx: &Ctx) -> AppResult {
    check_origin(req, ctx.cfg)?;
    let form = req.form()?;
    let requested = form
        .get("scope")
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&ctx.cfg.default_scope);
    let scope = scope::normalize(requested)
        .map_err(|why| AppError::bad_request(format!("The scope {why}.")))?;
    let meta = ctx.discovery()?;
    let (id, txn) = transaction::new(ctx.rng, ctx.clock, scope);
    let url = token::authorization_url(ctx.cfg, &meta, &txn)?;
    transaction::save(ctx.kv, &id, &txn)?;
    crate::sweep::maybe_sweep(ctx.kv, ctx.clock, ctx.rng);
    let cookie = cookies::set(
        &ctx.cookie_name(cookies::LOGIN),
        &id,
        transaction::LIFETIME,
        ctx.cfg.https(),
    );
    Ok(Response::redirect(&url).with_cookie(cookie))
}
