//! Sessions on a shared store under concurrent requests (issue 10): what the README's
//! "Concurrency on a shared store" promises, checked against the built component with
//! the real IdP, Redis and several replicas.
//!
//! - One refresh at a time per session: a double click on Refresh, on two replicas
//!   at once (or twice on one host with its local store), sends one refresh grant, so
//!   an IdP that rotates refresh tokens (and revokes the grant on reuse) keeps the
//!   user logged in.
//! - Logout wins: over a refresh whose IdP answer is still on its way, and over the
//!   write with which a page view extends the idle lifetime.
//! - Exactly once: one login's callback sent twice at once creates one session; one
//!   logout token delivered twice at once is accepted once.
//! - What the store holds: no token, cookie, secret or user name; one `sess:` key per
//!   live cookie, named by the cookie's id half.
//! - Upkeep works through a store of 100,000 expired sessions 16 entries per login,
//!   never listing keys (`KEYS` or `SCAN`).
//!
//! Concurrent requests are sent straight to the replicas (each thread with its own
//! client, all released by one barrier), with the front's `Origin` and the browser's
//! cookie, so which replica gets which request is chosen, not left to the rotation.
//! Overlaps are made by the IdP's refresh delay and checked, never assumed from sleeps.
//!
//! The tests of this file run one at a time: the margins of the timing ones (a waiter
//! that gives up after 3 s against an IdP that answers after 1.5 s) are for a machine
//! that is not also running the other tests of this file.

use std::collections::BTreeSet;
use std::sync::{Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::app::UserPage;
use e2e::browser::form_urlencode;
use e2e::host::{Host, HostOptions};
use e2e::idp::IdpOptions;
use e2e::replicas::{ReplicaOptions, Replicas, front_url};
use e2e::{
    Browser, EchoServer, Idp, LoginOptions, Redis, RespValue, Response, free_port, wait_until,
};
use url::Url;

const SESSION: &str = "oidc_session";
const LOGIN: &str = "oidc_login";
const USER: &str = "alice";
/// Scopes that get a refresh token.
const OFFLINE: &str = "openid offline_access";
/// How long a condition that follows at once from an answer may take to show.
const DEADLINE: Duration = Duration::from_secs(15);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Held for the whole test: the tests of this file do not run alongside each other.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------ the deployment

/// The IdP, optionally one Redis, and replicas behind nginx. Field order is drop
/// order: the replicas stop before the services they use.
struct Deployment {
    set: Replicas,
    redis: Option<Redis>,
    idp: Idp,
}

impl Deployment {
    /// `replicas` hosts behind a front; with `shared`, all in one Redis (v3), else each
    /// with its private local store. `idp` may change the IdP's options, and
    /// `variables` are set on every host.
    fn start(
        replicas: usize,
        shared: bool,
        idp: impl FnOnce(IdpOptions) -> IdpOptions,
        variables: &[(&str, &str)],
    ) -> Deployment {
        let front_port = free_port();
        let idp = Idp::start(idp(IdpOptions::for_client(&front_url(front_port))));
        let redis = shared.then(Redis::start);
        let mut opts = ReplicaOptions::new(replicas, front_port);
        if let Some(redis) = &redis {
            opts = opts.runtime_config(e2e::runtime_config::redis_default_store(&redis.url()));
        }
        opts.variables = variables
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let set = Replicas::start(&idp, opts);
        Deployment { set, redis, idp }
    }

    fn redis(&self) -> &Redis {
        self.redis.as_ref().expect("a v3 deployment")
    }

    /// The front's origin, which every form of the app is posted from.
    fn origin(&self) -> String {
        self.set.front_url()
    }

    /// `<replica i's own address><path>` (0-based, wrapping), bypassing the front.
    fn replica_url(&self, i: usize, path: &str) -> String {
        let hosts = self.set.hosts();
        hosts[i % hosts.len()].url(path)
    }

    /// Signs `login` in through the front with a browser of its own.
    fn sign_in(&self, login: &str, scope: Option<&str>) -> User {
        let mut browser = Browser::new();
        let signed = e2e::app::sign_in(
            &mut browser,
            &self.set.front_url(),
            &self.idp,
            &LoginOptions::new(login),
            scope,
        );
        assert_eq!(
            signed.user_page.text_by_id("username").as_deref(),
            Some(login)
        );
        let cookie = browser
            .cookie(&self.set.url("/"), SESSION)
            .expect("the callback set the session cookie");
        User::new(browser, cookie, signed)
    }

    /// GET /user with `user`'s browser through the front, once per replica, asserting
    /// every replica answered once. Returns the answers.
    fn user_page_everywhere(&self, user: &mut User) -> Vec<Response> {
        let mut pods = Vec::new();
        let mut pages = Vec::new();
        for _ in 0..self.set.len() {
            let (page, pod) = self.set.via(|| user.browser.get(&self.set.url("/user")));
            pods.push(pod);
            pages.push(page);
        }
        let mut distinct = pods.clone();
        distinct.sort();
        assert_eq!(
            distinct,
            self.set.pod_names(),
            "every replica asked: {pods:?}"
        );
        pages
    }

    /// Panics unless `user` is logged out on every replica: /user sends the browser to
    /// `/`.
    #[track_caller]
    fn assert_logged_out_everywhere(&self, user: &mut User) {
        for page in self.user_page_everywhere(user) {
            let location = page.expect_location();
            assert!(
                page.status == 303 && location.path() == "/",
                "/user of a logged-out session sends the browser to /: {}",
                page.describe()
            );
        }
    }
}

/// A signed-in browser.
struct User {
    browser: Browser,
    /// The `oidc_session` cookie's value, `<id>.<secret>`.
    cookie: String,
    /// The /user page right after signing in, and what it shows.
    page: Response,
    shown: UserPage,
    /// Every step of the sign-in.
    signed: e2e::app::SignIn,
}

impl User {
    fn new(browser: Browser, cookie: String, signed: e2e::app::SignIn) -> User {
        assert!(
            cookie
                .split_once('.')
                .is_some_and(|(id, secret)| id.len() == 22 && secret.len() == 43),
            "the session cookie is <22-char id>.<43-char secret> (it is {} characters long)",
            cookie.len()
        );
        let shown = UserPage::parse(&signed.user_page);
        User {
            browser,
            cookie,
            page: signed.user_page.clone(),
            shown,
            signed,
        }
    }

    fn secret(&self) -> &str {
        e2e::records::ticket_parts(&self.cookie).1
    }

    fn key(&self) -> String {
        e2e::records::session_key(&self.cookie)
    }

    /// The session's CSRF form token (the /user page's forms carry it).
    fn csrf(&self) -> String {
        self.shown
            .csrf
            .clone()
            .expect("the /user page has a CSRF token")
    }

    /// The `Cookie` header the browser sends the app.
    fn cookie_header(&self) -> String {
        format!("{SESSION}={}", self.cookie)
    }
}

// ------------------------------------------------------------------ requests

/// POSTs a form to `url` with `Origin: <origin>` and, when given, `cookie` as the
/// whole `Cookie` header: what the browser sends from the app's page, sent to one
/// replica directly. A client of its own, so this can run on any thread.
fn post_form(
    url: &str,
    origin: Option<&str>,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> Response {
    let url = Url::parse(url).unwrap();
    let mut headers = Vec::new();
    if let Some(origin) = origin {
        headers.push(("origin", origin));
    }
    if let Some(cookie) = cookie {
        headers.push(("cookie", cookie));
    }
    let body = form_urlencode(fields).into_bytes();
    Browser::new().request(
        "POST",
        &url,
        &headers,
        Some(("application/x-www-form-urlencoded", body)),
    )
}

/// GET `url` with `cookie` as the whole `Cookie` header, from a client of its own.
fn get_with_cookie(url: &str, cookie: &str) -> Response {
    let url = Url::parse(url).unwrap();
    Browser::new().request("GET", &url, &[("cookie", cookie)], None)
}

/// One request, to be run on a thread of its own.
type Request<'a> = Box<dyn FnOnce() -> Response + Send + 'a>;

/// An answer and when its request was sent and answered.
struct Timed<T> {
    value: T,
    sent: Instant,
    answered: Instant,
}

/// Runs every request on its own thread, all released at the same moment by one
/// barrier; returns their answers in the order given.
fn at_once(requests: Vec<Request<'_>>) -> Vec<Timed<Response>> {
    let barrier = Barrier::new(requests.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .into_iter()
            .map(|request| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let sent = Instant::now();
                    let value = request();
                    Timed {
                        value,
                        sent,
                        answered: Instant::now(),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Panics unless every request was sent before any was answered: they overlapped.
#[track_caller]
fn assert_overlapped<T>(answers: &[Timed<T>], what: &str) {
    let last_sent = answers.iter().map(|a| a.sent).max().unwrap();
    let first_answered = answers.iter().map(|a| a.answered).min().unwrap();
    assert!(
        last_sent < first_answered,
        "{what}: the requests did not overlap (one was answered {:?} before the last was sent), \
         so this run proves nothing",
        last_sent.duration_since(first_answered)
    );
}

/// The path of a redirect's Location, panicking unless `response` is a 303.
#[track_caller]
fn see_other_path(response: &Response) -> String {
    assert_eq!(
        response.status,
        303,
        "expected a 303: {}",
        response.describe()
    );
    response.expect_location().path().to_string()
}

/// Whether `response` clears cookie `name`.
fn clears(response: &Response, name: &str) -> bool {
    response.set_cookie(name).is_some_and(|c| c.is_expired())
}

// ------------------------------------------------------------------ the store

/// The readable line of the session record under `key`, as JSON.
fn record(redis: &Redis, key: &str) -> Option<serde_json::Value> {
    redis
        .get_bytes(key)
        .map(|raw| e2e::records::split_session_record(&raw).0)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn integer(reply: RespValue, what: &str) -> i64 {
    match reply {
        RespValue::Integer(n) => n,
        other => panic!("{what}: unexpected reply {other:?}"),
    }
}

// ================================================================== refresh

/// The IdP's slow answer to a refresh grant: long enough that a double click's second
/// request comes while the first holds the lock, short enough that the second, which
/// waits up to 3 s (`src/handlers/refresh.rs`), sees the result.
const DOUBLE_CLICK_DELAY: Duration = Duration::from_millis(1500);

/// The double click: two POST /refresh of one session released together, on replicas
/// `first` and `second` (the same one for a single host), against an IdP that rotates
/// refresh tokens and answers refresh grants after [`DOUBLE_CLICK_DELAY`].
fn double_click(d: &Deployment, first: usize, second: usize) {
    let mut user = d.sign_in(USER, Some(OFFLINE));
    let before = user.shown.clone();
    let old_refresh = before.refresh_token.clone().unwrap_or_default();
    assert!(
        !old_refresh.is_empty() && !old_refresh.starts_with("(none"),
        "offline_access gives a refresh token"
    );
    assert!(d.idp.refresh_grants().is_empty());

    let (origin, cookie, csrf) = (d.origin(), user.cookie_header(), user.csrf());
    let click = |replica: usize| -> Request<'_> {
        let url = d.replica_url(replica, "/refresh");
        let (origin, cookie, csrf) = (&origin, &cookie, &csrf);
        Box::new(move || post_form(&url, Some(origin), Some(cookie), &[("csrf", csrf)]))
    };
    let answers = at_once(vec![click(first), click(second)]);
    assert_overlapped(&answers, "the double click");
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(
            see_other_path(&a.value),
            "/user",
            "click {} ends on /user (the waiting one shows the other's result): {}",
            i + 1,
            a.value.describe()
        );
        assert!(
            a.value.set_cookie(SESSION).is_none(),
            "a refresh leaves the session cookie alone: {}",
            a.value.describe()
        );
    }
    assert_eq!(
        d.idp.refresh_grants(),
        vec![200],
        "one refresh grant reached the IdP, and it was granted (a second one would have \
         replayed the rotated refresh token and made the IdP revoke the grant)"
    );

    // Still logged in, with the new tokens, on every replica.
    let pages = d.user_page_everywhere(&mut user);
    let after = UserPage::parse(&pages[0]);
    for page in &pages {
        page.assert_status(200);
        let shown = UserPage::parse(page);
        assert_eq!(shown.username.as_deref(), Some(USER));
        assert_eq!(
            shown.access_token, after.access_token,
            "every replica shows the same tokens"
        );
    }
    assert_ne!(
        after.access_token, before.access_token,
        "a new access token"
    );
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "the rotated refresh token is the one kept"
    );
    if let Some(redis) = &d.redis {
        let stored = record(redis, &user.key()).expect("the session is in Redis");
        assert_eq!(stored["rev"], 1, "refreshed exactly once");
    }

    // A later refresh works: the session holds the live refresh token.
    let form = pages[0].form_with_action_path("/refresh");
    let again = user.browser.submit(&pages[0], &form);
    assert_eq!(see_other_path(&again), "/user", "{}", again.describe());
    assert_eq!(d.idp.refresh_grants(), vec![200, 200]);
    let page = user.browser.follow(&again);
    page.assert_status(200);
    let last = UserPage::parse(&page);
    assert_eq!(last.username.as_deref(), Some(USER));
    assert_ne!(last.access_token, after.access_token);
    assert_ne!(last.refresh_token, after.refresh_token);
}

/// A double click on Refresh with a shared store (3 replicas, one Redis; the two
/// requests on two replicas): the second request finds the session locked, never
/// calls the IdP, waits and shows the first one's result. Proves: both answers are
/// 303 to /user, exactly one refresh grant reached an IdP that rotates refresh tokens
/// (a second would replay the used token and get the grant revoked), the user stays
/// logged in on every replica with the new tokens, and a later refresh works.
#[test]
fn double_click_refresh_sends_one_grant_and_stays_logged_in() {
    let _serial = one_at_a_time();
    let d = Deployment::start(
        3,
        true,
        |o| IdpOptions {
            rotate_refresh_tokens: true,
            refresh_delay: Some(DOUBLE_CLICK_DELAY),
            ..o
        },
        &[],
    );
    double_click(&d, 0, 1);
}

/// The same double click on one host with its local store (no Redis): the lock is
/// built from the same `increment`, so the same holds: both 303 to /user, one refresh
/// grant, still logged in with the new tokens, and a later refresh works.
#[test]
fn double_click_refresh_on_the_local_store_sends_one_grant_and_stays_logged_in() {
    let _serial = one_at_a_time();
    let d = Deployment::start(
        1,
        false,
        |o| IdpOptions {
            rotate_refresh_tokens: true,
            refresh_delay: Some(DOUBLE_CLICK_DELAY),
            ..o
        },
        &[],
    );
    double_click(&d, 0, 0);
}

// ================================================================== logout wins

/// Logout while a refresh waits for a slow IdP (3 replicas, one Redis): the refresh
/// has sent its grant and the IdP has processed it (its log says so) but holds the
/// answer back 2 s; meanwhile the user logs out on another replica. When the refresh
/// then writes the new tokens, it finds the logout's tombstone and removes what it
/// wrote. Proves: the logout answered first; the refresh answers "logged out" (303 to
/// `/`, cookie cleared); `sess:<id>` is absent from Redis; /user on every replica
/// sends the browser to `/`.
#[test]
fn logout_during_a_slow_refresh_stays_logged_out() {
    let _serial = one_at_a_time();
    let d = Deployment::start(
        3,
        true,
        |o| IdpOptions {
            refresh_delay: Some(Duration::from_millis(2000)),
            ..o
        },
        &[],
    );
    let mut user = d.sign_in(USER, Some(OFFLINE));
    let redis = d.redis();
    assert!(record(redis, &user.key()).is_some());
    let (origin, cookie, csrf) = (d.origin(), user.cookie_header(), user.csrf());

    let (refreshed, refresh_answered, logout, logout_answered) = std::thread::scope(|s| {
        let refresh = s.spawn(|| {
            let r = post_form(
                &d.replica_url(0, "/refresh"),
                Some(&origin),
                Some(&cookie),
                &[("csrf", &csrf)],
            );
            (r, Instant::now())
        });
        wait_until(DEADLINE, "the IdP has processed the refresh grant", || {
            (!d.idp.refresh_grants().is_empty()).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}; the IdP logged:\n{}", d.idp.log()));
        let logout = post_form(
            &d.replica_url(1, "/logout"),
            Some(&origin),
            Some(&cookie),
            &[("csrf", &csrf)],
        );
        let logout_answered = Instant::now();
        let (refreshed, refresh_answered) = refresh
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (refreshed, refresh_answered, logout, logout_answered)
    });

    assert_eq!(
        d.idp.refresh_grants(),
        vec![200],
        "the IdP granted the refresh"
    );
    logout.assert_redirect(303, d.idp.issuer());
    assert!(clears(&logout, SESSION), "{}", logout.describe());
    assert!(
        logout_answered < refresh_answered,
        "the logout was answered while the refresh still waited for the IdP, so the \
         refresh's write came after the logout"
    );
    assert_eq!(
        see_other_path(&refreshed),
        "/",
        "the refresh finds the session ended: {}",
        refreshed.describe()
    );
    assert!(clears(&refreshed, SESSION), "{}", refreshed.describe());

    assert!(
        record(redis, &user.key()).is_none(),
        "sess:<id> is absent from Redis"
    );
    d.assert_logged_out_everywhere(&mut user);
    assert!(record(redis, &user.key()).is_none(), "and stays absent");
}

/// Rounds of [`logout_during_idle_lifetime_writes_stays_logged_out`], sessions per
/// round, and page views per session sent with its logout.
const IDLE_ROUNDS: usize = 6;
const IDLE_SESSIONS: usize = 4;
const IDLE_VIEWS: usize = 2;

/// Logout while page views record the visit (2 replicas, one Redis,
/// `session_idle_timeout` 20 s, so a view writes `last_seen` once the recorded one is
/// 2 s old). In each round, fresh logins; once a visit is due for all of them, every
/// session's GET /user (twice) and POST /logout, spread over both replicas, are
/// released together by one barrier. The view that takes the session's lock writes
/// only the times and then looks for the tombstone. Proves: every time, `sess:<id>`
/// is gone afterwards and /user on every replica sends the browser to `/`.
#[test]
fn logout_during_idle_lifetime_writes_stays_logged_out() {
    let _serial = one_at_a_time();
    let d = Deployment::start(2, true, |o| o, &[("session_idle_timeout", "20")]);
    let redis = d.redis();
    let origin = d.origin();
    let mut views = Vec::new();
    for round in 1..=IDLE_ROUNDS {
        let mut users: Vec<User> = (0..IDLE_SESSIONS).map(|_| d.sign_in(USER, None)).collect();
        let mut due = 0;
        for user in &users {
            let stored = record(redis, &user.key()).expect("the session is in Redis");
            let last_seen = stored["last_seen"].as_i64().expect("a readable last_seen");
            assert_eq!(
                stored["expires_at"].as_i64(),
                Some(last_seen + 20),
                "the idle timeout is the one configured"
            );
            // A visit is recorded once `last_seen` is at least a tenth of 20 s old.
            due = due.max(last_seen + 2);
        }
        wait_until(
            Duration::from_secs(10),
            "a visit is due for every session",
            || (unix_now() >= due).then_some(()),
        )
        .unwrap();

        let requests: Vec<(String, String, String)> = users
            .iter()
            .map(|u| (u.cookie_header(), u.csrf(), u.key()))
            .collect();
        let mut batch: Vec<Request<'_>> = Vec::new();
        let mut replica = round;
        for (cookie, csrf, _) in &requests {
            for _ in 0..IDLE_VIEWS {
                let url = d.replica_url(replica, "/user");
                replica += 1;
                batch.push(Box::new(move || get_with_cookie(&url, cookie)));
            }
            let url = d.replica_url(replica, "/logout");
            replica += 1;
            let origin = &origin;
            batch.push(Box::new(move || {
                post_form(&url, Some(origin), Some(cookie), &[("csrf", csrf)])
            }));
        }
        let answers = at_once(batch);
        for (i, per_session) in answers.chunks(IDLE_VIEWS + 1).enumerate() {
            let (session_views, logout) = per_session.split_at(IDLE_VIEWS);
            logout[0].value.assert_redirect(303, d.idp.issuer());
            for view in session_views.iter().map(|a| &a.value) {
                match view.status {
                    200 => assert_eq!(view.text_by_id("username").as_deref(), Some(USER)),
                    _ => assert_eq!(see_other_path(view), "/", "{}", view.describe()),
                }
                views.push(view.status);
            }
            assert!(
                record(redis, &requests[i].2).is_none(),
                "round {round}, session {}: sess:<id> is gone after the logout (its views \
                 answered {:?})",
                i + 1,
                session_views
                    .iter()
                    .map(|a| a.value.status)
                    .collect::<Vec<_>>()
            );
        }
        for (i, user) in users.iter_mut().enumerate() {
            d.assert_logged_out_everywhere(user);
            assert!(
                record(redis, &user.key()).is_none(),
                "round {round}, session {}: and stays gone",
                i + 1
            );
        }
    }
    eprintln!("the concurrent views answered {views:?} (200: read before the logout's delete)");
}

// ================================================================== exactly once

/// One login's callback sent twice at the same moment, with the same login cookie, to
/// two replicas sharing one Redis (as a browser retrying, or an attacker racing the
/// user). The transaction is consumed by `increment("login-used:<id>")`. Proves:
/// exactly one answer is 303 to /user with a session cookie (which works), the other
/// is 400 "Unknown login state" without one, and Redis holds exactly one `sess:` key,
/// the winner's.
#[test]
fn two_callbacks_with_one_state_at_once_log_in_once() {
    let _serial = one_at_a_time();
    let d = Deployment::start(2, true, |o| o, &[]);
    let redis = d.redis();
    let mut browser = Browser::new();
    let page = browser.get(&d.set.url("/"));
    page.assert_status(200);
    let to_idp = browser.submit(&page, &page.form_with_action_path("/login"));
    to_idp.assert_redirect(303, d.idp.issuer());
    let to_callback = d.idp.login(&mut browser, &to_idp, USER);
    let callback = to_callback.assert_redirect(303, &d.set.url("/callback"));
    let login_cookie = browser
        .cookie(&d.set.url("/"), LOGIN)
        .expect("POST /login set the login cookie");
    let target = format!(
        "{}?{}",
        callback.path(),
        callback.query().unwrap_or_default()
    );
    let cookie = format!("{LOGIN}={login_cookie}");

    let urls = [d.replica_url(0, &target), d.replica_url(1, &target)];
    let answers = at_once(
        urls.iter()
            .map(|url| {
                let cookie = &cookie;
                Box::new(move || get_with_cookie(url, cookie)) as Request<'_>
            })
            .collect(),
    );
    let statuses: Vec<u16> = answers.iter().map(|a| a.value.status).collect();
    let winners: Vec<&Response> = answers
        .iter()
        .map(|a| &a.value)
        .filter(|r| r.status == 303)
        .collect();
    let losers: Vec<&Response> = answers
        .iter()
        .map(|a| &a.value)
        .filter(|r| r.status != 303)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one callback logs in: {statuses:?}"
    );
    let winner = winners[0];
    assert_eq!(see_other_path(winner), "/user", "{}", winner.describe());
    let session = winner
        .set_cookie(SESSION)
        .filter(|c| !c.is_expired())
        .unwrap_or_else(|| panic!("the winner sets the session cookie: {}", winner.describe()));
    let loser = losers[0];
    loser.assert_status(400);
    let message = loser.error_message().unwrap_or_default();
    assert!(
        message.contains("Unknown login state"),
        "the other callback is refused as an unknown (used) login state: {}",
        loser.describe()
    );
    assert!(
        loser.set_cookie(SESSION).is_none_or(|c| c.is_expired()),
        "no session for the loser: {}",
        loser.describe()
    );

    assert_eq!(
        redis.keys("sess:*"),
        vec![e2e::records::session_key(&session.value)],
        "Redis holds exactly one session, the winner's"
    );
    assert!(
        redis.keys("login:*").is_empty(),
        "the login transaction is consumed"
    );

    // The winner's cookie works through the front.
    browser.jar.set_value(
        &Url::parse(&d.set.url("/")).unwrap(),
        SESSION,
        &session.value,
    );
    let (user, _) = d.set.via(|| browser.get(&d.set.url("/user")));
    user.assert_status(200);
    assert_eq!(user.text_by_id("username").as_deref(), Some(USER));
}

/// One real logout token (the IdP delivers it to a recorder, as in
/// backchannel_logout.rs) POSTed at the same moment to two replicas sharing one
/// Redis, as a retrying IdP might. Its `jti` is claimed with `increment`. Proves:
/// exactly one answer is 200, the other is the 400 JSON refusal "this logout_token was
/// already used"; the session is gone from Redis and /user sends the browser to `/`
/// on every replica.
#[test]
fn one_logout_token_at_two_replicas_at_once_is_accepted_once() {
    let _serial = one_at_a_time();
    let recorder = EchoServer::start("backchannel-recorder");
    let d = Deployment::start(
        2,
        true,
        |o| IdpOptions {
            backchannel_logout_uri: Some(format!("{}/backchannel-logout", recorder.base_url())),
            ..o
        },
        &[],
    );
    let redis = d.redis();
    let mut user = d.sign_in(USER, None);
    let done = d.idp.logout(
        &mut user.browser,
        &d.idp.end_session_redirect(&d.set.url("/user")),
    );
    done.assert_status(200);
    let requests = recorder.requests();
    assert_eq!(requests.len(), 1, "the IdP delivered once");
    let token = url::form_urlencoded::parse(requests[0].body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("the IdP's POST carries a logout_token");
    assert!(
        record(redis, &user.key()).is_some(),
        "the app was not told yet"
    );

    let urls = [
        d.replica_url(0, "/backchannel-logout"),
        d.replica_url(1, "/backchannel-logout"),
    ];
    let answers = at_once(
        urls.iter()
            .map(|url| {
                let token = &token;
                Box::new(move || post_form(url, None, None, &[("logout_token", token)]))
                    as Request<'_>
            })
            .collect(),
    );
    let statuses: Vec<u16> = answers.iter().map(|a| a.value.status).collect();
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![200, 400],
        "accepted once, refused once: {statuses:?}"
    );
    let refused = answers
        .iter()
        .map(|a| &a.value)
        .find(|r| r.status == 400)
        .unwrap();
    assert_eq!(refused.header("content-type"), Some("application/json"));
    let body = refused.json();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_eq!(
        body["error_description"], "this logout_token was already used",
        "{body}"
    );
    let accepted = statuses.iter().position(|s| *s == 200).unwrap();
    let pod = e2e::replicas::pod_name(accepted + 1);
    wait_until(
        DEADLINE,
        "the accepting replica logs that it ended the session",
        || {
            d.set
                .host(&pod)
                .log()
                .contains("backchannel-logout: ended 1 session(s)")
                .then_some(())
        },
    )
    .unwrap();

    assert!(record(redis, &user.key()).is_none(), "the session is gone");
    assert_eq!(redis.keys("bcl:jti:*").len(), 1, "one jti claimed");
    d.assert_logged_out_everywhere(&mut user);
}

// ================================================================== the store

/// Several users log in (one of them also refreshes); then every key and value in
/// Redis is read (`KEYS *`, by the test). Proves: no key or value contains any token
/// the /user pages showed (access, refresh, ID token, and the ID token's payload and
/// signature), the CSRF token, the authorization code or state, any cookie value
/// (session or login) or its secret half, or the user's login name, name or email;
/// and the `sess:` keys are exactly `sess:<id half>` of the live session cookies.
#[test]
fn a_store_dump_after_logins_holds_no_token_and_no_cookie() {
    let _serial = one_at_a_time();
    let d = Deployment::start(2, true, |o| o, &[]);
    let redis = d.redis();
    // A '.' never occurs in base64url, so these cannot show up in sealed data by chance.
    let logins = ["alice.dump", "bob.dump", "carol.dump"];
    let mut users: Vec<User> = logins
        .iter()
        .map(|login| d.sign_in(login, Some("openid profile email offline_access")))
        .collect();

    // Secrets: (what, value).
    let mut secrets: Vec<(String, String)> = Vec::new();
    fn add_page(secrets: &mut Vec<(String, String)>, who: &str, shown: &UserPage) {
        let id_token = shown.id_token.clone().expect("an ID token");
        let parts: Vec<&str> = id_token.split('.').collect();
        assert_eq!(parts.len(), 3, "a compact JWS");
        for (what, value) in [
            ("ID token", id_token.as_str()),
            ("ID token payload", parts[1]),
            ("ID token signature", parts[2]),
            (
                "access token",
                shown.access_token.as_deref().expect("an access token"),
            ),
            (
                "refresh token",
                shown.refresh_token.as_deref().expect("a refresh token"),
            ),
            ("CSRF token", shown.csrf.as_deref().expect("a CSRF token")),
        ] {
            assert!(!value.starts_with("(none"), "{who} has a {what}");
            secrets.push((format!("{who}'s {what}"), value.to_string()));
        }
    }
    for (user, login) in users.iter().zip(logins) {
        add_page(&mut secrets, login, &user.shown);
        secrets.push((format!("{login}'s session cookie"), user.cookie.clone()));
        secrets.push((
            format!("{login}'s session secret"),
            user.secret().to_string(),
        ));
        let login_cookie = user
            .signed
            .to_idp
            .set_cookie(LOGIN)
            .expect("POST /login set the login cookie")
            .value;
        let login_secret = login_cookie
            .split_once('.')
            .expect("<id>.<secret>")
            .1
            .to_string();
        secrets.push((format!("{login}'s login cookie"), login_cookie));
        secrets.push((format!("{login}'s login secret"), login_secret));
        let callback = user.signed.to_callback.expect_location();
        for name in ["code", "state"] {
            let value = callback
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| panic!("the callback has a {name}"));
            secrets.push((format!("{login}'s authorization {name}"), value));
        }
        let name = login
            .split('.')
            .map(|p| p[..1].to_uppercase() + &p[1..])
            .collect::<Vec<_>>()
            .join(" ");
        secrets.push((format!("{login}'s login name"), login.to_string()));
        secrets.push((format!("{login}'s name"), name));
        secrets.push((format!("{login}'s email"), format!("{login}@example.test")));
    }

    // The first user refreshes: the new tokens must not be readable either.
    {
        let user = &mut users[0];
        let form = user.page.form_with_action_path("/refresh");
        let refreshed = user.browser.submit(&user.page, &form);
        assert_eq!(
            see_other_path(&refreshed),
            "/user",
            "{}",
            refreshed.describe()
        );
        let page = user.browser.follow(&refreshed);
        page.assert_status(200);
        let shown = UserPage::parse(&page);
        assert_ne!(shown.access_token, user.shown.access_token, "refreshed");
        add_page(&mut secrets, &format!("{} (refreshed)", logins[0]), &shown);
    }
    // Every value is long enough that finding it by chance is impossible.
    for (what, value) in &secrets {
        assert!(
            value.len() >= 8,
            "{what} is too short to search for: {} chars",
            value.len()
        );
    }

    let keys = redis.keys("*");
    let dump: Vec<(String, String)> = keys
        .iter()
        .filter_map(|k| {
            redis
                .get_bytes(k)
                .map(|v| (k.clone(), String::from_utf8_lossy(&v).into_owned()))
        })
        .collect();
    assert!(
        dump.len() > 10,
        "the store holds the sessions and their upkeep: {keys:?}"
    );
    for (what, secret) in &secrets {
        for (key, value) in &dump {
            assert!(
                !key.contains(secret.as_str()),
                "the key {} contains {what}",
                e2e::app_stack::redact_key(key)
            );
            assert!(
                !value.contains(secret.as_str()),
                "the value of {} contains {what}",
                e2e::app_stack::redact_key(key)
            );
        }
    }

    let sessions: BTreeSet<String> = keys
        .iter()
        .filter(|k| k.starts_with("sess:"))
        .cloned()
        .collect();
    let cookies: BTreeSet<String> = users.iter().map(User::key).collect();
    assert_eq!(
        sessions, cookies,
        "the sess: keys are exactly the id halves of the live cookies"
    );
    // And every one of them is still a working login.
    for (user, login) in users.iter_mut().zip(logins) {
        let (page, _) = d.set.via(|| user.browser.get(&d.set.url("/user")));
        page.assert_status(200);
        assert_eq!(page.text_by_id("username").as_deref(), Some(login));
    }
}

// ================================================================== upkeep

/// How many expired sessions are seeded.
const SEEDED: usize = 100_000;
/// How many `POST /login` then run upkeep (at most 16 entries each: `MAX_ENTRIES`).
const UPKEEP_LOGINS: usize = 400;
const MAX_ENTRIES: usize = 16;
/// Keys per MSET / EXISTS while seeding and counting.
const BATCH: usize = 5_000;

/// A session record as `src/session.rs` writes it, expired at `expires_at`: its
/// readable line, then a sealed part, random here (upkeep never opens it).
fn expired_envelope(expires_at: i64) -> String {
    let line = serde_json::json!({
        "v": 1,
        "created_at": expires_at - 1800,
        "last_seen": expires_at - 1800,
        "expires_at": expires_at,
        "rev": 0,
        "index": [],
        "check": e2e::oidc::random_token(32),
    });
    format!("{line}\n{}", e2e::oidc::random_token(96))
}

/// `MSET` of `pairs` in batches; one command per batch on one connection.
fn mset(client: &mut e2e::RespClient, pairs: &[(String, String)]) {
    for chunk in pairs.chunks(BATCH) {
        let mut args: Vec<&str> = vec!["MSET"];
        for (k, v) in chunk {
            args.push(k);
            args.push(v);
        }
        match client.command(&args).expect("MSET") {
            RespValue::Simple(s) if s == "OK" => {}
            other => panic!("unexpected MSET reply {other:?}"),
        }
    }
}

/// How many of `keys` exist (`EXISTS` in batches).
fn existing(client: &mut e2e::RespClient, keys: &[String]) -> usize {
    keys.chunks(BATCH)
        .map(|chunk| {
            let mut args: Vec<&str> = vec!["EXISTS"];
            args.extend(chunk.iter().map(String::as_str));
            integer(client.command(&args).expect("EXISTS"), "EXISTS") as usize
        })
        .sum()
}

/// Upkeep on a big store (one host, one Redis): 100,000 expired sessions, each
/// registered for upkeep exactly as the component registers it (one entry
/// `gc:<bucket>:<i>` naming `sess:<id>` in a bucket ten minutes past, `gc:<bucket>:n`
/// = 100000, `gc:cursor` at that bucket), next to one live logged-in user. After
/// `CONFIG RESETSTAT`, 400 `POST /login` each run upkeep. Proves: every login removes
/// exactly the next 16 seeded sessions and their entries (16 × 400 in all, the rest
/// left), the live user stays logged in, and Redis never ran `KEYS` or `SCAN`: the
/// work per login is bounded whatever the store's size.
#[test]
fn upkeep_removes_100k_expired_records_without_listing_keys() {
    let _serial = one_at_a_time();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(IdpOptions::for_client(&base));
    let redis = Redis::start();
    let host = Host::start(HostOptions::for_idp(&idp, &base).port(port).redis(&redis));
    let mut live = Browser::new();
    let signed = e2e::app::sign_in(&mut live, &base, &idp, &LoginOptions::new(USER), None);
    assert_eq!(
        signed.user_page.text_by_id("username").as_deref(),
        Some(USER)
    );
    let live_cookie = live
        .cookie(&format!("{base}/"), SESSION)
        .expect("logged in");

    let started = Instant::now();
    let now = unix_now();
    let bucket = now.div_euclid(60) - 10;
    let ids: Vec<String> = (0..SEEDED).map(|_| e2e::oidc::random_token(16)).collect();
    assert!(ids.iter().all(|id| id.len() == 22));
    let sessions: Vec<String> = ids.iter().map(|id| format!("sess:{id}")).collect();
    let entries: Vec<String> = (1..=SEEDED).map(|i| format!("gc:{bucket}:{i}")).collect();
    let mut client = redis.client();
    let mut pairs: Vec<(String, String)> = sessions
        .iter()
        .map(|k| (k.clone(), expired_envelope(bucket * 60)))
        .collect();
    pairs.extend(
        entries
            .iter()
            .zip(&sessions)
            .map(|(e, s)| (e.clone(), s.clone())),
    );
    pairs.push((format!("gc:{bucket}:n"), SEEDED.to_string()));
    pairs.push(("gc:cursor".to_string(), bucket.to_string()));
    mset(&mut client, &pairs);
    drop(pairs);
    assert_eq!(existing(&mut client, &sessions), SEEDED);
    assert_eq!(existing(&mut client, &entries), SEEDED);
    eprintln!(
        "seeded {SEEDED} expired sessions in {:?}",
        started.elapsed()
    );

    match client.command(&["CONFIG", "RESETSTAT"]).unwrap() {
        RespValue::Simple(s) if s == "OK" => {}
        other => panic!("unexpected CONFIG RESETSTAT reply {other:?}"),
    }
    let logins_started = Instant::now();
    let mut anyone = Browser::new();
    for login in 1..=UPKEEP_LOGINS {
        let to_idp = anyone.post_form(&format!("{base}/login"), &[("scope", "openid")]);
        to_idp.assert_redirect(303, idp.issuer());
        // This login took the next 16 entries, in claim order.
        let done = &sessions[(login - 1) * MAX_ENTRIES..login * MAX_ENTRIES];
        assert_eq!(
            existing(&mut client, done),
            0,
            "login {login} removed the 16 sessions of entries {} to {}",
            (login - 1) * MAX_ENTRIES + 1,
            login * MAX_ENTRIES
        );
        assert_eq!(
            existing(
                &mut client,
                &sessions[login * MAX_ENTRIES..login * MAX_ENTRIES + 1]
            ),
            1,
            "login {login} removed no more than 16"
        );
    }
    let logins_took = logins_started.elapsed();

    let processed = UPKEEP_LOGINS * MAX_ENTRIES;
    assert_eq!(
        existing(&mut client, &sessions),
        SEEDED - processed,
        "seeded sessions left"
    );
    assert_eq!(
        existing(&mut client, &entries),
        SEEDED - processed,
        "upkeep entries left"
    );
    assert_eq!(
        existing(&mut client, &sessions[processed..]),
        SEEDED - processed,
        "the ones left are exactly those not yet claimed"
    );
    assert_eq!(
        redis.get(&format!("gc:{bucket}:claim")),
        Some(processed.to_string())
    );
    assert_eq!(
        redis.get(&format!("gc:{bucket}:n")),
        Some(SEEDED.to_string())
    );
    assert_eq!(
        redis.get("gc:cursor"),
        Some(bucket.to_string()),
        "still on the seeded bucket"
    );
    wait_until(DEADLINE, "the host logged every login's upkeep", || {
        (host.log().matches("upkeep: removed 16 record(s)").count() == UPKEEP_LOGINS).then_some(())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: it logged {} times",
            host.log().matches("upkeep: removed 16 record(s)").count()
        )
    });

    // The live user is untouched.
    assert!(
        redis
            .get(&e2e::records::session_key(&live_cookie))
            .is_some()
    );
    let page = live.get(&format!("{base}/user"));
    page.assert_status(200);
    assert_eq!(page.text_by_id("username").as_deref(), Some(USER));

    let stats = match client.command(&["INFO", "commandstats"]).unwrap() {
        RespValue::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("unexpected INFO reply {other:?}"),
    };
    let commands: Vec<&str> = stats
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_")?.split(':').next())
        .collect();
    assert!(
        commands.contains(&"get") && commands.contains(&"del"),
        "the statistics cover the logins: {commands:?}"
    );
    assert!(
        !commands.contains(&"keys") && !commands.contains(&"scan"),
        "no key was listed during {UPKEEP_LOGINS} logins: {commands:?}"
    );
    eprintln!(
        "{UPKEEP_LOGINS} logins removed {processed} sessions in {logins_took:?} ({:?} per login); \
         Redis ran {commands:?}; the test took {:?}",
        logins_took / UPKEEP_LOGINS as u32,
        started.elapsed()
    );
}
