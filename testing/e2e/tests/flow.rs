//! The happy path through the built component with the real IdP, once with the host's
//! local store (Spin's SQLite default store) and once with Redis: the header names the pod; a login with
//! `openid profile offline_access` shows the user, the ID token (whose claims on the
//! page are exactly the decoded token's), the access and refresh tokens; a refresh
//! yields a different access token; a second login in the same browser gets a new
//! session cookie and the old session is gone (no fixation); logout goes through the
//! IdP's end-session endpoint back to `/`, after which the session is gone server-side.
//! With either store, the store is inspected directly (Redis, or the local store's
//! SQLite file in the host's state directory, as the host writes it): the session lives
//! under `sess:<id>`, the id half of the cookie's ticket, as an envelope of readable
//! times whose identity and tokens are sealed, so that no token, user name or cookie is
//! anywhere in a dump of the store; nothing there works as a cookie, and a tampered
//! record reads as logged out and is removed.

use std::path::PathBuf;
use std::time::Duration;

use e2e::app::UserPage;
use e2e::app_stack::{AppStack, Snapshot, StoreKind};
use e2e::oidc::{jwt_claims, random_token};
use e2e::records::{
    assert_sealed_session, assert_store_values_are_not_cookies, assert_tampered_session_is_dropped,
    ended_key, session_key,
};
use e2e::{Browser, Redis, Response};
use serde_json::Value;

const SCOPE: &str = "openid profile offline_access";

#[test]
fn flow_with_in_memory_store() {
    flow(StoreKind::Memory);
}

#[test]
fn flow_with_redis_store() {
    flow(StoreKind::Redis);
}

fn flow(kind: StoreKind) {
    let pod = format!("e2e-pod-{}", random_token(6).replace(['-', '_'], "x"));
    let stack = AppStack::start(kind, |o| o.variable("pod_name", &pod));
    let mut browser = Browser::new();

    // The start page's header names the pod.
    let home = browser.get(&stack.url("/"));
    home.assert_status(200);
    let heading = home.text_by_id("heading").expect("the page has a heading");
    assert!(
        heading.contains(&format!("({pod} @ ")),
        "the header names the pod {pod:?}: {heading:?}"
    );

    // Login through the IdP.
    let login = "alice.flow";
    let first = stack.sign_in(&mut browser, login, Some(SCOPE));
    // oidc-provider names a PAR endpoint, so by default the login is pushed
    // (RFC 9126): the browser carries a reference, never the parameters.
    let to_idp = first.to_idp.expect_location();
    let carried: Vec<String> = to_idp.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(carried, ["client_id", "request_uri"], "{to_idp}");
    assert_eq!(
        first.user_page.text_by_id("par").as_deref(),
        Some("pushed (PAR)")
    );
    // The pushed scope is the one typed: `profile` put `name` into the ID
    // token, and `offline_access` a refresh token (`check_user_page`).
    let id_token = UserPage::parse(&first.user_page)
        .id_token
        .unwrap_or_default();
    assert!(
        jwt_claims(&id_token).get("name").is_some(),
        "the profile scope reached the IdP"
    );
    let cookie1 = stack
        .session_cookie(&browser)
        .expect("the callback set a session cookie");
    assert_eq!(
        stack.login_cookie(&browser),
        None,
        "the login cookie is cleared after the callback"
    );
    let page1 = check_user_page(&stack, &first.user_page, login);
    assert_stored(&stack, &cookie1, login, &page1, 0);
    assert_cookie_accepted(&stack, &cookie1);
    store_of(&stack).assert_values_are_not_cookies(&stack, &cookie1);

    // Refresh: a different access token, same user, same cookie.
    let refresh_form = first.user_page.form_with_action_path("/refresh");
    let refreshed = browser.submit(&first.user_page, &refresh_form);
    refreshed.assert_redirect(303, &stack.url("/user"));
    let after_refresh = browser.follow(&refreshed);
    after_refresh.assert_status(200);
    let page2 = check_user_page(&stack, &after_refresh, login);
    assert_ne!(
        page2.access_token, page1.access_token,
        "POST /refresh yields a different access token"
    );
    assert_eq!(
        stack.session_cookie(&browser).as_deref(),
        Some(cookie1.as_str()),
        "a refresh keeps the session cookie"
    );
    assert_stored(&stack, &cookie1, login, &page2, 1);

    // A second login in the same browser: a new cookie, the old session is gone.
    let second = stack.sign_in(&mut browser, login, Some(SCOPE));
    let cookie2 = stack
        .session_cookie(&browser)
        .expect("the second callback set a session cookie");
    assert_ne!(cookie2, cookie1, "a new login gets a new session cookie");
    let page3 = check_user_page(&stack, &second.user_page, login);
    assert_stored(&stack, &cookie2, login, &page3, 0);
    assert_session_gone(&stack, &cookie1, "the second login");
    assert_cookie_accepted(&stack, &cookie2);

    // Logout: RP-initiated logout at the IdP, back to the start page.
    let logout_form = second.user_page.form_with_action_path("/logout");
    let to_idp = browser.submit(&second.user_page, &logout_form);
    let end_session = to_idp.assert_redirect(303, stack.idp.issuer());
    assert_eq!(
        end_session.as_str().split('?').next(),
        Some(stack.idp.endpoint("end_session_endpoint").as_str()),
        "POST /logout goes to the IdP's end-session endpoint"
    );
    assert_eq!(
        to_idp.location_param("post_logout_redirect_uri"),
        Some(stack.url("/"))
    );
    assert_eq!(
        to_idp.location_param("id_token_hint"),
        page3.id_token,
        "the hint is the session's ID token"
    );
    assert_eq!(
        to_idp.location_param("client_id").as_deref(),
        Some("client1")
    );
    assert_eq!(
        stack.session_cookie(&browser),
        None,
        "POST /logout clears the session cookie"
    );
    // The local session is gone before the browser even reaches the IdP.
    assert_session_gone(&stack, &cookie2, "POST /logout");
    let back = stack.idp.logout(&mut browser, &to_idp);
    let hops = browser.follow_all(back, 5);
    let last = hops.last().unwrap();
    assert_eq!(
        last.url.as_str(),
        stack.url("/"),
        "the logout ends on the start page: {:?}",
        hops.iter().map(|r| r.url.as_str()).collect::<Vec<_>>()
    );
    last.assert_status(200);
    assert!(
        last.text_by_id("user-link").is_none(),
        "the start page no longer shows a logged-in user"
    );
    let user = browser.get(&stack.url("/user"));
    user.assert_redirect(303, &stack.url("/"));
    assert_session_gone(&stack, &cookie2, "the logout");
    let store = store_of(&stack);
    assert!(
        store.keys("sess:").is_empty(),
        "no session is left in the store"
    );
    assert!(
        store.keys("login:").is_empty(),
        "no login transaction is left in the store"
    );

    // A record changed in the store (one character of its sealed part) does not
    // open: the browser reads as logged out and the record is removed.
    let mut third = Browser::new();
    stack.sign_in(&mut third, login, None);
    let cookie3 = stack.session_cookie(&third).expect("a third session");
    store.assert_tampered_session_is_dropped(&stack, &cookie3);
    third
        .get(&stack.url("/user"))
        .assert_redirect(303, &stack.url("/"));
}

/// The component's `default` store as the test reads it: the stack's Redis, or the
/// local store, Spin's SQLite file `sqlite_key_value.db` in the host's state
/// directory (table `spin_key_value`, store label `default`), opened beside the host.
enum Store<'a> {
    Redis(&'a Redis),
    Local(PathBuf),
}

fn store_of(stack: &AppStack) -> Store<'_> {
    match &stack.redis {
        Some(redis) => Store::Redis(redis),
        None => {
            let dir = stack
                .host
                .state_dir()
                .expect("the local store lives in the host's own state directory");
            let file = dir.join("sqlite_key_value.db");
            assert!(file.is_file(), "the local store is {}", file.display());
            Store::Local(file)
        }
    }
}

impl Store<'_> {
    fn sqlite(path: &PathBuf) -> rusqlite::Connection {
        let db = rusqlite::Connection::open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        // The host may hold a write lock for a moment: wait for it, as SQLite does.
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        db
    }

    /// Every key with its value.
    fn dump(&self) -> Snapshot {
        match self {
            Store::Redis(redis) => e2e::app_stack::snapshot(redis),
            Store::Local(path) => {
                let db = Self::sqlite(path);
                let mut query = db
                    .prepare("SELECT key, value FROM spin_key_value WHERE store = 'default'")
                    .unwrap();
                query
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
        }
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.dump().remove(key)
    }

    /// The keys starting with `prefix`.
    fn keys(&self, prefix: &str) -> Vec<String> {
        self.dump()
            .into_keys()
            .filter(|k| k.starts_with(prefix))
            .collect()
    }

    /// A Redis holding exactly what the store holds now, for the record checks of
    /// `e2e::records` (which read Redis); the stack's own Redis when it has one.
    fn with_redis<T>(&self, check: impl FnOnce(&Redis) -> T) -> T {
        match self {
            Store::Redis(redis) => check(redis),
            Store::Local(_) => {
                let copy = Redis::start();
                let client = redis::Client::open(copy.url()).unwrap();
                let mut connection = client.get_connection().unwrap();
                for (key, value) in self.dump() {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(value.as_slice())
                        .query::<()>(&mut connection)
                        .unwrap();
                }
                assert_eq!(
                    e2e::app_stack::snapshot(&copy),
                    self.dump(),
                    "the copy holds what the local store holds"
                );
                check(&copy)
            }
        }
    }

    /// [`assert_store_values_are_not_cookies`] against this store: with the local
    /// store, its checks that the record is left alone look at a copy, so the record
    /// in the file is compared too, before and after.
    fn assert_values_are_not_cookies(&self, stack: &AppStack, cookie: &str) {
        let before = self
            .get(&session_key(cookie))
            .expect("the session is stored");
        self.with_redis(|redis| {
            assert_store_values_are_not_cookies(
                redis,
                "oidc_session",
                cookie,
                &stack.url("/user"),
                &stack.url("/"),
            )
        });
        assert!(
            self.get(&session_key(cookie)) == Some(before),
            "nothing that is not the cookie changes or removes the record"
        );
    }

    /// [`assert_tampered_session_is_dropped`] against this store; with the local store
    /// the last byte of the record is changed in the file, as the host reads it.
    fn assert_tampered_session_is_dropped(&self, stack: &AppStack, cookie: &str) {
        let (user, home) = (stack.url("/user"), stack.url("/"));
        let path = match self {
            Store::Redis(redis) => {
                return assert_tampered_session_is_dropped(
                    redis,
                    "oidc_session",
                    cookie,
                    &user,
                    &home,
                );
            }
            Store::Local(path) => path,
        };
        let key = session_key(cookie);
        let mut other = Browser::new();
        other.jar.set_value(
            &url::Url::parse(stack.base()).unwrap(),
            "oidc_session",
            cookie,
        );
        other.get(&user).assert_status(200);
        let mut value = self.get(&key).expect("the session is stored");
        let last = value.len() - 1;
        value[last] = value[last].wrapping_add(1);
        let changed = Self::sqlite(path)
            .execute(
                "UPDATE spin_key_value SET value = ?1 WHERE store = 'default' AND key = ?2",
                rusqlite::params![value, key],
            )
            .unwrap();
        assert_eq!(changed, 1, "one record changed");
        assert_eq!(self.get(&key), Some(value), "one byte changed");
        let mut fresh = Browser::new();
        fresh.jar.set_value(
            &url::Url::parse(stack.base()).unwrap(),
            "oidc_session",
            cookie,
        );
        fresh.get(&user).assert_redirect(303, &home);
        assert_eq!(self.get(&key), None, "the tampered record is removed");
    }
}

/// Checks the /user page of `login` and returns what it shows.
fn check_user_page(stack: &AppStack, page: &Response, login: &str) -> UserPage {
    let shown = UserPage::parse(page);
    assert_eq!(shown.username.as_deref(), Some(login), "the username");
    let id_token = shown
        .id_token
        .as_deref()
        .expect("the page shows the ID token");
    let claims = jwt_claims(id_token);
    assert_eq!(
        shown.claims_json(),
        claims,
        "the claims on the page are the decoded ID token's"
    );
    assert_eq!(claims["iss"], stack.idp.issuer(), "iss is the IdP's issuer");
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => aud == "client1",
        Value::Array(auds) => auds.iter().any(|a| a == "client1"),
        _ => false,
    };
    assert!(audience_ok, "aud contains client1: {}", claims["aud"]);
    assert_eq!(claims["sub"], login, "sub is the login name");
    let access = shown.access_token.as_deref().unwrap_or_default();
    assert!(!access.is_empty(), "the page shows an access token");
    let refresh = shown.refresh_token.as_deref().unwrap_or_default();
    assert!(
        !refresh.is_empty() && !refresh.starts_with("(none"),
        "offline_access gives a refresh token"
    );
    assert!(shown.csrf.is_some(), "the logout form carries a csrf field");
    shown
}

/// `sess:<id of cookie>` is the sealed envelope at revision `rev` (readable times, no
/// identity or token in clear), and no token or CSRF token the page shows, no user name
/// and no cookie appears anywhere in a dump of the store.
fn assert_stored(stack: &AppStack, cookie: &str, sub: &str, page: &UserPage, rev: u64) {
    let field = |what: &str, value: &Option<String>| -> String {
        value
            .clone()
            .unwrap_or_else(|| panic!("the page shows the {what}"))
    };
    let access = field("access token", &page.access_token);
    let id_token = field("ID token", &page.id_token);
    let refresh = field("refresh token", &page.refresh_token);
    let csrf = field("csrf token", &page.csrf);
    store_of(stack).with_redis(|redis| {
        assert_sealed_session(
            redis,
            cookie,
            rev,
            &[
                ("user name", sub),
                ("access token", &access),
                ("ID token", &id_token),
                ("refresh token", &refresh),
                ("csrf token", &csrf),
            ],
        )
    });
}

/// The cookie works from another browser too (a bearer credential): the control for
/// [`assert_session_gone`].
fn assert_cookie_accepted(stack: &AppStack, cookie: &str) {
    let mut other = Browser::new();
    other.jar.set_value(
        &url::Url::parse(stack.base()).unwrap(),
        "oidc_session",
        cookie,
    );
    other.get(&stack.url("/user")).assert_status(200);
}

/// The session behind `cookie` is gone server-side: its key is gone from the store, its
/// tombstone is there, and presenting the cookie from a fresh browser gets a redirect
/// to `/`.
fn assert_session_gone(stack: &AppStack, cookie: &str, after: &str) {
    let store = store_of(stack);
    assert_eq!(
        store.get(&session_key(cookie)),
        None,
        "after {after}, sess:<old cookie's id> is gone from the store"
    );
    assert!(
        store.get(&ended_key(cookie)).is_some(),
        "after {after}, the ended session's tombstone is there"
    );
    let mut other = Browser::new();
    other.jar.set_value(
        &url::Url::parse(stack.base()).unwrap(),
        "oidc_session",
        cookie,
    );
    other
        .get(&stack.url("/user"))
        .assert_redirect(303, &stack.url("/"));
}
