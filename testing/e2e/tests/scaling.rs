//! The horizontal-scaling exercise: N replicas of the app (one test host each, pod names
//! `replica-1..N`) behind nginx taking them strictly in turn, `client_base_url` and the
//! IdP's redirect URIs on the front.
//!
//! - v2, no runtime config (each replica has a private local store, SQLite in its own
//!   state directory, as `spin up --state-dir` per replica): a login
//!   succeeds only when `/callback` lands on the replica that handled `POST /login`;
//!   every other callback is a 400 "Unknown login state" page (never a 500); a session
//!   works only on the replica that created it.
//! - v3, the same runtime config on every replica (one Redis): every login succeeds,
//!   `/user` works on every replica, and Redis holds the session under `sess:<id>` (the
//!   id half of the cookie's ticket) as readable times with the identity and tokens
//!   sealed: no token, user name or cookie anywhere in Redis, nothing there that works
//!   as a cookie, and a tampered record reads as logged out on every replica.
//!   Run once with a plain `[key_value_store.default]` file and once with the file
//!   spin-operator renders from `kubernetes/` (via `testing/manifests/check.py`).
//!
//! - `scripts/exercise.sh`, the same exercise by hand, starts, rotates and cleans up.
//!
//! Which replica answered is read from nginx's access log and cross-checked with the pod
//! name in the page header, so every expectation follows from the rotation, not luck.

use e2e::app_stack::redact_key;
use e2e::idp::IdpOptions;
use e2e::records::{
    assert_sealed_session, assert_store_values_are_not_cookies, assert_tampered_session_is_dropped,
    session_key,
};
use e2e::replicas::{ReplicaOptions, Replicas, front_url};
use e2e::{Browser, Cookie, Idp, Redis, Response, free_port};

const USER: &str = "alice";
const SESSION: &str = "oidc_session";
const LOGIN: &str = "oidc_login";
/// What the component logs when the login cookie names no transaction in its store.
const UNKNOWN_STATE_LOG: &str = "callback: unknown login state";

/// The IdP, for client1 at a front on a port picked now.
fn idp_for_front() -> (Idp, u16) {
    let front_port = free_port();
    let idp = Idp::start(IdpOptions::for_client(&front_url(front_port)));
    (idp, front_port)
}

/// Panics unless the page header names `pod` ("<title> (<pod> @ <time>)").
#[track_caller]
fn assert_page_from(page: &Response, pod: &str) {
    let heading = page.text_by_id("heading").unwrap_or_default();
    assert!(
        heading.contains(&format!("({pod} @ ")),
        "nginx says {pod} answered, the page header says {heading:?}"
    );
}

/// One pass through the login: what happened and where.
struct Attempt {
    login_pod: String,
    callback_pod: String,
    callback: Response,
    /// How often the callback's replica had logged an unknown login state before.
    unknown_state_logged_before: usize,
}

/// GET / and POST /login through the front, the IdP, then `extra` requests of other
/// users through the front, then GET /callback through the front.
fn attempt_login(set: &Replicas, idp: &Idp, browser: &mut Browser, extra: usize) -> Attempt {
    let (page, page_pod) = set.via(|| browser.get(&set.url("/")));
    page.assert_status(200);
    assert_page_from(&page, &page_pod);
    let form = page.form_with_action_path("/login");
    let (to_idp, login_pod) = set.via(|| browser.submit(&page, &form));
    to_idp.assert_redirect(303, idp.issuer());
    assert!(
        to_idp.set_cookie(LOGIN).is_some(),
        "POST /login sets the login cookie"
    );
    let to_callback = idp.login(browser, &to_idp, USER);
    to_callback.assert_redirect(303, &set.url("/callback"));

    let mut other = Browser::new();
    for _ in 0..extra {
        set.via(|| other.get(&set.url("/healthz")))
            .0
            .assert_status(200);
    }
    let unknown_state_logged_before = set
        .host(&set.next_pod())
        .log()
        .matches(UNKNOWN_STATE_LOG)
        .count();
    let (callback, callback_pod) = set.via(|| browser.follow(&to_callback));
    assert_eq!(
        callback_pod,
        set.pod_after(&login_pod, extra + 1),
        "strict round-robin: /callback is {} requests after POST /login",
        extra + 1
    );
    Attempt {
        login_pod,
        callback_pod,
        callback,
        unknown_state_logged_before,
    }
}

/// The cookies a response sets, by name, without their values.
fn set_cookie_names(response: &Response) -> Vec<String> {
    response
        .set_cookies()
        .iter()
        .map(|c| {
            format!(
                "{} ({})",
                c.name,
                if c.is_expired() { "cleared" } else { "set" }
            )
        })
        .collect()
}

/// The session cookie the successful callback sets (it also clears the login cookie,
/// so the response carries two Set-Cookie headers).
#[track_caller]
fn expect_session_cookie(callback: &Response) -> Cookie {
    match callback.set_cookie(SESSION) {
        Some(cookie) if !cookie.is_expired() => cookie,
        _ => panic!(
            "the successful callback's 303 to /user must set {SESSION}, but its Set-Cookie \
             headers are only {:?}: the response lost a Set-Cookie header",
            set_cookie_names(callback)
        ),
    }
}

#[track_caller]
fn assert_cleared(response: &Response, name: &str) {
    let cookie = response
        .set_cookie(name)
        .unwrap_or_else(|| panic!("expected {name} to be cleared: {}", response.describe()));
    assert!(cookie.is_expired(), "{name} is cleared: {}", cookie.raw);
}

#[test]
fn v2_private_stores_keep_logins_and_sessions_on_one_replica() {
    let (idp, front_port) = idp_for_front();
    let set = Replicas::start(&idp, ReplicaOptions::new(4, front_port));
    let n = set.len();
    let mut browser = Browser::new();

    // Between POST /login and GET /callback, 0..n-1 requests of other users reach the
    // front: only the attempt whose callback comes back to the login's replica works.
    let mut session: Option<(String, Cookie)> = None;
    let mut failures = 0;
    for extra in 0..n {
        let a = attempt_login(&set, &idp, &mut browser, extra);
        if a.callback_pod == a.login_pod {
            a.callback.assert_redirect(303, &set.url("/user"));
            let cookie = expect_session_cookie(&a.callback);
            assert_cleared(&a.callback, LOGIN);

            // The redirect to /user is the next request: another replica, which does
            // not know the session, sends the browser to / (and leaves its cookie alone).
            let (user, user_pod) = set.via(|| browser.follow(&a.callback));
            assert_ne!(user_pod, a.login_pod);
            user.assert_redirect(303, &set.url("/"));
            assert!(user.set_cookie(SESSION).is_none(), "{}", user.describe());
            session = Some((a.login_pod, cookie));
        } else {
            failures += 1;
            let c = &a.callback;
            assert_eq!(
                c.status,
                400,
                "a callback on a replica that did not start the login: {}",
                c.describe()
            );
            let message = c.error_message().unwrap_or_default();
            assert!(
                message.contains("Unknown login state"),
                "the error page names the cause: {}",
                c.describe()
            );
            assert_page_from(c, &a.callback_pod);
            assert_cleared(c, LOGIN);
            // The browser did send its login cookie: the replica's store lacks the
            // transaction (as opposed to "no login cookie").
            let host = set.host(&a.callback_pod);
            e2e::wait_until(
                std::time::Duration::from_secs(10),
                "the replica logs why",
                || {
                    let n = host.log().matches(UNKNOWN_STATE_LOG).count();
                    (n > a.unknown_state_logged_before).then_some(())
                },
            )
            .unwrap();
            assert!(c.set_cookie(SESSION).is_none(), "no session on failure");
        }
    }
    assert_eq!(failures, n - 1, "all but one of {n} login attempts fail");
    let (session_pod, cookie) = session.expect("the attempt that came back to its replica worked");

    // The session: /user works exactly on the replica that created it; the others
    // answer "not logged in" (303 to /) and leave the cookie alone.
    let mut served = Vec::new();
    for _ in 0..2 * n {
        let (page, pod) = set.via(|| browser.get(&set.url("/user")));
        if pod == session_pod {
            page.assert_status(200);
            assert_page_from(&page, &pod);
            assert_eq!(page.text_by_id("username").as_deref(), Some(USER));
            // Served where it was created, from this replica's own store.
            assert_eq!(page.text_by_id("served-by"), Some(pod.clone()));
            assert_eq!(page.text_by_id("created-by"), Some(pod.clone()));
            assert_eq!(
                page.text_by_id("store").as_deref(),
                Some("Spin's local SQLite store: this replica's own")
            );
        } else {
            page.assert_redirect(303, &set.url("/"));
            assert!(page.set_cookie(SESSION).is_none(), "{}", page.describe());
        }
        assert_eq!(
            browser.cookie(&set.url("/"), SESSION).as_deref(),
            Some(cookie.value.as_str()),
            "the browser keeps its session cookie"
        );
        served.push((pod, page.status));
    }
    let ok: Vec<&String> = served
        .iter()
        .filter(|(_, s)| *s == 200)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(ok.len(), 2, "one success per round: {served:?}");
    assert!(ok.iter().all(|p| **p == session_pod), "{served:?}");
    let mut pods: Vec<&String> = served.iter().map(|(p, _)| p).collect();
    pods.sort();
    pods.dedup();
    assert_eq!(pods.len(), n, "every replica was asked: {served:?}");
}

/// The v3 exercise with `replicas` hosts sharing one Redis through the runtime config
/// that `config` makes for its url.
fn v3_exercise(replicas: usize, config: impl FnOnce(&str) -> String) {
    let (idp, front_port) = idp_for_front();
    let redis = Redis::start();
    let set = Replicas::start(
        &idp,
        ReplicaOptions::new(replicas, front_port).runtime_config(config(&redis.url())),
    );
    let n = set.len();
    let mut browser = Browser::new();

    // Wherever /callback lands, the login works, and so does the /user that follows.
    let mut creator = String::new();
    for extra in 0..n {
        let a = attempt_login(&set, &idp, &mut browser, extra);
        creator = a.callback_pod.clone();
        let c = &a.callback;
        c.assert_redirect(303, &set.url("/user"));
        expect_session_cookie(c);
        assert_cleared(c, LOGIN);
        let (user, pod) = set.via(|| browser.follow(c));
        user.assert_status(200);
        assert_page_from(&user, &pod);
        assert_eq!(pod, set.pod_after(&a.callback_pod, 1));
        assert_eq!(user.text_by_id("username").as_deref(), Some(USER));
    }
    let session_id = browser.cookie(&set.url("/"), SESSION).expect("logged in");

    // Every replica serves the session, and the page says so: served here,
    // created by the replica of the last callback, kept in Redis under the
    // cookie's id half.
    let mut seen = Vec::new();
    let mut last_page = None;
    for _ in 0..2 * n {
        let (page, pod) = set.via(|| browser.get(&set.url("/user")));
        page.assert_status(200);
        assert_page_from(&page, &pod);
        assert_eq!(page.text_by_id("username").as_deref(), Some(USER));
        assert_eq!(page.text_by_id("served-by"), Some(pod.clone()));
        assert_eq!(page.text_by_id("created-by"), Some(creator.clone()));
        assert_eq!(
            page.text_by_id("store").as_deref(),
            Some("Redis: shared by every replica")
        );
        assert_eq!(page.text_by_id("store-key"), Some(session_key(&session_id)));
        seen.push(pod);
        last_page = Some(page);
    }
    let mut pods = seen.clone();
    pods.sort();
    pods.dedup();
    assert_eq!(
        pods,
        set.pod_names(),
        "/user answered by every replica: {seen:?}"
    );

    // Redis holds the session under the id half of the cookie's ticket; the earlier
    // logins' sessions were replaced (no session survives a new login), and no login
    // transaction is left.
    let keys = redis.keys("*");
    let key = session_key(&session_id);
    assert!(
        keys.contains(&key),
        "KEYS * has the browser's session: {:?}",
        keys.iter().map(|k| redact_key(k)).collect::<Vec<_>>()
    );
    let sessions: Vec<&String> = keys.iter().filter(|k| k.starts_with("sess:")).collect();
    assert_eq!(sessions, vec![&key], "one session for one browser");
    assert!(
        !keys.iter().any(|k| k.starts_with("login:")),
        "login transactions are consumed: {:?}",
        keys.iter().map(|k| redact_key(k)).collect::<Vec<_>>()
    );
    // The record: readable times, nothing else in clear. The user, the tokens and the
    // CSRF token the page shows, and the cookie, are nowhere in Redis.
    let page = e2e::app::UserPage::parse(&last_page.unwrap());
    let shown = |what: &str, v: &Option<String>| -> String {
        v.clone()
            .unwrap_or_else(|| panic!("the page shows the {what}"))
    };
    let access = shown("access token", &page.access_token);
    let id_token = shown("ID token", &page.id_token);
    let csrf = shown("csrf token", &page.csrf);
    assert_sealed_session(
        &redis,
        &session_id,
        0,
        &[
            ("user name", USER),
            ("access token", &access),
            ("ID token", &id_token),
            ("csrf token", &csrf),
        ],
    );
    // Nothing in the store works as a cookie, on any replica (through the front).
    assert_store_values_are_not_cookies(
        &redis,
        SESSION,
        &session_id,
        &set.url("/user"),
        &set.url("/"),
    );
    // A tampered record reads as logged out and is removed; then no replica knows the
    // session.
    assert_tampered_session_is_dropped(
        &redis,
        SESSION,
        &session_id,
        &set.url("/user"),
        &set.url("/"),
    );
    for _ in 0..n {
        let (page, _) = set.via(|| browser.get(&set.url("/user")));
        page.assert_redirect(303, &set.url("/"));
    }
}

#[test]
fn v3_shared_redis_serves_every_login_and_session_on_every_replica() {
    v3_exercise(4, e2e::runtime_config::redis_default_store);
}

/// The same with exactly the runtime config spin-operator renders for the v3 SpinApp
/// (`[[config_provider]]` env provider plus `[key_value_store.default]`), which the real
/// Spin shim accepts: a host that refuses it fails here, at startup.
#[test]
fn v3_with_the_runtime_config_spin_operator_renders() {
    v3_exercise(2, e2e::runtime_config::operator_rendered);
}

/// `scripts/exercise.sh v3 2 PORT`: the front rotates over both replicas, the printed
/// redis-cli port is the Redis, and Ctrl-C (SIGINT to the process group, as a terminal
/// sends it) stops every process and removes the temporary directory.
#[test]
fn exercise_script_runs_v3_and_cleans_up_on_ctrl_c() {
    use std::time::Duration;

    // The script puts the IdP, Redis and the replicas on the ports after the front's.
    let front_port = e2e::scripts::low_port_block(16);
    let mut command = std::process::Command::new("bash");
    command
        .arg(e2e::repo_root().join("scripts/exercise.sh"))
        .args(["v3", "2", &front_port.to_string()])
        .env("EXERCISE_NO_BUILD", "1")
        .env("SPIN_TEST_HOST", e2e::host_binary())
        .current_dir(e2e::repo_root());
    let mut script = e2e::ChildGuard::spawn("exercise", command);
    let mut banner = Vec::new();
    let work_dir = script.wait_for_line(
        Duration::from_secs(300),
        "`Ctrl-C stops everything and removes DIR`",
        |line| {
            banner.push(line.to_string());
            line.strip_prefix("Ctrl-C stops everything and removes ")
                .map(std::path::PathBuf::from)
        },
    );
    let front = front_url(front_port);
    let mut browser = Browser::new();
    e2e::wait_for(Duration::from_secs(30), "the front answers", || {
        browser
            .try_get(&format!("{front}/healthz"))
            .map_err(|e| e.to_string())
            .and_then(|r| (r.status == 200).then_some(()).ok_or(r.status.to_string()))
    })
    .unwrap();
    assert!(
        banner.iter().any(|l| l == &format!("open      {front}/")),
        "{banner:?}"
    );

    let pods: Vec<String> = (0..4)
        .map(|_| {
            let page = browser.get(&format!("{front}/"));
            page.assert_status(200);
            let heading = page.text_by_id("heading").unwrap_or_default();
            ["replica-1", "replica-2"]
                .into_iter()
                .find(|p| heading.contains(&format!("({p} @ ")))
                .unwrap_or_else(|| panic!("no replica in {heading:?}"))
                .to_string()
        })
        .collect();
    for pair in pods.windows(2) {
        assert_ne!(pair[0], pair[1], "strict round-robin: {pods:?}");
    }

    let redis_port: u16 = banner
        .iter()
        .find_map(|l| l.strip_prefix("sessions  redis-cli -p "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no redis-cli command in {banner:?}"));
    let mut resp = e2e::RespClient::connect(redis_port).expect("the printed Redis port");
    assert_eq!(
        resp.command(&["PING"]).unwrap(),
        e2e::RespValue::Simple("PONG".into())
    );
    drop(resp);
    let host_ports: Vec<u16> = banner
        .iter()
        .filter_map(|l| l.strip_prefix("replica   "))
        .filter_map(|l| l.rsplit(':').next()?.parse().ok())
        .collect();
    assert_eq!(host_ports.len(), 2, "{banner:?}");
    assert!(work_dir.is_dir());

    let ports: Vec<u16> = [front_port, redis_port]
        .into_iter()
        .chain(host_ports)
        .collect();
    e2e::scripts::assert_ctrl_c_stops_everything(&mut script, &ports, &work_dir);
}
