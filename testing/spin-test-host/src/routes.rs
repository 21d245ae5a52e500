//! HTTP trigger routing and the `spin-*` request headers, with Spin's rules:
//! exact routes win over wildcards, the longest wildcard prefix wins, and
//! the headers carry the same values Spin gives the component.

use std::net::SocketAddr;

use anyhow::{Result, bail};

use crate::manifest::HttpTrigger;

#[derive(Debug)]
struct Route {
    component: String,
    /// As written in the manifest (`spin-raw-component-route`).
    raw: String,
    /// Absolute, one trailing `/` removed (`spin-matched-route`).
    based: String,
    /// For `.../...` routes, the prefix before `/...`; `None` for exact ones.
    prefix: Option<String>,
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
            let prefix = based.strip_suffix("/...").map(str::to_owned);
            let fixed = prefix.as_deref().unwrap_or(&based);
            if fixed.contains("...")
                || fixed.contains('*')
                || fixed.split('/').any(|s| s.starts_with(':'))
            {
                bail!("route {raw:?}: only exact routes and a trailing `/...` are supported");
            }
            if routes.iter().any(|r| r.based == based) {
                bail!("route {raw:?} is defined twice");
            }
            routes.push(Route {
                component: trigger.component.clone(),
                raw,
                based,
                prefix,
            });
        }
        Ok(Self { routes })
    }

    /// Finds the route for a request path (without query).
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        if let Some(route) = self
            .routes
            .iter()
            .find(|r| r.prefix.is_none() && r.based == trimmed)
        {
            return Some(RouteMatch {
                route,
                path_info: String::new(),
            });
        }
        self.routes
            .iter()
            .filter_map(|route| {
                let prefix = route.prefix.as_deref()?;
                let rest = path.strip_prefix(prefix)?;
                (rest.is_empty() || rest.starts_with('/')).then_some((route, prefix.len(), rest))
            })
            .max_by_key(|(_, len, _)| *len)
            .map(|(route, _, rest)| RouteMatch {
                route,
                path_info: rest.to_owned(),
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

    /// The headers Spin adds to the request it passes to the component.
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
            ("spin-full-url", full_url),
            ("spin-path-info", self.path_info.clone()),
            ("spin-matched-route", self.route.based.clone()),
            ("spin-base-path", "/".to_owned()),
            ("spin-raw-component-route", self.route.raw.clone()),
            ("spin-component-route", component_route.to_owned()),
            ("spin-client-addr", client.to_string()),
        ]
    }
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
        assert_eq!(info(&r, "/apix"), pair("all", "/apix"));
        assert_eq!(info(&r, "/cart"), pair("cart", ""));
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
    fn unsupported_and_duplicate_routes_are_refused() {
        for bad in ["/users/:id", "/files/*", "/a/.../b"] {
            let t = [HttpTrigger {
                route: bad.into(),
                component: "c".into(),
            }];
            assert!(Router::new(&t).is_err(), "{bad}");
        }
        let dup = [
            HttpTrigger {
                route: "/a".into(),
                component: "x".into(),
            },
            HttpTrigger {
                route: "/a/".into(),
                component: "y".into(),
            },
        ];
        assert!(Router::new(&dup).is_err());
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
}
