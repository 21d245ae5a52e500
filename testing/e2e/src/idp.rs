//! The OpenID Provider for tests (`testing/idp`, oidc-provider 9), and drivers for its
//! login, consent and logout pages.

use std::process::Command;
use std::time::Duration;

use url::{Origin, Url};

use crate::browser::{Browser, Response};
use crate::process::{ChildGuard, Restartable, WaitFailure};

/// The client registered at the test IdP.
pub const CLIENT_ID: &str = "client1";
/// The client secret [`IdpOptions::default`] uses.
pub const DEFAULT_CLIENT_SECRET: &str = "e2e-client-secret";

/// How to start the IdP. The environment of the node process is made of these only
/// (plus the test process's environment without any `IDP_*` variable).
#[derive(Debug, Clone)]
pub struct IdpOptions {
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// `IDP_TOKEN_AUTH_METHOD`; None: the IdP's default, client_secret_basic.
    pub token_auth_method: Option<String>,
    /// `IDP_CLIENT_JWKS_URI`: client1's `jwks_uri`, with `private_key_jwt`.
    pub client_jwks_uri: Option<String>,
    /// `IDP_BACKCHANNEL_LOGOUT_URI`; enables back-channel logout for client1.
    pub backchannel_logout_uri: Option<String>,
    /// `IDP_ISSUER_PATH`; None: the IdP's default, `/realms/demo`.
    pub issuer_path: Option<String>,
    /// `IDP_ROTATE_REFRESH_TOKENS=1`: every refresh grant consumes its refresh token and
    /// issues a new one, and a consumed one presented again revokes the whole grant.
    /// false: oidc-provider's default (a confidential client keeps its refresh token).
    pub rotate_refresh_tokens: bool,
    /// `IDP_REFRESH_DELAY_MS`: a slow IdP, whose answer to every `refresh_token` grant
    /// is held back this long (after the grant was processed and logged, see
    /// [`Idp::refresh_grants`]). None: answered at once.
    pub refresh_delay: Option<Duration>,
    /// `IDP_PAR=required`: an authorization request must have been pushed (RFC 9126),
    /// and discovery says `require_pushed_authorization_requests: true`. false: PAR is
    /// offered (discovery names the endpoint) but optional, oidc-provider's default.
    pub par_required: bool,
    /// `IDP_DPOP=required`: client1's access tokens are DPoP-bound (RFC 9449) and every
    /// proof must carry a nonce the IdP gave (it asks with `use_dpop_nonce`). false:
    /// oidc-provider's default, proofs accepted but neither demanded nor challenged.
    pub dpop_required: bool,
    /// `IDP_FAPI=2.0`: oidc-provider's FAPI 2.0 profile (PKCE always, private_key_jwt
    /// `aud` = the issuer, `redirect_uri` never omitted, no access token in a query).
    pub fapi2: bool,
    /// The port; None picks a free one.
    pub port: Option<u16>,
    /// More environment, e.g. `IDP_ACCESS_TOKEN_TTL`, `IDP_REFRESH_TOKEN_TTL`,
    /// `IDP_ID_TOKEN_TTL`, `IDP_ID_TOKEN_SIGNING_ALG`.
    pub env: Vec<(String, String)>,
    pub startup_timeout: Duration,
}

impl Default for IdpOptions {
    fn default() -> Self {
        IdpOptions {
            client_secret: DEFAULT_CLIENT_SECRET.to_string(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            token_auth_method: None,
            client_jwks_uri: None,
            backchannel_logout_uri: None,
            issuer_path: None,
            rotate_refresh_tokens: false,
            refresh_delay: None,
            par_required: false,
            dpop_required: false,
            fapi2: false,
            port: None,
            env: Vec::new(),
            // Per attempt (there are two). Generous: on 2 busy cores a Node start-up
            // has been seen to take over 30 s.
            startup_timeout: Duration::from_secs(60),
        }
    }
}

impl IdpOptions {
    /// Options for a relying party at `base_url` (no trailing slash): redirect URI
    /// `<base>/callback`, post-logout redirect URI `<base>/`.
    pub fn for_client(base_url: &str) -> IdpOptions {
        IdpOptions::for_clients(&[base_url])
    }

    /// Like [`IdpOptions::for_client`], for the same client at several base URLs
    /// (several deployments of the app sharing one IdP).
    pub fn for_clients(base_urls: &[&str]) -> IdpOptions {
        let bases = base_urls.iter().map(|b| b.trim_end_matches('/'));
        IdpOptions {
            redirect_uris: bases.clone().map(|b| format!("{b}/callback")).collect(),
            post_logout_redirect_uris: bases.map(|b| format!("{b}/")).collect(),
            ..IdpOptions::default()
        }
    }
}

/// What the login driver does on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Submit the consent form (grants every requested scope, offline_access included).
    Approve,
    /// Follow the page's Cancel link: the IdP redirects back with `error=access_denied`.
    Deny,
}

/// How the login driver fills the IdP's pages.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// The login name: it becomes `sub` and `preferred_username`.
    pub login: String,
    /// Any password is accepted.
    pub password: String,
    pub consent: Consent,
}

impl LoginOptions {
    pub fn new(login: &str) -> LoginOptions {
        LoginOptions {
            login: login.to_string(),
            password: "any-password".to_string(),
            consent: Consent::Approve,
        }
    }
}

/// What happened on the way through the IdP.
#[derive(Debug, Clone, Default)]
pub struct LoginTrace {
    /// Whether the login form was shown (false: the IdP session was reused).
    pub login_form: bool,
    /// Whether the consent form was shown.
    pub consent_form: bool,
    /// The URLs requested at the IdP, in order.
    pub urls: Vec<String>,
}

/// A running test IdP.
pub struct Idp {
    opts: IdpOptions,
    port: u16,
    issuer: String,
    process: Restartable,
}

const MAX_STEPS: usize = 30;

impl Idp {
    /// Starts `node testing/idp/server.js` and waits for its ready line.
    pub fn start(opts: IdpOptions) -> Idp {
        let port = opts.port.unwrap_or_else(crate::net::free_port);
        let mut idp = Idp {
            opts,
            port,
            issuer: String::new(),
            process: Restartable::default(),
        };
        idp.spawn();
        idp
    }

    /// `node server.js` with the environment of these options.
    fn command(&self) -> Command {
        let dir = crate::paths::idp_dir();
        let node = std::env::var_os("E2E_NODE").unwrap_or_else(|| "node".into());
        let mut command = Command::new(node);
        command.arg("server.js").current_dir(&dir);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("IDP_") {
                command.env_remove(key);
            }
        }
        let o = &self.opts;
        command
            .env("IDP_PORT", self.port.to_string())
            .env("IDP_CLIENT_SECRET", &o.client_secret)
            .env("IDP_REDIRECT_URIS", o.redirect_uris.join(","))
            .env(
                "IDP_POST_LOGOUT_REDIRECT_URIS",
                o.post_logout_redirect_uris.join(","),
            )
            .env("NO_COLOR", "1");
        if let Some(method) = &o.token_auth_method {
            command.env("IDP_TOKEN_AUTH_METHOD", method);
        }
        if let Some(uri) = &o.client_jwks_uri {
            command.env("IDP_CLIENT_JWKS_URI", uri);
        }
        if let Some(uri) = &o.backchannel_logout_uri {
            command.env("IDP_BACKCHANNEL_LOGOUT_URI", uri);
        }
        if let Some(path) = &o.issuer_path {
            command.env("IDP_ISSUER_PATH", path);
        }
        if o.rotate_refresh_tokens {
            command.env("IDP_ROTATE_REFRESH_TOKENS", "1");
        }
        if let Some(delay) = o.refresh_delay {
            command.env("IDP_REFRESH_DELAY_MS", delay.as_millis().to_string());
        }
        if o.par_required {
            command.env("IDP_PAR", "required");
        }
        if o.dpop_required {
            command.env("IDP_DPOP", "required");
        }
        if o.fapi2 {
            command.env("IDP_FAPI", "2.0");
        }
        for (k, v) in &o.env {
            command.env(k, v);
        }
        command
    }

    fn spawn(&mut self) {
        self.process.assert_stopped("the IdP");
        let o = &self.opts;
        let ready = |guard: &mut ChildGuard| {
            guard.try_wait_for_line(
                o.startup_timeout,
                "`oidc-provider listening on <issuer>`",
                |line| {
                    line.strip_prefix("oidc-provider listening on ")
                        .map(|s| s.trim().to_string())
                },
            )
        };
        let mut guard = ChildGuard::spawn("idp", self.command());
        // A Node start-up has once stalled for good before its provider was built
        // (CI, stop 8): a second process gets one more chance, after the first one's
        // state is on record. A start-up that exits with an error is not retried.
        let mut result = ready(&mut guard);
        if let Err(WaitFailure::TimedOut(message)) = &result {
            eprintln!(
                "e2e: {}--- end of logs ---\ne2e: starting the IdP once more",
                guard.failure_report(message)
            );
            guard.stop();
            guard = ChildGuard::spawn("idp", self.command());
            result = ready(&mut guard);
        }
        match result {
            Ok(issuer) => self.issuer = issuer,
            Err(WaitFailure::TimedOut(message) | WaitFailure::Ended(message)) => {
                guard.fail(&message)
            }
        }
        self.process.started(guard);
    }

    /// The issuer, e.g. `http://127.0.0.1:PORT/realms/demo`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url_origin(&self) -> Origin {
        Url::parse(&self.origin()).unwrap().origin()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn client_id(&self) -> &str {
        CLIENT_ID
    }

    pub fn client_secret(&self) -> &str {
        &self.opts.client_secret
    }

    pub fn options(&self) -> &IdpOptions {
        &self.opts
    }

    /// Whether the IdP process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// The IdP's stderr log so far: server.js logs its events there, e.g.
    /// `idp: backchannel.success <client> <sub> <sid>` or `idp: backchannel.error ...`.
    pub fn log(&self) -> String {
        self.process.stderr()
    }

    /// The HTTP status of every `refresh_token` grant the token endpoint has processed
    /// so far (granted or refused), in order, from the IdP's log lines
    /// `idp: refresh_token grant #<n> -> <status>`. A line is written once the grant is
    /// processed and before its answer goes out (before any
    /// [`IdpOptions::refresh_delay`]), so a test can wait for it while the client still
    /// waits for the answer.
    pub fn refresh_grants(&self) -> Vec<u16> {
        let mut statuses = Vec::new();
        for line in self.log().lines() {
            let Some(rest) = line.strip_prefix("idp: refresh_token grant #") else {
                continue;
            };
            let (n, status) = rest.split_once(" -> ").unwrap_or_else(|| {
                panic!("a malformed refresh grant line in the IdP's log: {line:?}")
            });
            assert_eq!(
                n.parse::<usize>().ok(),
                Some(statuses.len() + 1),
                "the IdP's refresh grant lines are numbered in order: {line:?}"
            );
            let status = status.split(',').next().unwrap_or_default().trim();
            statuses.push(status.parse().unwrap_or_else(|_| {
                panic!("a refresh grant line without a status in the IdP's log: {line:?}")
            }));
        }
        statuses
    }

    /// How the client authenticated at the token and revocation endpoints, one
    /// entry per request, from the IdP's log lines `idp: client auth <route>:
    /// basic=.. client_secret=.. client_assertion=.. -> <status>` (the part after
    /// `client auth `).
    pub fn client_auth_lines(&self) -> Vec<String> {
        self.log_lines_after("idp: client auth ")
    }

    /// Every pushed authorization request, in order, from the IdP's log lines `idp:
    /// par: client_assertion=<yes|no> dpop_jkt=<yes|no> -> <status>` (the part after
    /// `par: `).
    pub fn par_lines(&self) -> Vec<String> {
        self.log_lines_after("idp: par: ")
    }

    /// Every token and userinfo request, in order, from the IdP's log lines `idp: dpop
    /// <token|userinfo>: proof=<yes|no> nonce=<yes|no> -> <status>` (the part after
    /// `dpop `): whether it carried a DPoP proof, and whether that proof had a nonce.
    pub fn dpop_lines(&self) -> Vec<String> {
        self.log_lines_after("idp: dpop ")
    }

    fn log_lines_after(&self, prefix: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
            .collect()
    }

    /// Stops the IdP (its sessions, grants and keys are gone: they live in memory).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port and issuer, with fresh keys and no sessions.
    pub fn start_again(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The discovery document, fetched now.
    pub fn discovery(&self) -> serde_json::Value {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let response = Browser::new().get(&url);
        response.assert_status(200);
        response.json()
    }

    /// A redirect from the app page at `from` to the IdP's end-session endpoint (from
    /// discovery), without `id_token_hint` or `post_logout_redirect_uri`: what a user
    /// does who signs out on the IdP's own pages.
    pub fn end_session_redirect(&self, from: &str) -> Response {
        let end_session = Url::parse(&self.endpoint("end_session_endpoint")).unwrap();
        Response {
            method: "GET".into(),
            url: Url::parse(from).unwrap(),
            status: 303,
            headers: vec![("location".into(), end_session.to_string())],
            body: String::new(),
            posted: None,
        }
    }

    /// An endpoint from the discovery document (e.g. "token_endpoint").
    pub fn endpoint(&self, name: &str) -> String {
        self.discovery()[name]
            .as_str()
            .unwrap_or_else(|| panic!("discovery has no {name}"))
            .to_string()
    }

    /// POSTs `fields` to the token endpoint with client_secret_basic, as client1.
    pub fn token_request(&self, fields: &[(&str, &str)]) -> Response {
        let url = Url::parse(&self.endpoint("token_endpoint")).unwrap();
        let auth = crate::oidc::basic_auth(CLIENT_ID, &self.opts.client_secret);
        let body = crate::browser::form_urlencode(fields).into_bytes();
        Browser::new().request(
            "POST",
            &url,
            &[("authorization", &auth), ("accept", "application/json")],
            Some(("application/x-www-form-urlencoded", body)),
        )
    }

    /// Redeems an authorization code for client1 (PKCE `verifier`).
    pub fn redeem_code(&self, code: &str, redirect_uri: &str, verifier: &str) -> Response {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
    }

    fn is_idp(&self, url: &Url) -> bool {
        url.origin() == self.url_origin()
    }

    fn idp_error(&self, page: &Response, doing: &str) -> ! {
        let details = crate::html::texts_by_class(&page.body, "container").join(" ");
        let title = crate::html::title(&page.body).unwrap_or_default();
        panic!(
            "the IdP did not show what the driver expected while {doing}: {title} {}\n{}",
            details.split_whitespace().collect::<Vec<_>>().join(" "),
            page.describe()
        );
    }

    /// Signs `login` in: `to_idp` must be a redirect to the IdP's authorization endpoint.
    /// Fills the login form and approves the consent form as needed, and returns the
    /// IdP's redirect back to the client (e.g. `.../callback?code=...&state=...&iss=...`),
    /// not yet followed.
    pub fn login(&self, browser: &mut Browser, to_idp: &Response, login: &str) -> Response {
        self.login_with(browser, to_idp, &LoginOptions::new(login))
            .0
    }

    /// [`Idp::login`] with options; also says which pages were shown.
    pub fn login_with(
        &self,
        browser: &mut Browser,
        to_idp: &Response,
        opts: &LoginOptions,
    ) -> (Response, LoginTrace) {
        let target = to_idp.location().unwrap_or_else(|| {
            panic!(
                "the login driver needs a redirect to the IdP, got {}",
                to_idp.describe()
            )
        });
        assert!(
            to_idp.is_redirect() && self.is_idp(&target),
            "the login driver needs a redirect to the IdP at {}, got {}",
            self.origin(),
            to_idp.describe()
        );
        let mut trace = LoginTrace::default();
        let mut current = browser.follow(to_idp);
        for _ in 0..MAX_STEPS {
            trace.urls.push(current.url.to_string());
            if current.is_redirect() {
                let next = current.expect_location();
                if !self.is_idp(&next) {
                    return (current, trace);
                }
                current = browser.follow(&current);
                continue;
            }
            if current.status != 200 {
                self.idp_error(&current, "signing in");
            }
            let forms = current.forms();
            if let Some(form) = forms.iter().find(|f| f.get("prompt") == Some("login")) {
                trace.login_form = true;
                let mut form = form.clone();
                form.set("login", &opts.login)
                    .set("password", &opts.password);
                current = browser.submit(&current, &form);
            } else if let Some(form) = forms.iter().find(|f| f.get("prompt") == Some("consent")) {
                trace.consent_form = true;
                match opts.consent {
                    Consent::Approve => current = browser.submit(&current, form),
                    Consent::Deny => {
                        let abort = abort_link(&current).unwrap_or_else(|| {
                            self.idp_error(&current, "looking for the consent page's Cancel link")
                        });
                        current = browser.get(abort.as_str());
                    }
                }
            } else if let Some(form) = forms.iter().find(|f| !self.is_idp(&f.action)) {
                // response_mode=form_post: the page posts the result to the client.
                let _ = form;
                return (current, trace);
            } else {
                self.idp_error(&current, "signing in");
            }
        }
        panic!(
            "the IdP login took more than {MAX_STEPS} steps: {:?}",
            trace.urls
        );
    }

    /// Confirms RP-initiated logout: `to_end_session` must be a redirect to the IdP's
    /// end-session endpoint. Answers "Yes, sign me out" on the confirmation page (or
    /// posts the auto-submitting form the IdP shows when it has no session) and returns
    /// the IdP's redirect to the post_logout_redirect_uri, not yet followed. Without a
    /// post_logout_redirect_uri the IdP ends on its own "Sign-out Success" page, which
    /// is returned then.
    pub fn logout(&self, browser: &mut Browser, to_end_session: &Response) -> Response {
        let target = to_end_session.location().unwrap_or_else(|| {
            panic!(
                "the logout driver needs a redirect to the IdP, got {}",
                to_end_session.describe()
            )
        });
        assert!(
            to_end_session.is_redirect() && self.is_idp(&target),
            "the logout driver needs a redirect to the IdP at {}, got {}",
            self.origin(),
            to_end_session.describe()
        );
        let mut current = browser.follow(to_end_session);
        let mut confirmed = false;
        let mut urls = Vec::new();
        for _ in 0..MAX_STEPS {
            urls.push(current.url.to_string());
            if current.is_redirect() {
                if !self.is_idp(&current.expect_location()) {
                    return current;
                }
                current = browser.follow(&current);
                continue;
            }
            if current.status != 200 {
                self.idp_error(&current, "signing out");
            }
            let forms = current.forms();
            if let Some(form) = forms
                .iter()
                .find(|f| f.id.as_deref() == Some("op.logoutForm"))
            {
                // The confirmation page: the form carries the xsrf field; the
                // "Yes, sign me out" button (outside the form, form="op.logoutForm")
                // adds logout=yes, which ends the whole IdP session.
                confirmed = true;
                current = browser.submit_clicking(&current, form, "logout");
            } else if let Some(form) = forms
                .iter()
                .find(|f| f.has("xsrf") && self.is_idp(&f.action))
            {
                // No IdP session: an auto-submitting form with xsrf and logout=yes.
                confirmed = true;
                current = browser.submit(&current, form);
            } else if confirmed {
                // The IdP's own success page (no post_logout_redirect_uri).
                return current;
            } else {
                self.idp_error(&current, "signing out");
            }
        }
        panic!("the IdP logout took more than {MAX_STEPS} steps: {urls:?}");
    }
}

/// The Cancel link of the IdP's interaction pages (`.../interaction/<uid>/abort`).
fn abort_link(page: &Response) -> Option<Url> {
    let href = crate::html::hrefs(&page.body)
        .into_iter()
        .find(|h| h.ends_with("/abort"))?;
    page.url.join(&href).ok()
}
