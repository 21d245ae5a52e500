//! The fake IdP ([`crate::fake_idp`]), Redis and the test host running the component
//! against them, with a browser: what most relying-party tests need, and the checks every refusal shares.

use std::time::Instant;

use crate::app_stack::{Snapshot, redact_key, snapshot};
use crate::browser::{Browser, Response};
use crate::host::{Host, StateDir};
use crate::redis::Redis;

use crate::fake_idp::{Behaviour, Endpoint, FakeIdp};

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
    /// The whole store (every key, with its value) as it was when the browser was new
    /// (see [`Rig::fresh_browser`]): what [`Rig::assert_not_logged_in`] compares with.
    baseline: Snapshot,
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
            baseline: Snapshot::new(),
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

    /// A new browser (no cookies); the store as it is now (the sessions and logins of
    /// other browsers) is what [`Rig::assert_not_logged_in`] expects to find from here
    /// on.
    pub fn fresh_browser(&mut self) {
        self.browser = Browser::new();
        self.baseline = match &self.redis {
            Some(redis) => snapshot(redis),
            None => Snapshot::new(),
        };
    }

    /// The browser is not logged in: GET /user redirects to /, and (with Redis) the
    /// whole store, every key, is as it was when the browser was new (or the rig
    /// started) but for bookkeeping that stores nothing of a user:
    ///
    /// - `cache:` (the IdP's discovery and keys) and `gc:` (upkeep's expiry buckets);
    /// - `lock:` keys (a refresh's write lock; it names no user);
    /// - a login transaction gone, and its `login-used:` counter when its `login:`
    ///   record is gone (consumed); the `login:` record the browser's `oidc_login`
    ///   cookie still names (a callback refused before it consumed the transaction
    ///   leaves it for the real callback);
    /// - a session gone with its `ended:` tombstone there, and index (`bcl:sid:`,
    ///   `bcl:sub:`) entries gone or listing only sessions that are gone (dead entries
    ///   upkeep removes) or were there before.
    ///
    /// Any other difference fails: a new or changed `sess:`, `login:` or index entry, a
    /// tombstone of a session still there, a `bcl:jti:` counter, a key of any other kind.
    /// (A rig with the store in the host's memory cannot be looked into: only the
    /// redirect is checked then.)
    #[track_caller]
    pub fn assert_not_logged_in(&mut self) {
        if let Some(redis) = &self.redis {
            let now = snapshot(redis);
            let pending = self
                .browser
                .cookie(self.base(), "oidc_login")
                .map(|login| crate::records::login_key(&login));
            let problems = unexplained_changes(&self.baseline, &now, pending.as_deref());
            assert!(
                problems.is_empty(),
                "the store holds something new after a refusal: {}",
                problems.join(", ")
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

/// The differences between two whole-store snapshots that are not bookkeeping, as
/// [`Rig::assert_not_logged_in`] describes it; keys named redacted.
fn unexplained_changes(before: &Snapshot, after: &Snapshot, pending: Option<&str>) -> Vec<String> {
    let id_of = |key: &str| key.split_once(':').map(|(_, id)| id.to_string());
    let live = |prefix: &str, id: &str| after.contains_key(&format!("{prefix}{id}"));
    let mut problems = Vec::new();
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for key in keys {
        let (was, is) = (before.get(key), after.get(key));
        if was == is {
            continue;
        }
        let change = match (was, is) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ => "changed",
        };
        let id = id_of(key).unwrap_or_default();
        let explained =
            if key.starts_with("cache:") || key.starts_with("gc:") || key.starts_with("lock:") {
                true
            } else if key.starts_with("login-used:") {
                change == "added" && !live("login:", &id)
            } else if key.starts_with("login:") {
                change == "removed" || (change == "added" && pending == Some(key.as_str()))
            } else if key.starts_with("ended:") {
                change == "added" && !live("sess:", &id)
            } else if key.starts_with("sess:") {
                change == "removed" && live("ended:", &id)
            } else if key.starts_with("bcl:sid:") || key.starts_with("bcl:sub:") {
                // Gone, or listing only sessions that are gone (a dead entry, left for
                // upkeep) or were there before.
                is.is_none_or(|raw| {
                    serde_json::from_slice::<serde_json::Value>(raw).is_ok_and(|entry| {
                        entry["sessions"].as_array().is_some_and(|ids| {
                            ids.iter().all(|id| {
                                id.as_str().is_some_and(|id| {
                                    !live("sess:", id) || before.contains_key(&format!("sess:{id}"))
                                })
                            })
                        })
                    })
                })
            } else {
                false
            };
        if !explained {
            problems.push(format!("{change} {}", redact_key(key)));
        }
    }
    problems
}
