//! One module per route. Handlers are plain functions of the request and `Ctx`.

pub mod backchannel;
pub mod callback;
pub mod health;
pub mod home;
pub mod login;
pub mod logout;
pub mod refresh;
pub mod user;

use crate::config::Config;
use crate::request::{Params, Request};
use crate::response::AppError;
use crate::secret::constant_time_eq;
use crate::session::Session;
use serde_json::{Map, Value};

/// Refuses a POST a browser sent from another site: `Origin` (or, failing that,
/// `Referer`) must be this app's base origin when present.
pub fn check_origin(req: &Request, cfg: &Config) -> Result<(), AppError> {
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
pub fn check_csrf(
    req: &Request,
    cfg: &Config,
    form: &Params,
    session: &Session,
) -> Result<(), AppError> {
    check_origin(req, cfg)?;
    match form.get("csrf") {
        Some(t) if constant_time_eq(t.as_bytes(), session.csrf.expose().as_bytes()) => Ok(()),
        _ => Err(AppError::new(403, "This form has expired or was not sent from this site. Please reload the page and try again.")
            .logged("csrf: token missing or wrong")),
    }
}

/// The name to greet: preferred_username, else name, else sub; from the ID token, then userinfo.
pub fn username(
    claims: &Map<String, Value>,
    userinfo: Option<&Map<String, Value>>,
    sub: &str,
) -> String {
    for key in ["preferred_username", "name"] {
        for source in [Some(claims), userinfo].into_iter().flatten() {
            if let Some(v) = source
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.trim().is_empty())
            {
                return crate::request::truncate(v, 100);
            }
        }
    }
    sub.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn username_prefers_preferred_username_then_name_then_sub() {
        let m = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            username(
                &m(json!({"preferred_username": "al", "name": "Al"})),
                None,
                "s"
            ),
            "al"
        );
        assert_eq!(
            username(
                &m(json!({"name": "Al"})),
                Some(&m(json!({"preferred_username": "al"}))),
                "s"
            ),
            "al"
        );
        assert_eq!(username(&m(json!({"name": "Al"})), None, "s"), "Al");
        assert_eq!(username(&m(json!({})), None, "s"), "s");
    }
}
