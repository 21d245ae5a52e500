//! One deployment of the app for a test: the IdP, optionally Redis, and one test host
//! running the built component at `http://127.0.0.1:PORT`, wired together (client1's
//! redirect URI is the host's `/callback`). Dropping it stops the host first, then
//! Redis, then the IdP.
//!
//! Also: snapshots of the Redis store for "the store is unchanged" assertions, with
//! failure messages that name keys without printing their values or full ids.

use std::collections::BTreeMap;

use crate::app::SignIn;
use crate::browser::Browser;
use crate::host::{Host, HostOptions};
use crate::idp::{Idp, IdpOptions, LoginOptions};
use crate::redis::Redis;

/// Where the component's `default` key-value store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The host's own local store (no runtime config): Spin's SQLite default store
    /// in a state directory of its own.
    Memory,
    /// A redis-server of this stack (runtime config `type = "redis"`).
    Redis,
}

/// A running IdP (+ Redis) + host.
pub struct AppStack {
    // Field order is drop order: the host stops before the services it uses.
    pub host: Host,
    pub redis: Option<Redis>,
    pub idp: Idp,
    base: String,
}

impl AppStack {
    /// Starts everything with client1's default settings; `configure` may change the
    /// host's options (variables, env) before it starts.
    pub fn start(store: StoreKind, configure: impl FnOnce(HostOptions) -> HostOptions) -> AppStack {
        Self::start_with(store, |o| o, configure)
    }

    /// Like [`AppStack::start`], also letting the test change the IdP's options.
    pub fn start_with(
        store: StoreKind,
        configure_idp: impl FnOnce(IdpOptions) -> IdpOptions,
        configure_host: impl FnOnce(HostOptions) -> HostOptions,
    ) -> AppStack {
        let port = crate::net::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let idp = Idp::start(configure_idp(IdpOptions::for_client(&base)));
        let redis = match store {
            StoreKind::Memory => None,
            StoreKind::Redis => Some(Redis::start()),
        };
        let mut opts = HostOptions::for_idp(&idp, &base).port(port);
        if let Some(redis) = &redis {
            opts = opts.redis(redis);
        }
        let host = Host::start(configure_host(opts));
        assert_eq!(
            host.base_url(),
            base,
            "the host listens where client_base_url says"
        );
        AppStack {
            host,
            redis,
            idp,
            base,
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<base><path>`
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The stack's Redis (panics for an in-memory stack).
    pub fn redis(&self) -> &Redis {
        self.redis
            .as_ref()
            .expect("this stack keeps its sessions in memory, not in Redis")
    }

    pub fn redis_mut(&mut self) -> &mut Redis {
        self.redis
            .as_mut()
            .expect("this stack keeps its sessions in memory, not in Redis")
    }

    /// Signs `login` in through the app with `browser`, like [`app::sign_in`], and
    /// also checks that the callback's answer sets the session cookie and clears the
    /// login cookie: two `Set-Cookie` headers in one response.
    pub fn sign_in(&self, browser: &mut Browser, login: &str, scope: Option<&str>) -> SignIn {
        let signed = crate::app::sign_in(
            browser,
            self.base(),
            &self.idp,
            &LoginOptions::new(login),
            scope,
        );
        assert!(
            signed
                .to_idp
                .set_cookie("oidc_login")
                .is_some_and(|c| !c.is_expired()),
            "POST /login sets the oidc_login cookie: {}",
            signed.to_idp.describe()
        );
        assert_callback_cookies(&signed.callback);
        signed
    }

    /// The browser's `oidc_session` cookie for this app.
    pub fn session_cookie(&self, browser: &Browser) -> Option<String> {
        browser.cookie(&self.url("/"), "oidc_session")
    }

    /// The browser's `oidc_login` cookie for this app.
    pub fn login_cookie(&self, browser: &Browser) -> Option<String> {
        browser.cookie(&self.url("/"), "oidc_login")
    }

    /// Whether the host process is still running.
    pub fn host_running(&mut self) -> bool {
        self.host.is_running()
    }
}

/// Panics unless a successful callback's response both sets `oidc_session` and clears
/// `oidc_login`. Names the cookies only, never their values.
#[track_caller]
pub fn assert_callback_cookies(callback: &crate::browser::Response) {
    let set: Vec<String> = callback
        .set_cookies()
        .iter()
        .map(|c| {
            format!(
                "{}{}",
                c.name,
                if c.is_expired() { " (cleared)" } else { "" }
            )
        })
        .collect();
    let session_set = callback
        .set_cookie("oidc_session")
        .is_some_and(|c| !c.is_expired() && !c.value.is_empty());
    let login_cleared = callback
        .set_cookie("oidc_login")
        .is_some_and(|c| c.is_expired());
    assert!(
        session_set && login_cleared,
        "the successful GET /callback must answer with two Set-Cookie headers, one setting \
         oidc_session and one clearing oidc_login; it sent {} Set-Cookie header(s): {set:?}. \
         (A response that keeps only the last Set-Cookie loses the session: every later \
         request is logged out.)",
        set.len()
    );
}

/// Every key of a Redis server with its value (`KEYS *`, then `GET` each).
pub type Snapshot = BTreeMap<String, Vec<u8>>;

/// Takes a [`Snapshot`] of `redis`.
pub fn snapshot(redis: &Redis) -> Snapshot {
    redis
        .keys("*")
        .into_iter()
        .filter_map(|key| redis.get_bytes(&key).map(|value| (key, value)))
        .collect()
}

/// `snapshot` without the keys starting with any of `prefixes`: for a check that must
/// tolerate the component's bookkeeping (say why where it is used).
pub fn without_prefixes(snapshot: &Snapshot, prefixes: &[&str]) -> Snapshot {
    snapshot
        .iter()
        .filter(|(key, _)| !prefixes.iter().any(|p| key.starts_with(p)))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// A key with the opaque id after its prefix shortened, for messages (`sess:AbC…`).
pub fn redact_key(key: &str) -> String {
    match key.split_once(':') {
        Some((prefix, id)) if id.len() > 6 => format!("{prefix}:{}…", &id[..4]),
        _ => key.to_string(),
    }
}

/// What differs between two snapshots, naming keys only (values hold tokens).
pub fn describe_diff(before: &Snapshot, after: &Snapshot) -> String {
    let mut lines = Vec::new();
    for (key, value) in before {
        match after.get(key) {
            None => lines.push(format!("removed {}", redact_key(key))),
            Some(v) if v != value => lines.push(format!("changed {}", redact_key(key))),
            Some(_) => {}
        }
    }
    for key in after.keys() {
        if !before.contains_key(key) {
            lines.push(format!("added {}", redact_key(key)));
        }
    }
    if lines.is_empty() {
        "no difference".to_string()
    } else {
        lines.join(", ")
    }
}

/// Panics (naming keys only) unless `after` equals `expected`.
#[track_caller]
pub fn assert_snapshot_eq(expected: &Snapshot, after: &Snapshot, case: &str) {
    assert!(
        expected == after,
        "{case}: the store changed: {}",
        describe_diff(expected, after)
    );
}
