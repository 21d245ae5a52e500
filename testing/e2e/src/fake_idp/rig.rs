//! A fake IdP, Redis and the test host running the component against them, with a
//! browser: what most relying-party tests need, and the checks every refusal shares.

use std::time::Instant;

use crate::browser::{Browser, Response};
use crate::host::{Host, StateDir};
use crate::redis::Redis;

use super::{Behaviour, Endpoint, FakeIdp};

/// How to start a [`Rig`].
#[derive(Debug, Clone)]
pub struct RigOptions {
    pub behaviour: Behaviour,
    /// Keep the component's store in Redis (so tests can look inside); false: the
    /// host's local store, in memory (Spin with `--state-dir ""`: the same SQLite
    /// store without a file, so without a disk sync on every write; these tests are
    /// about the component, and 10,000 logins on the file store take minutes).
    pub redis: bool,
    /// More component variables (spin.toml names), e.g. `("idp_timeout", "2")`.
    pub variables: Vec<(String, String)>,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            behaviour: Behaviour::default(),
            redis: true,
            variables: Vec::new(),
        }
    }
}

impl RigOptions {
    pub fn variable(mut self, name: &str, value: &str) -> RigOptions {
        self.variables.push((name.to_string(), value.to_string()));
        self
    }

    pub fn behaviour(mut self, change: impl FnOnce(&mut Behaviour)) -> RigOptions {
        change(&mut self.behaviour);
        self
    }

    pub fn in_memory(mut self) -> RigOptions {
        self.redis = false;
        self
    }
}

/// The component at its own address (`client_base_url` is the host's URL) against a
/// [`FakeIdp`].
pub struct Rig {
    pub browser: Browser,
    pub host: Host,
    pub redis: Option<Redis>,
    pub idp: FakeIdp,
    /// The `sess:` and `login:` keys that may exist without the browser being logged
    /// in (see [`Rig::fresh_browser`]).
    baseline: Vec<String>,
}

impl Rig {
    /// A fake IdP that behaves, Redis, the host.
    pub fn start() -> Rig {
        Rig::start_with(RigOptions::default())
    }

    pub fn start_with(opts: RigOptions) -> Rig {
        let idp = FakeIdp::start_with(opts.behaviour);
        let redis = opts.redis.then(Redis::start);
        let port = crate::net::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut host_opts = idp.host_options(&base).port(port);
        match &redis {
            Some(redis) => host_opts = host_opts.redis(redis),
            None => host_opts = host_opts.state_dir(StateDir::Unset),
        }
        for (name, value) in &opts.variables {
            host_opts = host_opts.variable(name, value);
        }
        let host = Host::start(host_opts);
        Rig {
            browser: Browser::new(),
            host,
            redis,
            idp,
            baseline: Vec::new(),
        }
    }

    /// The app's base URL (no trailing slash).
    pub fn base(&self) -> &str {
        self.host.base_url()
    }

    pub fn url(&self, path: &str) -> String {
        self.host.url(path)
    }

    /// GET / and submits its login form: the answer to POST /login (normally a 303 to
    /// the IdP's authorization endpoint).
    pub fn begin_login(&mut self) -> Response {
        let page = self.browser.get(&self.url("/"));
        page.assert_status(200);
        let form = page.form_with_action_path("/login");
        self.browser.submit(&page, &form)
    }

    /// Starts a login, passes the fake's authorization endpoint and returns the answer
    /// of GET /callback (not followed).
    pub fn login_callback(&mut self) -> Response {
        let to_idp = self.begin_login();
        to_idp.assert_redirect(303, &self.idp.url(Endpoint::Authorization));
        let to_callback = self.browser.follow(&to_idp);
        to_callback.assert_redirect(303, &self.url("/callback"));
        self.browser.follow(&to_callback)
    }

    /// A whole successful login; returns the /user page.
    #[track_caller]
    pub fn login(&mut self) -> Response {
        let callback = self.login_callback();
        callback.assert_redirect(303, &self.url("/user"));
        let page = self.browser.follow(&callback);
        page.assert_status(200);
        page
    }

    /// The store's keys matching `pattern` (needs Redis).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        self.redis
            .as_ref()
            .expect("this rig keeps its store in memory; start it with Redis")
            .keys(pattern)
    }

    /// The `sess:` keys in the store.
    pub fn session_keys(&self) -> Vec<String> {
        self.keys("sess:*")
    }

    /// The `sess:` and `login:` keys in the store, sorted: the records a browser's
    /// cookie can name. (Bookkeeping without a cookie, `login-used:`, `ended:`,
    /// `lock:` and `gc:`, is not among them: `KEYS login:*` does not match
    /// `login-used:*`.)
    pub fn record_keys(&self) -> Vec<String> {
        let mut keys = self.session_keys();
        keys.extend(self.keys("login:*"));
        keys.sort();
        keys
    }

    /// A new browser (no cookies); the sessions and logins in the store now (of other
    /// browsers) are what [`Rig::assert_not_logged_in`] expects to find from here on.
    pub fn fresh_browser(&mut self) {
        self.browser = Browser::new();
        self.baseline = if self.redis.is_some() {
            self.record_keys()
        } else {
            Vec::new()
        };
    }

    /// The browser is not logged in: GET /user redirects to /, and (with Redis) the
    /// store holds no session and no login but those of other browsers, and the login
    /// the browser's `oidc_login` cookie still names, if any (a callback refused
    /// before it consumed the transaction leaves it for the real callback; a refusal
    /// that clears the cookie must also have removed or consumed its record).
    #[track_caller]
    pub fn assert_not_logged_in(&mut self) {
        if self.redis.is_some() {
            let mut found = self.record_keys();
            if let Some(login) = self.browser.cookie(self.base(), "oidc_login") {
                let pending = crate::records::login_key(&login);
                if !self.baseline.contains(&pending) {
                    found.retain(|k| *k != pending);
                }
            }
            let redacted = |keys: &[String]| -> Vec<String> {
                keys.iter()
                    .map(|k| crate::app_stack::redact_key(k))
                    .collect()
            };
            assert!(
                found == self.baseline,
                "the store holds no new session or login: found {:?}, expected {:?}",
                redacted(&found),
                redacted(&self.baseline)
            );
        }
        let user = self.browser.get(&self.url("/user"));
        let location = user.assert_redirect(303, &self.url("/"));
        assert_eq!(location.path(), "/", "{}", user.describe());
    }

    /// A refusal: `response` has `status` and an error message containing `fragment`,
    /// and nobody is logged in.
    #[track_caller]
    pub fn assert_refused(&mut self, response: &Response, status: u16, fragment: &str) {
        response.assert_status(status);
        let message = response
            .error_message()
            .unwrap_or_else(|| panic!("no error message: {}", response.describe()));
        eprintln!("refused with {}: {message}", response.status);
        assert!(
            message.contains(fragment),
            "the message {message:?} does not contain {fragment:?}"
        );
        self.assert_not_logged_in();
    }

    /// Runs `f`, returning its result and how long it took.
    pub fn timed<T>(f: impl FnOnce() -> T) -> (T, std::time::Duration) {
        let start = Instant::now();
        let value = f();
        (value, start.elapsed())
    }
}
