//! Reading our cookies from `Cookie` headers and writing `Set-Cookie` values.
//!
//! Cookies are `HttpOnly; SameSite=Lax; Path=/`, and on https `Secure` with the
//! `__Host-` prefix, which pins them to this exact host.

/// The opaque session cookie.
pub const SESSION: &str = "oidc_session";
/// The short-lived cookie tying a browser to its login transaction.
pub const LOGIN: &str = "oidc_login";

/// The cookie's name: `__Host-` prefixed when served over https.
pub fn name(base: &str, https: bool) -> String {
    if https {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

use crate::ticket::Ticket;

/// Finds the ticket in cookie `name` across all `Cookie` headers. A name sent
/// more than once is ambiguous (a sign of cookie tossing) and yields `None`,
/// as does a value that is not a well-formed ticket.
pub fn read<'a>(headers: impl Iterator<Item = &'a str>, name: &str) -> Option<Ticket> {
    let mut found: Option<&str> = None;
    for header in headers {
        for pair in header.split(';') {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            if k.trim() != name {
                continue;
            }
            if found.is_some() {
                return None;
            }
            found = Some(v.trim());
        }
    }
    found.and_then(Ticket::parse)
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Lax; Path=/`, and `Secure` on https.
pub fn set(name: &str, value: &str, max_age: i64, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// A `Set-Cookie` value that removes the cookie.
pub fn clear(name: &str, https: bool) -> String {
    set(name, "", 0, https)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "abcdefghijklmnopqrstuQ.abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123454";

    fn value(t: Option<Ticket>) -> Option<String> {
        t.map(|t| t.cookie_value())
    }

    #[test]
    fn reads_among_other_cookies() {
        let h = format!("a=1; oidc_session={ID}; b=2");
        assert_eq!(
            value(read([h.as_str()].into_iter(), SESSION)).as_deref(),
            Some(ID)
        );
    }

    #[test]
    fn reads_across_headers() {
        let h2 = format!("oidc_session={ID}");
        assert_eq!(
            value(read(["a=1", h2.as_str()].into_iter(), SESSION)).as_deref(),
            Some(ID)
        );
    }

    #[test]
    fn duplicate_is_ambiguous() {
        let h = format!("oidc_session={ID}; oidc_session={ID}");
        assert!(read([h.as_str()].into_iter(), SESSION).is_none());
    }

    #[test]
    fn garbage_values_are_ignored() {
        for v in [
            "",
            "short",
            "../../etc",
            &"x".repeat(44),
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456",
            "abcdefghijklmnopqrstuQ.abcdefghijklmnopqrstuvwxyzABCDEFGHIJ01234:6",
        ] {
            let h = format!("oidc_session={v}");
            assert!(read([h.as_str()].into_iter(), SESSION).is_none(), "{v}");
        }
        assert!(read(["nonsense"].into_iter(), SESSION).is_none());
    }

    #[test]
    fn prefix_does_not_match_unprefixed() {
        let h = format!("oidc_session={ID}");
        assert!(read([h.as_str()].into_iter(), "__Host-oidc_session").is_none());
    }

    #[test]
    fn attributes_on_http_and_https() {
        let c = set(&name(SESSION, false), ID, 60, false);
        assert_eq!(
            c,
            format!("oidc_session={ID}; Max-Age=60; Path=/; HttpOnly; SameSite=Lax")
        );
        let c = set(&name(SESSION, true), ID, 60, true);
        assert!(c.starts_with("__Host-oidc_session="));
        assert!(c.ends_with("; Secure"));
        assert!(clear(SESSION, false).contains("Max-Age=0"));
    }
}
