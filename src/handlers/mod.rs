//! One module per page. A handler is a plain function of the request and the
//! [`Ctx`]; the routing table (`app`) picks it.

pub(crate) mod backchannel;
pub(crate) mod callback;
pub(crate) mod client_jwks;
mod context;
mod csrf;
mod errors;
pub(crate) use errors::misconfigured;
pub(crate) mod health;
pub(crate) mod home;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod refresh;
pub(crate) mod user;
mod username;

pub(crate) use context::Ctx;

use crate::request::Request;
use crate::response::AppResult;

/// A page's handler.
pub(crate) type Handler = fn(&Request, &Ctx) -> AppResult;
