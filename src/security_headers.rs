//! Headers every response gets: no caching of personal pages, no framing, no
//! sniffing, and a strict CSP that still lets our forms lead to the IdP.

use crate::config::Config;
use crate::response::Response;

/// Adds the security headers to `r`; `cfg` names the IdP forms may post to.
pub(crate) fn secure(mut r: Response, cfg: Option<&Config>) -> Response {
    let idp = cfg.map(|c| c.idp_origin.as_str()).unwrap_or_default();
    if r.header("cache-control").is_none() {
        r.headers.push(("cache-control".into(), "no-store".into()));
    }
    r.headers
        .push(("x-content-type-options".into(), "nosniff".into()));
    r.headers.push(("x-frame-options".into(), "DENY".into()));
    r.headers
        .push(("referrer-policy".into(), "same-origin".into()));
    r.headers.push((
        "content-security-policy".into(),
        format!("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {idp}; frame-ancestors 'none'; base-uri 'none'")
            .trim()
            .to_owned(),
    ));
    r
}
