//! The app: a routing table over pure handlers, plus what every response gets
//! (security headers, error pages, log lines). Runs natively in tests.

use crate::config::{Config, ConfigError, Variables};
use crate::cookies;
use crate::handlers;
use crate::pages::{self, Header};
use crate::request::Request;
use crate::response::{AppError, AppResult, Response};
use crate::seams::{Clock, HttpClient, Random};
use crate::session::{Lifetimes, Session, Sessions};
use crate::store::{KeyValue, StoreError};
use crate::ticket::Ticket;

/// The platform the app runs on: Spin in production, fakes in tests.
pub struct Platform<'a> {
    pub vars: &'a dyn Variables,
    pub kv: &'a dyn KeyValue,
    pub http: &'a dyn HttpClient,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Random,
}

/// Everything a handler needs: the checked configuration and the platform.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub kv: &'a dyn KeyValue,
    pub http: &'a dyn HttpClient,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Random,
}

impl Ctx<'_> {
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions {
            kv: self.kv,
            clock: self.clock,
            rng: self.rng,
            lifetimes: Lifetimes {
                idle: self.cfg.session_idle_secs,
                absolute: self.cfg.session_absolute_secs,
            },
            lock_hold: self.lock_hold(),
        }
    }

    /// Seconds a refresh may hold its session's lock: the token call and a
    /// key fetch, each bounded by `idp_timeout`, and a margin for clock skew.
    pub fn lock_hold(&self) -> i64 {
        2 * self.cfg.idp_timeout_secs as i64 + 5
    }

    pub fn upkeep(&self) -> crate::upkeep::Upkeep<'_> {
        crate::upkeep::Upkeep {
            kv: self.kv,
            clock: self.clock,
        }
    }

    pub fn cookie_name(&self, base: &str) -> String {
        cookies::name(base, self.cfg.https())
    }

    pub fn clear_cookie(&self, base: &str) -> String {
        cookies::clear(&self.cookie_name(base), self.cfg.https())
    }

    /// The session ticket from the cookie, if it is well-formed (no store access).
    pub fn session_ticket(&self, req: &Request) -> Option<Ticket> {
        cookies::read(
            req.headers_named("cookie"),
            &self.cookie_name(cookies::SESSION),
        )
    }

    /// The caller's live session: at most one store read.
    pub fn current_session(&self, req: &Request) -> Result<Option<(Ticket, Session)>, StoreError> {
        let Some(ticket) = self.session_ticket(req) else {
            return Ok(None);
        };
        Ok(self.sessions().load(&ticket)?.map(|s| (ticket, s)))
    }

    /// The caller's live session for a page view: [`Ctx::current_session`],
    /// then the visit is recorded when due ([`Sessions::touch`]). A failure to
    /// record it is logged, not shown: the page can still be served.
    pub fn visit_session(&self, req: &Request) -> Result<Option<(Ticket, Session)>, StoreError> {
        let Some((id, mut session)) = self.current_session(req)? else {
            return Ok(None);
        };
        if let Err(e) = self.sessions().touch(&id, &mut session) {
            eprintln!("session: cannot record activity: {e}");
        }
        Ok(Some((id, session)))
    }

    pub fn header(&self) -> Header<'_> {
        Header {
            title: &self.cfg.client_title,
            pod: &self.cfg.pod_name,
            now: self.clock.now(),
        }
    }

    pub fn discovery(
        &self,
    ) -> Result<crate::oidc::discovery::ProviderMetadata, crate::oidc::OidcError> {
        crate::oidc::discovery::load(self.kv, self.http, self.clock, self.cfg)
    }

    pub fn keys(&self) -> crate::oidc::jwks::KeySet<'_> {
        crate::oidc::jwks::KeySet {
            kv: self.kv,
            http: self.http,
            clock: self.clock,
            ttl: self.cfg.discovery_ttl_secs,
            backchannel: false,
        }
    }

    /// The keys for back-channel logout, with its own refetch budget.
    pub fn backchannel_keys(&self) -> crate::oidc::jwks::KeySet<'_> {
        crate::oidc::jwks::KeySet {
            backchannel: true,
            ..self.keys()
        }
    }
}

type Handler = fn(&Request, &Ctx) -> AppResult;

/// The routing table: path, then the handler for each method it accepts.
const ROUTES: &[(&str, &[(&str, Handler)])] = &[
    ("/", &[("GET", handlers::home::show)]),
    ("/login", &[("POST", handlers::login::start)]),
    ("/callback", &[("GET", handlers::callback::finish)]),
    ("/user", &[("GET", handlers::user::show)]),
    ("/refresh", &[("POST", handlers::refresh::refresh)]),
    ("/logout", &[("POST", handlers::logout::logout)]),
    (
        "/backchannel-logout",
        &[("POST", handlers::backchannel::receive)],
    ),
];

/// Handles one request. Never panics on input; every failure becomes a page.
pub fn handle(req: &Request, p: &Platform) -> Response {
    let cfg = Config::load(p.vars);
    let cfg = cfg.as_ref();
    let head = req.method == "HEAD";
    let method = if head { "GET" } else { req.method.as_str() };
    let mut response = match req.path.as_str() {
        "/healthz" if method == "GET" => Response::text(200, "ok\n"),
        "/readyz" if method == "GET" => handlers::health::ready(p, cfg),
        "/style.css" if method == "GET" => Response {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/css; charset=utf-8".into()),
                ("cache-control".into(), "public, max-age=3600".into()),
            ],
            body: pages::STYLE.as_bytes().to_vec(),
        },
        "/healthz" | "/readyz" | "/style.css" => method_not_allowed(p, cfg.ok(), "GET, HEAD"),
        path => match ROUTES.iter().find(|(route, _)| *route == path) {
            None => error_page(
                p,
                cfg.ok(),
                AppError::new(404, "There is no page at this address."),
            ),
            Some((_, methods)) => match methods.iter().find(|(m, _)| *m == method) {
                None => {
                    let allow: Vec<&str> = methods.iter().map(|(m, _)| *m).collect();
                    let allow = if allow.contains(&"GET") {
                        format!("{}, HEAD", allow.join(", "))
                    } else {
                        allow.join(", ")
                    };
                    method_not_allowed(p, cfg.ok(), &allow)
                }
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
pub fn reject(p: &Platform, e: AppError) -> Response {
    let cfg = Config::load(p.vars);
    secure(error_page(p, cfg.as_ref().ok(), e), cfg.as_ref().ok())
}

fn run(
    req: &Request,
    p: &Platform,
    cfg: Result<&Config, &ConfigError>,
    handler: Handler,
) -> Response {
    let cfg = match cfg {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("config: {e}");
            return error_page(
                p,
                None,
                AppError::new(503, format!("This app is not configured correctly: {e}.")),
            );
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
        Err(e) => error_page(p, Some(cfg), e),
    }
}

fn method_not_allowed(p: &Platform, cfg: Option<&Config>, allow: &str) -> Response {
    error_page(
        p,
        cfg,
        AppError::new(405, "This address does not accept that method."),
    )
    .with_header("allow", allow)
}

/// Renders an error page; logs the detail, never the page's inputs.
pub fn error_page(p: &Platform, cfg: Option<&Config>, e: AppError) -> Response {
    if let Some(detail) = &e.log {
        eprintln!("error {}: {detail}", e.status);
    }
    let header = match cfg {
        Some(cfg) => Header {
            title: &cfg.client_title,
            pod: &cfg.pod_name,
            now: p.clock.now(),
        },
        None => Header {
            title: "Confidential Client",
            pod: "unconfigured",
            now: p.clock.now(),
        },
    };
    let mut response = Response::html(e.status, pages::error(&header, e.status, &e.message));
    for cookie in e.cookies {
        response = response.with_cookie(cookie);
    }
    response
}

/// Headers every response gets: no caching of personal pages, no framing,
/// no sniffing, a strict CSP that still lets our forms lead to the IdP.
fn secure(mut r: Response, cfg: Option<&Config>) -> Response {
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
