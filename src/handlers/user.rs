//! `GET /user`: the hot path. One store read, no writes.

use crate::app::Ctx;
use crate::cookies;
use crate::pages;
use crate::request::Request;
use crate::response::{AppResult, Response};

pub fn show(req: &Request, ctx: &Ctx) -> AppResult {
    match ctx.current_session(req)? {
        Some((_, session)) => Ok(Response::html(200, pages::user(&ctx.header(), &session))),
        None if ctx.session_id(req).is_some() => Ok(Response::redirect("/").with_cookie(ctx.clear_cookie(cookies::SESSION))),
        None => Ok(Response::redirect("/")),
    }
}
