//! A per-origin cookie jar that follows RFC 6265 closely enough for these tests.
//!
//! Differences from a browser, on purpose: cookies are kept per origin (scheme, host
//! and port) rather than per host, so the IdP's cookies and the app's never mix even
//! though both live on 127.0.0.1; the `Domain` attribute is recorded but cookies stay
//! host-only. Like current browsers, loopback counts as a secure context, so `Secure`
//! cookies set over http://127.0.0.1 are kept and sent; the `__Host-` and `__Secure-`
//! prefix rules are enforced (a cookie breaking them is rejected and noted).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

/// One cookie as set by a `Set-Cookie` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    /// The `Path` attribute, or the default path derived from the request URL.
    pub path: String,
    /// Whether the header carried a `Path` attribute.
    pub path_attribute: Option<String>,
    pub domain: Option<String>,
    /// When it expires (from `Max-Age`, else `Expires`); None for a session cookie.
    pub expires: Option<SystemTime>,
    /// The raw `Max-Age` value, if any.
    pub max_age: Option<i64>,
    pub secure: bool,
    pub http_only: bool,
    /// The `SameSite` value as written (e.g. "Lax").
    pub same_site: Option<String>,
    /// The whole header value.
    pub raw: String,
}

impl Cookie {
    /// Parses one `Set-Cookie` header value received for `url`. None when it has no
    /// `name=value` pair (browsers ignore such headers).
    pub fn parse(header: &str, url: &Url) -> Option<Cookie> {
        let mut parts = header.split(';');
        let pair = parts.next()?;
        let (name, value) = pair.split_once('=')?;
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        let mut cookie = Cookie {
            name: name.to_string(),
            value: value.trim().trim_matches('"').to_string(),
            path: default_path(url),
            path_attribute: None,
            domain: None,
            expires: None,
            max_age: None,
            secure: false,
            http_only: false,
            same_site: None,
            raw: header.to_string(),
        };
        let mut expires_attr = None;
        for attribute in parts {
            let (key, val) = match attribute.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (attribute.trim(), ""),
            };
            match key.to_ascii_lowercase().as_str() {
                "path" => {
                    cookie.path_attribute = Some(val.to_string());
                    if val.starts_with('/') {
                        cookie.path = val.to_string();
                    }
                }
                "domain" => cookie.domain = Some(val.trim_start_matches('.').to_ascii_lowercase()),
                "max-age" => {
                    if let Ok(seconds) = val.parse::<i64>() {
                        cookie.max_age = Some(seconds);
                    }
                }
                "expires" => expires_attr = parse_http_date(val),
                "secure" => cookie.secure = true,
                "httponly" => cookie.http_only = true,
                "samesite" => cookie.same_site = Some(val.to_string()),
                _ => {}
            }
        }
        cookie.expires = match cookie.max_age {
            Some(seconds) if seconds <= 0 => Some(UNIX_EPOCH),
            Some(seconds) => Some(SystemTime::now() + Duration::from_secs(seconds as u64)),
            None => expires_attr,
        };
        Some(cookie)
    }

    /// Whether the cookie has expired (a removal when it comes in a response).
    pub fn is_expired(&self) -> bool {
        self.expires.is_some_and(|t| t <= SystemTime::now())
    }

    fn path_matches(&self, request_path: &str) -> bool {
        let cookie_path = self.path.as_str();
        request_path == cookie_path
            || (request_path.starts_with(cookie_path)
                && (cookie_path.ends_with('/')
                    || request_path[cookie_path.len()..].starts_with('/')))
    }
}

/// RFC 6265 5.1.4 default-path.
fn default_path(url: &Url) -> String {
    let path = url.path();
    if !path.starts_with('/') {
        return "/".to_string();
    }
    match path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => path[..i].to_string(),
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

/// A cookie jar keyed by origin.
#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    by_origin: BTreeMap<String, Vec<Cookie>>,
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
        let secure_context = is_secure_context(url);
        let refuse = if cookie.secure && !secure_context {
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
        };
        if let Some(reason) = refuse {
            self.rejected.push((cookie.raw.clone(), reason.to_string()));
            return;
        }
        let list = self.by_origin.entry(origin_of(url)).or_default();
        list.retain(|c| !(c.name == cookie.name && c.path == cookie.path));
        if !cookie.is_expired() {
            list.push(cookie);
        }
    }

    /// The `Cookie` header value a browser would send with a request for `url`.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let mut matching: Vec<&Cookie> = self
            .by_origin
            .get(&origin_of(url))?
            .iter()
            .filter(|c| !c.is_expired())
            .filter(|c| !c.secure || is_secure_context(url))
            .filter(|c| c.path_matches(url.path()))
            .collect();
        if matching.is_empty() {
            return None;
        }
        // Longer paths first, as browsers do.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        Some(
            matching
                .iter()
                .map(|c| format!("{}={}", c.name, c.value))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// The live cookie named `name` for the origin of `url` (any path).
    pub fn get(&self, url: &Url, name: &str) -> Option<&Cookie> {
        self.by_origin
            .get(&origin_of(url))?
            .iter()
            .find(|c| c.name == name && !c.is_expired())
    }

    /// The value of the live cookie named `name` for the origin of `url`.
    pub fn value(&self, url: &Url, name: &str) -> Option<String> {
        self.get(url, name).map(|c| c.value.clone())
    }

    /// All live cookies of the origin of `url`.
    pub fn cookies(&self, url: &Url) -> Vec<Cookie> {
        self.by_origin
            .get(&origin_of(url))
            .map(|list| list.iter().filter(|c| !c.is_expired()).cloned().collect())
            .unwrap_or_default()
    }

    /// Sets a cookie by hand (e.g. a tampered session cookie): path `/`, no attributes.
    pub fn set_value(&mut self, url: &Url, name: &str, value: &str) {
        let list = self.by_origin.entry(origin_of(url)).or_default();
        if let Some(existing) = list.iter_mut().find(|c| c.name == name) {
            existing.value = value.to_string();
            return;
        }
        let secure = name.starts_with("__Host-") || name.starts_with("__Secure-");
        list.push(Cookie {
            name: name.to_string(),
            value: value.to_string(),
            path: "/".to_string(),
            path_attribute: Some("/".to_string()),
            domain: None,
            expires: None,
            max_age: None,
            secure,
            http_only: true,
            same_site: None,
            raw: format!("{name}={value}; Path=/"),
        });
    }

    /// Removes every cookie named `name` of the origin of `url`.
    pub fn remove(&mut self, url: &Url, name: &str) {
        if let Some(list) = self.by_origin.get_mut(&origin_of(url)) {
            list.retain(|c| c.name != name);
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

/// Parses an HTTP date (IMF-fixdate, or the RFC 850 / cookie variants with dashes).
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let tokens: Vec<&str> = text
        .split([' ', ',', '-'])
        .filter(|t| !t.is_empty())
        .collect();
    let (mut day, mut month, mut year, mut time) = (None, None, None, None);
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    for token in tokens {
        if token.contains(':') && time.is_none() {
            let parts: Vec<u64> = token.split(':').filter_map(|p| p.parse().ok()).collect();
            if parts.len() == 3 {
                time = Some((parts[0], parts[1], parts[2]));
            }
        } else if let Some(m) = MONTHS
            .iter()
            .position(|m| token.to_ascii_lowercase().starts_with(m))
        {
            // No weekday name starts like a month name.
            if month.is_none() {
                month = Some(m as u64 + 1);
            }
        } else if let Ok(n) = token.parse::<u64>() {
            if token.len() <= 2 && day.is_none() {
                day = Some(n);
            } else if year.is_none() {
                year = Some(if n < 70 {
                    2000 + n
                } else if n < 100 {
                    1900 + n
                } else {
                    n
                });
            }
        }
    }
    let (day, month, year, (h, m, s)) = (day?, month?, year?, time?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 {
        year as i64 - 1
    } else {
        year as i64
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + (h * 3600 + m * 60 + s) as i64;
    if secs < 0 {
        return Some(UNIX_EPOCH);
    }
    Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn dates() {
        let t = parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT").unwrap();
        assert_eq!(t, UNIX_EPOCH);
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 784_111_777);
        let t = parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 784_111_777);
        let t = parse_http_date("Mon, 01 Mar 2100 00:00:00 GMT").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            4_107_542_400
        );
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
}
