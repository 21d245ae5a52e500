//! `GET /`: the login page.

use super::context::Ctx;
use crate::pages;
use crate::request::Request;
use crate::response::{AppResult, Response};

pub(crate) fn show(req: &Request, ctx: &Ctx) -> AppResult {
    let session = ctx.visit_session(req)?;
    let user = session.as_ref().map(|(_, s)| s.identity.username.as_str());
    let cfg = ctx.cfg;
    Ok(Response::html(
        200,
        pages::home(
            &ctx.header(),
            &cfg.client_id,
            &cfg.issuer,
            &cfg.default_scope,
            user,
        ),
    ))
}
