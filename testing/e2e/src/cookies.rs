//! The browser's cookies: `Set-Cookie` parsed by the `cookie` crate, stored and
//! matched (paths, expiry, `Secure`) by `cookie_store`.
//!
//! Differences from a browser, on purpose: one store per origin (scheme, host and
//! port) rather than per host, so the IdP's cookies and the app's never mix even
//! though both live on 127.0.0.1. Like current browsers (and `cookie_store`),
//! loopback counts as a secure context, so `Secure` cookies set over
//! http://127.0.0.1 are kept and sent.
//!
//! Kept by hand, because `cookie_store` accepts what a browser refuses and the tests
//! must see the refusal: the `__Host-` and `__Secure-` prefix rules and `Secure`
//! from an insecure origin (such a cookie is rejected and noted in
//! [`CookieJar::rejected`]).

use std::collections::BTreeMap;
use std::time::SystemTime;

use cookie_store::{CookieExpiration, CookieStore};
use url::Url;

/// One cookie as set by a `Set-Cookie` header (or as the jar holds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    /// The `Path` attribute, or the default path derived from the request URL.
    pub path: String,
    /// The `Path` attribute as the header carried it.
    pub path_attribute: Option<String>,
    pub domain: Option<String>,
    /// When it expires (from `Max-Age`, else `Expires`); None for a session cookie.
    pub expires: Option<SystemTime>,
    /// The `Max-Age` value in seconds, if any (negative values read as 0).
    pub max_age: Option<i64>,
    pub secure: bool,
    pub http_only: bool,
    /// The `SameSite` value ("Strict", "Lax" or "None"; matched case-insensitively).
    pub same_site: Option<String>,
    /// The whole header value.
    pub raw: String,
}

impl Cookie {
    /// Parses one `Set-Cookie` header value received for `url`. None when it has no
    /// `name=value` pair (browsers ignore such headers).
    pub fn parse(header: &str, url: &Url) -> Option<Cookie> {
        let parsed = cookie::Cookie::parse(header).ok()?;
        let stored = cookie_store::Cookie::try_from_raw_cookie(&parsed, url).ok();
        Some(Cookie::from_parts(
            &parsed,
            stored.as_ref(),
            header.to_string(),
        ))
    }

    /// A cookie as `cookie_store` holds it.
    fn from_stored(stored: &cookie_store::Cookie<'_>) -> Cookie {
        Cookie::from_parts(stored, Some(stored), stored.to_string())
    }

    fn from_parts(
        parsed: &cookie::Cookie<'_>,
        stored: Option<&cookie_store::Cookie<'_>>,
        raw: String,
    ) -> Cookie {
        let path = match stored {
            Some(stored) => String::from(&stored.path),
            None => parsed.path().unwrap_or("/").to_string(),
        };
        let expires = match stored.map(|s| &s.expires) {
            Some(CookieExpiration::AtUtc(at)) => Some(SystemTime::from(*at)),
            _ => parsed.expires_datetime().map(SystemTime::from),
        };
        Cookie {
            name: parsed.name().to_string(),
            value: parsed.value_trimmed().to_string(),
            path,
            path_attribute: parsed.path().map(str::to_string),
            domain: parsed.domain().map(str::to_ascii_lowercase),
            expires,
            max_age: parsed.max_age().map(|age| age.whole_seconds()),
            secure: parsed.secure().unwrap_or(false),
            http_only: parsed.http_only().unwrap_or(false),
            same_site: parsed.same_site().map(|s| s.to_string()),
            raw,
        }
    }

    /// Whether the cookie has expired (a removal when it comes in a response).
    pub fn is_expired(&self) -> bool {
        self.max_age.is_some_and(|age| age <= 0)
            || self.expires.is_some_and(|t| t <= SystemTime::now())
    }
}

/// Whether a browser treats `url` as a secure context: https, or loopback.
pub fn is_secure_context(url: &Url) -> bool {
    if url.scheme() == "https" {
        return true;
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        None => false,
    }
}

/// Why a browser refuses `cookie` from `url`, if it does (the rules `cookie_store`
/// does not apply).
fn refusal(url: &Url, cookie: &Cookie) -> Option<&'static str> {
    if cookie.secure && !is_secure_context(url) {
        Some("Secure cookie set from an insecure origin")
    } else if cookie.name.starts_with("__Secure-") && !cookie.secure {
        Some("__Secure- cookie without Secure")
    } else if cookie.name.starts_with("__Host-")
        && (!cookie.secure
            || cookie.path_attribute.as_deref() != Some("/")
            || cookie.domain.is_some())
    {
        Some("__Host- cookie without Secure, without Path=/ or with Domain")
    } else {
        None
    }
}

/// A cookie jar keyed by origin.
#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    by_origin: BTreeMap<String, CookieStore>,
    /// Set-Cookie headers that were refused, with the reason.
    pub rejected: Vec<(String, String)>,
}

fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl CookieJar {
    pub fn new() -> CookieJar {
        CookieJar::default()
    }

    /// Takes in the `Set-Cookie` headers of a response to a request for `url`.
    pub fn store(&mut self, url: &Url, set_cookie_headers: &[String]) {
        for header in set_cookie_headers {
            match Cookie::parse(header, url) {
                Some(cookie) => self.insert(url, cookie),
                None => self
                    .rejected
                    .push((header.clone(), "no name=value pair".to_string())),
            }
        }
    }

    /// Adds (or, when expired, removes) a cookie as if `url` had set it.
    pub fn insert(&mut self, url: &Url, cookie: Cookie) {
        if let Some(reason) = refusal(url, &cookie) {
            self.rejected.push((cookie.raw, reason.to_string()));
            return;
        }
        let store = self.by_origin.entry(origin_of(url)).or_default();
        match store.parse(&cookie.raw, url) {
            // An expired cookie that matched nothing: nothing to remove.
            Ok(_) | Err(cookie_store::CookieError::Expired) => {}
            Err(e) => self.rejected.push((cookie.raw, e.to_string())),
        }
    }

    /// The `Cookie` header value a browser would send with a request for `url`.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let mut matching = self.by_origin.get(&origin_of(url))?.matches(url);
        if matching.is_empty() {
            return None;
        }
        // Longer paths first, as browsers do (stable: else in the order set).
        matching.sort_by_key(|c| std::cmp::Reverse(String::from(&c.path).len()));
        Some(
            matching
                .iter()
                .map(|c| format!("{}={}", c.name(), c.value()))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// The live cookie named `name` for the origin of `url` (any path).
    pub fn get(&self, url: &Url, name: &str) -> Option<Cookie> {
        self.by_origin
            .get(&origin_of(url))?
            .iter_unexpired()
            .find(|c| c.name() == name)
            .map(Cookie::from_stored)
    }

    /// The value of the live cookie named `name` for the origin of `url`.
    pub fn value(&self, url: &Url, name: &str) -> Option<String> {
        self.get(url, name).map(|c| c.value)
    }

    /// All live cookies of the origin of `url`.
    pub fn cookies(&self, url: &Url) -> Vec<Cookie> {
        self.by_origin
            .get(&origin_of(url))
            .map(|store| store.iter_unexpired().map(Cookie::from_stored).collect())
            .unwrap_or_default()
    }

    /// Sets a cookie by hand (e.g. a tampered session cookie): the value of an
    /// existing cookie `name`, else a new one with path `/` (`HttpOnly`, and `Secure`
    /// for a prefixed name).
    pub fn set_value(&mut self, url: &Url, name: &str, value: &str) {
        let store = self.by_origin.entry(origin_of(url)).or_default();
        let existing = store.iter_unexpired().find(|c| c.name() == name);
        let mut raw: cookie::Cookie<'static> = match existing {
            Some(c) => {
                let mut raw = (**c).clone();
                raw.set_path(String::from(&c.path));
                raw
            }
            None => {
                let secure = name.starts_with("__Host-") || name.starts_with("__Secure-");
                cookie::Cookie::build((name.to_string(), String::new()))
                    .path("/")
                    .http_only(true)
                    .secure(secure)
                    .build()
            }
        };
        raw.set_value(value.to_string());
        store
            .insert_raw(&raw, url)
            .unwrap_or_else(|e| panic!("the jar refuses {raw}: {e}"));
    }

    /// Removes every cookie named `name` of the origin of `url`.
    pub fn remove(&mut self, url: &Url, name: &str) {
        let Some(store) = self.by_origin.get_mut(&origin_of(url)) else {
            return;
        };
        let found: Vec<(String, String)> = store
            .iter_any()
            .filter(|c| c.name() == name)
            .filter_map(|c| Some((c.domain.as_cow()?.into_owned(), String::from(&c.path))))
            .collect();
        for (domain, path) in found {
            store.remove(&domain, &path, name);
        }
    }

    /// Forgets every cookie of the origin of `url`.
    pub fn clear_origin(&mut self, url: &Url) {
        self.by_origin.remove(&origin_of(url));
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.by_origin.clear();
        self.rejected.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parses_attributes_and_dates() {
        let url = u("http://127.0.0.1:8000/a/b");
        let c = Cookie::parse(
            "s=\"v\"; path=/; HttpOnly; SameSite=lax; Max-Age=60; Domain=.Example.test",
            &url,
        )
        .unwrap();
        assert_eq!((c.name.as_str(), c.value.as_str()), ("s", "v"));
        assert_eq!(c.path_attribute.as_deref(), Some("/"));
        assert_eq!(c.same_site.as_deref(), Some("Lax"));
        assert_eq!((c.max_age, c.http_only, c.secure), (Some(60), true, false));
        assert_eq!(c.domain.as_deref(), Some("example.test"));
        assert!(!c.is_expired());
        let c = Cookie::parse("d=1; Expires=Sunday, 06-Nov-94 08:49:37 GMT", &url).unwrap();
        let at = c.expires.unwrap().duration_since(SystemTime::UNIX_EPOCH);
        assert_eq!(at.unwrap().as_secs(), 784_111_777);
        assert!(c.is_expired());
        assert_eq!(c.path, "/a", "the default path");
        assert!(Cookie::parse("novalue", &url).is_none());
    }

    #[test]
    fn jar_paths_deletion_prefixes() {
        let mut jar = CookieJar::new();
        let app = u("http://127.0.0.1:8000/login");
        jar.store(
            &app,
            &[
                "a=1; Path=/; HttpOnly; SameSite=Lax".into(),
                "b=2; Path=/user".into(),
                "c=3".into(),
            ],
        );
        assert_eq!(
            jar.header_for(&u("http://127.0.0.1:8000/")).as_deref(),
            Some("a=1; c=3")
        );
        assert_eq!(
            jar.header_for(&u("http://127.0.0.1:8000/user/x"))
                .as_deref(),
            Some("b=2; a=1; c=3")
        );
        assert_eq!(
            jar.header_for(&u("http://127.0.0.1:8000/users")).as_deref(),
            Some("a=1; c=3")
        );
        assert!(
            jar.header_for(&u("http://127.0.0.1:8001/")).is_none(),
            "per origin"
        );
        assert!(jar.get(&app, "a").unwrap().http_only);
        jar.store(&app, &["a=; Path=/; Max-Age=0".into()]);
        jar.store(
            &app,
            &["c=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT".into()],
        );
        assert_eq!(jar.header_for(&u("http://127.0.0.1:8000/")), None);
        jar.store(
            &app,
            &[
                "__Host-x=1; Path=/; Secure".into(),
                "__Host-y=1; Path=/".into(),
            ],
        );
        assert_eq!(jar.value(&app, "__Host-x").as_deref(), Some("1"));
        assert!(jar.get(&app, "__Host-y").is_none());
        assert_eq!(jar.rejected.len(), 1);
        let remote = u("http://example.test/");
        jar.store(&remote, &["s=1; Secure".into()]);
        assert!(jar.get(&remote, "s").is_none());
    }

    #[test]
    fn set_value_replaces_or_adds() {
        let mut jar = CookieJar::new();
        let app = u("http://127.0.0.1:8000/");
        jar.store(&app, &["a=1; Path=/; HttpOnly".into()]);
        jar.set_value(&app, "a", "2");
        jar.set_value(&app, "__Host-b", "3");
        assert_eq!(jar.header_for(&app).as_deref(), Some("a=2; __Host-b=3"));
        jar.remove(&app, "a");
        assert_eq!(jar.header_for(&app).as_deref(), Some("__Host-b=3"));
    }
}
