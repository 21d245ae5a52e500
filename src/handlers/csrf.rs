//! Cross-site request forgery defences for the forms: a same-site origin, and
//! the session's CSRF token where there is a session.

use crate::config::Config;
use crate::request::{Params, Request};
use crate::response::AppError;
use crate::secret::constant_time_eq;
use crate::session::Session;

/// Refuses a POST a browser sent from another site: `Origin` (or, failing that,
/// `Referer`) must be this app's base origin when present.
pub(crate) fn check_origin(req: &Request, cfg: &Config) -> Result<(), AppError> {
    let ours = cfg.base_origin();
    let ok = match (req.header("origin"), req.header("referer")) {
        (Some(origin), _) => origin == ours,
        (None, Some(referer)) => referer.starts_with(&format!("{ours}/")),
        (None, None) => true,
    };
    if ok {
        Ok(())
    } else {
        Err(AppError::new(403, "Cross-site request refused.").logged("csrf: foreign origin"))
    }
}

/// Requires the session's CSRF token in the form, besides a same-site origin.
pub(crate) fn check_csrf(
    req: &Request,
    cfg: &Config,
    form: &Params,
    session: &Session,
) -> Result<(), AppError> {
    check_origin(req, cfg)?;
    match form.get("csrf") {
        Some(t) if constant_time_eq(t.as_bytes(), session.csrf.expose().as_bytes()) => Ok(()),
        _ => Err(
            AppError::new(403, "This form has expired or was not sent from this site.")
                .logged("csrf: token missing or wrong"),
        ),
    }
}
