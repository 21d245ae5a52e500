//! The routing table: which handler answers which method at which path. Every
//! response leaves through [`security_headers`](crate::security_headers), every
//! failure as an [`error_page`](crate::error_page). Runs natively in tests.

use crate::config::{Config, ConfigError};
use crate::error_page::error_page;
use crate::handlers::{self, Ctx, Handler};
use crate::log::log_line;
use crate::pages;
use crate::ports::{Clock, HttpClient, KeyValue, Random, Variables};
use crate::request::Request;
use crate::response::{AppError, Response};
use crate::security_headers::secure;

/// The platform the app runs on: Spin in production, fakes in tests.
pub struct Platform<'a> {
    /// Where the settings come from.
    pub vars: &'a dyn Variables,
    /// Sessions, logins and cached IdP documents.
    pub kv: &'a dyn KeyValue,
    /// Calls to the IdP.
    pub http: &'a dyn HttpClient,
    /// The time, and waiting.
    pub clock: &'a dyn Clock,
    /// Randomness for tickets, state, nonces and verifiers.
    pub rng: &'a dyn Random,
}

/// The pages: path, then the handler for each method it accepts. `HEAD` is
/// accepted wherever `GET` is.
const ROUTES: &[(&str, &[(&str, Handler)])] = &[
    ("/", &[("GET", handlers::home::show)]),
    ("/login", &[("POST", handlers::login::start)]),
    ("/callback", &[("GET", handlers::callback::finish)]),
    ("/user", &[("GET", handlers::user::show)]),
    ("/refresh", &[("POST", handlers::refresh::refresh)]),
    ("/logout", &[("POST", handlers::logout::logout)]),
    ("/jwks.json", &[("GET", handlers::client_jwks::show)]),
    (
        "/backchannel-logout",
        &[("POST", handlers::backchannel::receive)],
    ),
];

/// Handles one request, reading the settings from `p.vars`.
pub fn handle(req: &Request, p: &Platform) -> Response {
    handle_configured(req, Config::load(p.vars).as_ref(), p)
}

/// Handles one request with settings already loaded (and checked): the Spin
/// adapter loads them once for the app and for its HTTP client's timeout.
/// Never panics on input; every failure becomes a page.
pub fn handle_configured(
    req: &Request,
    cfg: Result<&Config, &ConfigError>,
    p: &Platform,
) -> Response {
    let head = req.method == "HEAD";
    let method = if head { "GET" } else { req.method.as_str() };
    let mut response = match req.path.as_str() {
        // Probes and the stylesheet need no configuration and no session.
        "/healthz" if method == "GET" => Response::text(200, "ok\n"),
        "/readyz" if method == "GET" => handlers::health::ready(p.kv, cfg),
        "/style.css" if method == "GET" => stylesheet(),
        "/healthz" | "/readyz" | "/style.css" => method_not_allowed(p, cfg.ok(), "GET, HEAD"),
        path => match ROUTES.iter().find(|(route, _)| *route == path) {
            None => error_page(
                p.clock,
                cfg.ok(),
                AppError::new(404, "There is no page at this address."),
            ),
            Some((_, methods)) => match methods.iter().find(|(m, _)| *m == method) {
                None => method_not_allowed(p, cfg.ok(), &allowed(methods)),
                Some((_, handler)) => run(req, p, cfg, *handler),
            },
        },
    };
    if head {
        response.body.clear();
    }
    secure(response, cfg.ok())
}

/// Answers a request that failed the size limits before routing.
pub fn reject(p: &Platform, cfg: Result<&Config, &ConfigError>, e: AppError) -> Response {
    secure(error_page(p.clock, cfg.ok(), e), cfg.ok())
}

fn stylesheet() -> Response {
    Response {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/css; charset=utf-8".into()),
            ("cache-control".into(), "public, max-age=3600".into()),
        ],
        body: pages::STYLE.as_bytes().to_vec(),
    }
}

/// The `Allow` header for a path's methods.
fn allowed(methods: &[(&str, Handler)]) -> String {
    let allow: Vec<&str> = methods.iter().map(|(m, _)| *m).collect();
    if allow.contains(&"GET") {
        format!("{}, HEAD", allow.join(", "))
    } else {
        allow.join(", ")
    }
}

/// Runs a page's handler; without a valid configuration, a 503 page instead.
fn run(
    req: &Request,
    p: &Platform,
    cfg: Result<&Config, &ConfigError>,
    handler: Handler,
) -> Response {
    let cfg = match cfg {
        Ok(cfg) => cfg,
        Err(e) => {
            log_line!("config: {e}");
            return error_page(p.clock, None, handlers::misconfigured(e));
        }
    };
    let ctx = Ctx {
        cfg,
        kv: p.kv,
        http: p.http,
        clock: p.clock,
        rng: p.rng,
    };
    match handler(req, &ctx) {
        Ok(response) => response,
        Err(e) => error_page(p.clock, Some(cfg), e),
    }
}

fn method_not_allowed(p: &Platform, cfg: Option<&Config>, allow: &str) -> Response {
    error_page(
        p.clock,
        cfg,
        AppError::new(405, "This address does not accept that method."),
    )
    .with_header("allow", allow)
}
