//! `GET /user`: the hot path. One store read; a write only when the visit is
//! due to extend the idle lifetime (see `session`), not on every request.
//!
//! A cookie whose session is not in this store (expired, store restarted, or
//! another replica's local store in the v2 setup) just means "not logged in".
//! The cookie is left alone: on a replica that does hold the session it is still good.

use super::context::Ctx;
use crate::pages;
use crate::request::Request;
use crate::response::{AppResult, Response};

pub(crate) fn show(req: &Request, ctx: &Ctx) -> AppResult {
    match ctx.visit_session(req)? {
        Some((ticket, session)) => {
            let key = crate::keys::session(ticket.id());
            Ok(Response::html(
                200,
                pages::user(&ctx.header(), &session, &key),
            ))
        }
        None => Ok(Response::redirect("/")),
    }
}
