//! HTTP trigger routing and the `spin-*` request headers, with Spin's rules.
//!
//! Spin's router (spinframework/spin, crates/routes/src/lib.rs) turns each
//! route into a `routefinder` 0.5 route spec and asks `routefinder` for the
//! best match of the request's raw path. This module reproduces what that
//! does for the routes this host supports (exact routes, and a trailing
//! `/...` or `/*` wildcard), in its own code:
//!
//! - A route is first made absolute and loses one trailing `/`
//!   (`sanitize_with_base` with base `/`); `/...` at its end becomes `/*`.
//! - The route and the request path are both stripped of *all* leading and
//!   trailing slashes before they are compared (routefinder's route-spec
//!   parsing and its `Path`), so `//user`, `/user/` and `///user//` reach
//!   `/user`, and `//` reaches `/`.
//! - A route is a sequence of literal text, `/` and `.` between the pieces,
//!   and a final wildcard. Literal text must match exactly (`starts_with`,
//!   not whole path segments); a `/` in the route matches a run of one or
//!   more slashes in the path, or none at all where nothing would otherwise
//!   match (before the wildcard, or between two literals, where a length
//!   check keeps `/ab` from reaching `/a/b`). So `/api/...` also serves
//!   `/api`, `/api//x` and even `/apix` (with path info `/x`).
//! - The wildcard takes what is left; Spin turns it into `spin-path-info`:
//!   empty stays empty, or `/` when the path ended with a slash; otherwise a
//!   leading `/` is added, and a trailing one when the path ended with one.
//! - The best route is the most specific: routes are ranked piece by piece
//!   (literal text, then wildcard, then separators; two literals by their
//!   text), then by the number of dots, then the shorter first; the first in
//!   that order that matches wins. Exact routes therefore win over wildcards
//!   with the same prefix, and the longest wildcard prefix wins.
//! - Two routes that rank equal (the same route written twice, or `/a` and
//!   `/a/`) do not stop start-up: the later one wins (Spin logs an error).

use std::cmp::Ordering;
use std::net::SocketAddr;

use anyhow::{Result, bail};
use hyper::http;

use crate::manifest::HttpTrigger;

/// One piece of a route spec (routefinder's `Segment`, without params).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Slash,
    Dot,
    Literal(String),
    Wildcard,
}

impl Piece {
    /// Specificity for ranking: literal text, then wildcard, then separators.
    fn rank(&self) -> u8 {
        match self {
            Piece::Literal(_) => 2,
            Piece::Wildcard => 1,
            Piece::Slash | Piece::Dot => 0,
        }
    }

    fn compare(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Piece::Literal(a), Piece::Literal(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

#[derive(Debug)]
struct Route {
    component: String,
    /// As written in the manifest (`spin-raw-component-route`).
    raw: String,
    /// Absolute, one trailing `/` removed (`spin-matched-route`).
    based: String,
    pieces: Vec<Piece>,
    /// The shortest trimmed path that can match (routefinder's `min_length`).
    min_len: usize,
}

/// Splits a route spec into pieces the way routefinder 0.5 parses one
/// (`RouteSpec::from_str`): leading and trailing slashes dropped, text split
/// at every `/` and `.`, empty texts dropped (so `a//b` is `a/b`), a `/` kept
/// only before a non-empty text, a `.` appended to the literal before it
/// (or kept as a `Dot` piece when there is none).
fn parse_spec(spec: &str) -> Result<Vec<Piece>, String> {
    let text = spec.trim_start_matches('/').trim_end_matches('/');
    let mut pieces: Vec<Piece> = Vec::new();
    let mut before: Option<char> = None;
    let mut rest = text;
    loop {
        let end = rest.find(['/', '.']).unwrap_or(rest.len());
        let section = &rest[..end];
        if before == Some('.') {
            match pieces.last_mut() {
                Some(Piece::Literal(text)) => text.push('.'),
                _ => pieces.push(Piece::Dot),
            }
        }
        if !section.is_empty() {
            let piece = match section {
                "*" => Piece::Wildcard,
                s if s.starts_with('*') => {
                    return Err(format!("a wildcard has no name: replace {s:?} with \"*\""));
                }
                s if s.starts_with(':') => {
                    return Err("named wildcards (`:name`) are not supported by this host".into());
                }
                s => Piece::Literal(s.to_owned()),
            };
            if before == Some('/') {
                pieces.push(Piece::Slash);
            }
            pieces.push(piece);
        }
        if end == rest.len() {
            break;
        }
        before = rest[end..].chars().next();
        rest = &rest[end + 1..];
    }
    if let Some(i) = pieces.iter().position(|p| *p == Piece::Wildcard)
        && i + 1 != pieces.len()
    {
        return Err("a wildcard must end the route".into());
    }
    Ok(pieces)
}

/// routefinder's `min_length`: the literal lengths, one per dot, one per
/// slash after the first piece, less one for a leading slash and one for a
/// trailing slash or wildcard.
fn min_len(pieces: &[Piece]) -> usize {
    let mut len = 0usize;
    for piece in pieces {
        match piece {
            Piece::Slash if len != 0 => len += 1,
            Piece::Slash | Piece::Wildcard => {}
            Piece::Dot => len += 1,
            Piece::Literal(text) => len += text.len(),
        }
    }
    if pieces.first() == Some(&Piece::Slash) {
        len = len.saturating_sub(1);
    }
    if matches!(pieces.last(), Some(Piece::Slash | Piece::Wildcard)) {
        len = len.saturating_sub(1);
    }
    len
}

impl Route {
    /// Matches a request path; on a match, what the wildcard took (None for
    /// a route without one).
    fn matches<'p>(&self, path: &'p str) -> Option<Option<&'p str>> {
        let trimmed = path.trim_start_matches('/').trim_end_matches('/');
        if self.min_len > trimmed.len() {
            return None;
        }
        let mut rest = trimmed;
        let mut taken = None;
        for (i, piece) in self.pieces.iter().enumerate() {
            match piece {
                Piece::Literal(text) => rest = rest.strip_prefix(text.as_str())?,
                Piece::Dot => rest = rest.strip_prefix('.')?,
                Piece::Wildcard => {
                    taken = Some(rest);
                    rest = "";
                }
                Piece::Slash => {
                    let slashes = rest.len() - rest.trim_start_matches('/').len();
                    match (slashes, self.pieces.get(i + 1)) {
                        (0, None | Some(Piece::Wildcard)) => {}
                        (n, Some(_)) => rest = &rest[n..],
                        (_, None) => return None,
                    }
                }
            }
        }
        (rest.is_empty() || rest == "/").then_some(taken)
    }

    /// routefinder's order of route specs: the first route in this order
    /// that matches a path is the best match.
    fn order(&self, other: &Self) -> Ordering {
        let dots = |r: &Route| r.pieces.iter().filter(|p| **p == Piece::Dot).count();
        self.pieces
            .iter()
            .zip(&other.pieces)
            .map(|(a, b)| a.compare(b))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| {
                dots(self)
                    .cmp(&dots(other))
                    .then_with(|| other.pieces.len().cmp(&self.pieces.len()))
            })
            .reverse()
    }
}

/// A request path matched to a route.
#[derive(Debug)]
pub struct RouteMatch<'a> {
    route: &'a Route,
    /// The part of the path under a wildcard route (`spin-path-info`).
    path_info: String,
}

#[derive(Debug)]
pub struct Router {
    /// In routefinder's order (most specific first).
    routes: Vec<Route>,
}

impl Router {
    pub fn new(triggers: &[HttpTrigger]) -> Result<Self> {
        let mut routes: Vec<Route> = Vec::new();
        for trigger in triggers {
            let raw = trigger.route.clone();
            let absolute = if raw.starts_with('/') {
                raw.clone()
            } else {
                format!("/{raw}")
            };
            let based = absolute.strip_suffix('/').unwrap_or(&absolute).to_owned();
            let spec = match based.strip_suffix("/...") {
                Some(prefix) => format!("{prefix}/*"),
                None => based.clone(),
            };
            if spec.contains("...") {
                bail!("route {raw:?}: `...` may only end a route, as `/...`");
            }
            let pieces = parse_spec(&spec).map_err(|e| anyhow::anyhow!("route {raw:?}: {e}"))?;
            let route = Route {
                component: trigger.component.clone(),
                raw,
                based,
                min_len: min_len(&pieces),
                pieces,
            };
            match routes.iter().position(|r| r.order(&route).is_eq()) {
                Some(i) => {
                    eprintln!(
                        "warning: route {:?} of component {:?} duplicates route {:?} of {:?}, which will never be used",
                        route.raw, route.component, routes[i].raw, routes[i].component
                    );
                    routes[i] = route;
                }
                None => routes.push(route),
            }
        }
        routes.sort_by(Route::order);
        Ok(Self { routes })
    }

    /// Finds the route for a request path (without query), as Spin does.
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        self.routes.iter().find_map(|route| {
            let taken = route.matches(path)?;
            let trailing_slash = path.ends_with('/');
            // crates/routes/src/lib.rs, `trailing_wildcard`.
            let path_info = match taken {
                None => String::new(),
                Some("") if trailing_slash => "/".to_owned(),
                Some("") => String::new(),
                Some(s) if trailing_slash => format!("/{s}/"),
                Some(s) => format!("/{s}"),
            };
            Some(RouteMatch { route, path_info })
        })
    }

    /// The distinct components the triggers use.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        let mut ids: Vec<&str> = self.routes.iter().map(|r| r.component.as_str()).collect();
        ids.sort();
        ids.dedup();
        ids.into_iter()
    }
}

impl RouteMatch<'_> {
    pub fn component(&self) -> &str {
        &self.route.component
    }

    /// The headers Spin adds to the request it passes to the component
    /// (crates/trigger-http/src/headers.rs, `compute_default_headers`).
    /// `full_url` is `scheme://host/path?query` as the client asked for it.
    pub fn spin_headers(
        &self,
        full_url: String,
        client: SocketAddr,
    ) -> [(&'static str, String); 7] {
        let component_route = self
            .route
            .raw
            .strip_suffix("/...")
            .unwrap_or(&self.route.raw);
        [
            ("spin-path-info", self.path_info.clone()),
            ("spin-full-url", full_url),
            ("spin-matched-route", self.route.based.clone()),
            ("spin-base-path", "/".to_owned()),
            ("spin-raw-component-route", self.route.raw.clone()),
            ("spin-component-route", component_route.to_owned()),
            ("spin-client-addr", client.to_string()),
        ]
    }
}

/// Why Spin serves a routed request without running the component.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Spin's handler returns an error to hyper, which closes the connection
    /// without a response (the client sees an empty reply).
    NoResponse(&'static str),
    /// Spin answers 500 with an empty body (and logs the reason).
    InternalError(String),
}

/// Spin's `strip_forbidden_headers` (crates/trigger-http/src/headers.rs):
/// a `Host` naming a service-chaining host (`<component>.spin.internal`,
/// with any port: crates/factor-outbound-networking, `is_service_chaining_host`)
/// is dropped before routing.
pub fn strip_forbidden_headers(headers: &mut http::HeaderMap) {
    let chaining = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
            host.split_once('.')
                .is_some_and(|(_, rest)| rest == "spin.internal")
        });
    if chaining {
        headers.remove(http::header::HOST);
    }
}

/// What Spin does to a routed request before the component sees it, and in
/// that order:
///
/// 1. The request's authority (crates/trigger-http/src/server.rs,
///    `set_req_uri`): from `Host`, which must be visible ASCII and parse as an
///    authority, or from an absolute-form request target; both present must
///    agree; neither is an error. Any of these errors: no response at all.
/// 2. Every request header value must be UTF-8 (crates/trigger-http/src/
///    headers.rs, `prepare_request_headers`); one that is not: 500, empty
///    body, and the component does not run.
/// 3. `spin-full-url` is `http://` + the `Host` value (`localhost` when the
///    request had none) + the path and query as sent.
/// 4. The headers are rebuilt as they were, then Spin's are *appended*
///    (crates/trigger-http/src/wasi.rs, `prepare_request`, extends the map),
///    so a client's own `spin-path-info` header stays, before Spin's.
///
/// Returns the absolute URI the guest sees.
pub fn prepare_request(
    route: &RouteMatch<'_>,
    headers: &mut http::HeaderMap,
    uri: &http::Uri,
    client: SocketAddr,
) -> Result<http::Uri, Refusal> {
    use http::uri::Authority;
    let from_host =
        match headers.get(http::header::HOST) {
            None => None,
            Some(value) => {
                let text = value
                    .to_str()
                    .map_err(|_| Refusal::NoResponse("'Host' header is not valid UTF-8"))?;
                Some(text.parse::<Authority>().map_err(|_| {
                    Refusal::NoResponse("'Host' header contains an invalid authority")
                })?)
            }
        };
    let authority = match (from_host, uri.authority().cloned()) {
        (None, None) => return Err(Refusal::NoResponse("no 'Host' header present in request")),
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a), Some(b)) if a == b => a,
        (Some(_), Some(_)) => {
            return Err(Refusal::NoResponse(
                "authority in 'Host' header does not match authority in URI",
            ));
        }
    };
    for (name, value) in headers.iter() {
        if std::str::from_utf8(value.as_bytes()).is_err() {
            return Err(Refusal::InternalError(format!(
                "request header {name:?} is not valid UTF-8"
            )));
        }
    }
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let host = headers.get(http::header::HOST).map_or("localhost", |h| {
        std::str::from_utf8(h.as_bytes()).unwrap_or_default()
    });
    let full_url = format!("http://{host}{path_and_query}");
    for (name, value) in route.spin_headers(full_url, client) {
        // Made of the path (already a valid header value), the route, the
        // Host value and an address: always a valid header value.
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.append(http::HeaderName::from_static(name), value);
        }
    }
    let mut parts = uri.clone().into_parts();
    parts.scheme = Some(http::uri::Scheme::HTTP);
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    http::Uri::from_parts(parts).map_err(|e| Refusal::InternalError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let triggers: Vec<HttpTrigger> = routes
            .iter()
            .map(|(route, component)| HttpTrigger {
                route: route.to_string(),
                component: component.to_string(),
            })
            .collect();
        Router::new(&triggers).unwrap()
    }

    fn info(r: &Router, path: &str) -> Option<(String, String)> {
        r.route(path)
            .map(|m| (m.component().to_owned(), m.path_info.clone()))
    }

    fn pair(component: &str, path_info: &str) -> Option<(String, String)> {
        Some((component.into(), path_info.into()))
    }

    #[test]
    fn catch_all_route() {
        let r = router(&[("/...", "all")]);
        assert_eq!(info(&r, "/"), pair("all", "/"));
        assert_eq!(info(&r, "/login"), pair("all", "/login"));
        assert_eq!(info(&r, "/a/b/"), pair("all", "/a/b/"));
    }

    /// Spin's router trims every leading and trailing slash of the path
    /// before matching (routefinder's `Path`), and the path info is built
    /// from what is left: `//user` is `/user` to the component.
    #[test]
    fn repeated_leading_and_trailing_slashes_are_trimmed() {
        let r = router(&[("/...", "all")]);
        assert_eq!(info(&r, "//user"), pair("all", "/user"));
        assert_eq!(info(&r, "///user"), pair("all", "/user"));
        assert_eq!(info(&r, "/user//"), pair("all", "/user/"));
        assert_eq!(info(&r, "//"), pair("all", "/"));
        assert_eq!(
            info(&r, "//evil.example/user"),
            pair("all", "/evil.example/user")
        );
        // Inside the path, repeated slashes stay.
        assert_eq!(info(&r, "/a//b"), pair("all", "/a//b"));

        let r = router(&[("/user", "user"), ("/", "root")]);
        assert_eq!(info(&r, "//user"), pair("user", ""));
        assert_eq!(info(&r, "/user//"), pair("user", ""));
        assert_eq!(info(&r, "//"), pair("root", ""));
        assert_eq!(info(&r, "/user/x"), None);
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = router(&[
            ("/...", "all"),
            ("/api/...", "api"),
            ("/api/health", "health"),
            ("/cart/", "cart"),
        ]);
        assert_eq!(info(&r, "/api/health"), pair("health", ""));
        assert_eq!(info(&r, "/api/health/"), pair("health", ""));
        assert_eq!(info(&r, "/api"), pair("api", ""));
        assert_eq!(info(&r, "/api/"), pair("api", "/"));
        assert_eq!(info(&r, "/api/x/y"), pair("api", "/x/y"));
        assert_eq!(info(&r, "/api//x"), pair("api", "/x"));
        assert_eq!(info(&r, "/cart"), pair("cart", ""));
        assert_eq!(info(&r, "/other"), pair("all", "/other"));
        // routefinder compares literal text with `starts_with`, and lets the
        // slash before a wildcard be absent: `/apix` reaches `/api/...`.
        assert_eq!(info(&r, "/apix"), pair("api", "/x"));
    }

    #[test]
    fn separators_between_literals_need_a_slash() {
        let r = router(&[("/a/b", "ab")]);
        assert_eq!(info(&r, "/a/b"), pair("ab", ""));
        assert_eq!(info(&r, "/a//b"), pair("ab", ""));
        assert_eq!(info(&r, "/ab"), None);
        assert_eq!(info(&r, "/a/bc"), None);
    }

    #[test]
    fn exact_routes_only_match_themselves() {
        let r = router(&[("/cart", "cart"), ("/", "root")]);
        assert_eq!(info(&r, "/cart"), pair("cart", ""));
        assert_eq!(info(&r, "/"), pair("root", ""));
        assert_eq!(info(&r, "/cart/checkout"), None);
        assert_eq!(info(&r, "/other"), None);
    }

    #[test]
    fn a_trailing_star_is_a_wildcard_too() {
        let r = router(&[("/files/*", "files")]);
        let m = r.route("/files/a/b").unwrap();
        assert_eq!(m.path_info, "/a/b");
        let headers = m.spin_headers("http://h/files/a/b".into(), "127.0.0.1:1".parse().unwrap());
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        assert_eq!(get("spin-matched-route"), "/files/*");
        assert_eq!(get("spin-component-route"), "/files/*");
    }

    #[test]
    fn unsupported_routes_are_refused_and_duplicates_last_one_wins() {
        for bad in ["/users/:id", "/files/*x", "/a/.../b", "/a/*/b"] {
            let t = [HttpTrigger {
                route: bad.into(),
                component: "c".into(),
            }];
            assert!(Router::new(&t).is_err(), "{bad}");
        }
        let r = router(&[("/a", "x"), ("/a/", "y"), ("/b", "z")]);
        assert_eq!(info(&r, "/a"), pair("y", ""));
        assert_eq!(info(&r, "/b"), pair("z", ""));
        assert_eq!(r.components().collect::<Vec<_>>(), ["y", "z"]);
    }

    #[test]
    fn spin_header_values() {
        let client: SocketAddr = "127.0.0.1:8777".parse().unwrap();
        let r = router(&[("/foo/...", "c")]);
        let m = r.route("/foo/bar").unwrap();
        let headers = m.spin_headers("https://fermyon.dev/foo/bar?k=v".into(), client);
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        assert_eq!(get("spin-full-url"), "https://fermyon.dev/foo/bar?k=v");
        assert_eq!(get("spin-path-info"), "/bar");
        assert_eq!(get("spin-matched-route"), "/foo/...");
        assert_eq!(get("spin-base-path"), "/");
        assert_eq!(get("spin-raw-component-route"), "/foo/...");
        assert_eq!(get("spin-component-route"), "/foo");
        assert_eq!(get("spin-client-addr"), "127.0.0.1:8777");

        let r = router(&[("/...", "c")]);
        let headers = r
            .route("/callback")
            .unwrap()
            .spin_headers("http://h/callback".into(), client);
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        assert_eq!(get("spin-path-info"), "/callback");
        assert_eq!(get("spin-matched-route"), "/...");
        assert_eq!(get("spin-component-route"), "");
    }

    fn prepared(
        headers: &[(&str, &[u8])],
        target: &str,
    ) -> (Result<http::Uri, Refusal>, http::HeaderMap) {
        let r = router(&[("/...", "c")]);
        let uri: http::Uri = target.parse().unwrap();
        let route = r.route(uri.path()).unwrap();
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let client: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let result = prepare_request(&route, &mut map, &uri, client);
        (result, map)
    }

    fn values(map: &http::HeaderMap, name: &str) -> Vec<String> {
        map.get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn the_request_uri_and_full_url_come_from_the_host_header() {
        let (uri, map) = prepared(&[("host", b"app.test:8080")], "/cb?code=1&state=2");
        let uri = uri.unwrap();
        assert_eq!(uri.to_string(), "http://app.test:8080/cb?code=1&state=2");
        assert_eq!(
            values(&map, "spin-full-url"),
            ["http://app.test:8080/cb?code=1&state=2"]
        );
        assert_eq!(values(&map, "spin-path-info"), ["/cb"]);
        assert_eq!(values(&map, "host"), ["app.test:8080"]);

        // An absolute-form target without Host: its authority, and `localhost`
        // in the full URL (Spin's default for a missing Host).
        let (uri, map) = prepared(&[], "http://other.test/x");
        assert_eq!(uri.unwrap().to_string(), "http://other.test/x");
        assert_eq!(values(&map, "spin-full-url"), ["http://localhost/x"]);
        // Both: they must agree.
        let (uri, _) = prepared(&[("host", b"OTHER.test")], "http://other.test/x");
        assert!(uri.is_ok());
        let (uri, _) = prepared(&[("host", b"a.test")], "http://other.test/x");
        assert!(matches!(uri, Err(Refusal::NoResponse(_))), "{uri:?}");
    }

    #[test]
    fn a_missing_or_invalid_host_gets_no_response() {
        for host in [
            &b"bad host"[..],
            b"evil/x",
            b"",
            "h\u{e9}.test".as_bytes(),
            b"\xff",
        ] {
            let (uri, _) = prepared(&[("host", host)], "/x");
            assert!(
                matches!(uri, Err(Refusal::NoResponse(_))),
                "{host:?}: {uri:?}"
            );
        }
        let (uri, _) = prepared(&[], "/x");
        assert_eq!(
            uri,
            Err(Refusal::NoResponse("no 'Host' header present in request"))
        );
        // Userinfo is part of an authority: Spin accepts it.
        let (uri, map) = prepared(&[("host", b"u@h.test")], "/x");
        assert_eq!(uri.unwrap().to_string(), "http://u@h.test/x");
        assert_eq!(values(&map, "spin-full-url"), ["http://u@h.test/x"]);
    }

    #[test]
    fn a_header_that_is_not_utf8_is_a_500_before_the_component_runs() {
        let (uri, _) = prepared(&[("host", b"h"), ("x-name", b"caf\xe9")], "/x");
        assert!(
            matches!(&uri, Err(Refusal::InternalError(m)) if m.contains("x-name")),
            "{uri:?}"
        );
        // UTF-8 beyond ASCII is fine.
        let (uri, map) = prepared(&[("host", b"h"), ("x-name", "caf\u{e9}".as_bytes())], "/x");
        assert!(uri.is_ok());
        assert_eq!(values(&map, "x-name"), ["caf\u{e9}"]);
    }

    #[test]
    fn spin_headers_are_appended_after_the_clients_own() {
        let (uri, map) = prepared(
            &[
                ("host", b"h"),
                ("spin-path-info", b"/spoofed"),
                ("accept", b"*/*"),
            ],
            "/real",
        );
        assert!(uri.is_ok());
        assert_eq!(values(&map, "spin-path-info"), ["/spoofed", "/real"]);
        assert_eq!(values(&map, "accept"), ["*/*"]);
    }

    #[test]
    fn service_chaining_hosts_are_stripped() {
        for (host, stripped) in [
            ("client.spin.internal", true),
            ("client.spin.internal:3000", true),
            ("a.b.spin.internal", false),
            ("spin.internal", false),
            ("app.test", false),
        ] {
            let mut map = http::HeaderMap::new();
            map.insert(
                http::header::HOST,
                http::HeaderValue::from_str(host).unwrap(),
            );
            strip_forbidden_headers(&mut map);
            assert_eq!(map.get(http::header::HOST).is_none(), stripped, "{host}");
        }
    }
}
