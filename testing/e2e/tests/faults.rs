//! Faults of the services the component depends on, without restarting the host.
//!
//! Redis going away while users are logged in, as Spin's Redis client lives through it
//! (the test host connects with Spin's settings: testing/spin-test-host/src/kv/redis.rs):
//! requests wait instead of failing (no 503: no answer at all), `/healthz` answers at
//! once, `/readyz` does not answer within the readiness probe's timeout of
//! kubernetes/client1-v3.yaml; Redis back on the same port with its data (AOF), and
//! every session answers again on every replica, unchanged, with no error. The time
//! from Redis back to the first and to the last session answering is measured and
//! printed (`cargo test -p e2e --test faults -- --nocapture`).
//!
//! The IdP unreachable before the first login (502, nothing stored) and while logged
//! in (a refresh fails with 502 and leaves the session as it was), then back with fresh
//! keys and no grants (the old refresh token is refused and ends the session; a new
//! login works).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use e2e::app::UserPage;
use e2e::app_stack::{AppStack, StoreKind, assert_snapshot_eq, snapshot, without_prefixes};
use e2e::records::{ended_key, session_key, ticket_parts};
use e2e::{Browser, Host, HostOptions, Idp, IdpOptions, LoginOptions, Redis, Response};
use e2e::{free_port, repo_root, wait_until};

/// Checks an error page of the component: status, HTML, the message.
#[track_caller]
fn assert_error_page(r: &Response, status: u16, message: &str) {
    assert_eq!(r.status, status, "{}", r.describe());
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "an HTML page: {}",
        r.describe()
    );
    let shown = r.error_message().unwrap_or_default();
    assert!(
        shown.contains(message),
        "the message {shown:?} should contain {message:?}"
    );
}

/// How long a request is given to show that it waits rather than fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);

/// Spin's Redis client tries to reconnect at once, then 1.5 s, 118 s, 210 s ... after
/// the first failure (testing/spin-test-host/src/kv/redis.rs), so once Redis is back a
/// replica answers at its next attempt, at most 117 s later, plus the time to connect
/// and serve.
const RECOVERY_BOUND: Duration = Duration::from_secs(150);

/// The readiness probe's `timeoutSeconds` in kubernetes/client1-v3.yaml.
fn readiness_probe_timeout() -> Duration {
    let path = repo_root().join("kubernetes/client1-v3.yaml");
    let manifest = std::fs::read_to_string(&path).unwrap();
    let after = manifest
        .split_once("    readiness:\n")
        .map(|(_, rest)| rest)
        .expect("client1-v3.yaml has spec.checks.readiness");
    let block = after.split_once("    liveness:").map_or(after, |(b, _)| b);
    let seconds = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("timeoutSeconds:"))
        .expect("the readiness probe sets timeoutSeconds")
        .trim()
        .parse::<u64>()
        .unwrap();
    Duration::from_secs(seconds)
}

/// `GET path` on 127.0.0.1:`port` with the session cookie `cookie`, giving up after
/// `timeout` (None: no answer by then, the connection is closed). The answer as a
/// browser response, for the page parsers.
fn get_within(port: u16, path: &str, cookie: Option<&str>, timeout: Duration) -> Option<Response> {
    let deadline = Instant::now() + timeout;
    let mut stream =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    let cookie = cookie
        .map(|c| format!("Cookie: oidc_session={c}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{cookie}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(e) => panic!("GET {path} on port {port}: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path} on port {port}: not HTTP: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path} on port {port}: no status line: {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Response {
        method: "GET".into(),
        url: url::Url::parse(&format!("http://127.0.0.1:{port}{path}")).unwrap(),
        status,
        headers,
        body: body.to_string(),
        posted: None,
    })
}

/// The parts of the /user page that must be the same before and after.
fn shown(page: &Response) -> (Option<String>, Option<String>, Option<String>) {
    let page = UserPage::parse(page);
    (page.username, page.id_token, page.access_token)
}

#[test]
fn redis_outage_requests_wait_and_every_session_comes_back_with_redis_data() {
    let probe_timeout = readiness_probe_timeout();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(IdpOptions::for_client(&base));
    let mut redis = Redis::start_with_aof();
    // Visits are written down at most once per tenth of the idle timeout: with 8 h
    // none is due during the test, so the store must come back exactly as it was.
    let opts = HostOptions::for_idp(&idp, &base)
        .redis(&redis)
        .variable("session_idle_timeout", "28800");
    // Three replicas sharing Redis, as the v3 pods; sessions start on the first.
    let mut hosts: Vec<Host> = ["host-1", "host-2", "host-3"]
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let o = opts.clone().name(name);
            Host::start(if i == 0 { o.port(port) } else { o })
        })
        .collect();
    assert_eq!(hosts[0].base_url(), base);

    let mut sessions = Vec::new(); // (login, cookie, what /user shows)
    for login in ["carol.faults", "erin.faults"] {
        let mut browser = Browser::new();
        let signed = e2e::app::sign_in(&mut browser, &base, &idp, &LoginOptions::new(login), None);
        let cookie = browser.cookie(&format!("{base}/"), "oidc_session").unwrap();
        sessions.push((login, cookie, shown(&signed.user_page)));
    }
    for host in &hosts {
        for (login, cookie, page) in &sessions {
            let r = get_within(host.port(), "/user", Some(cookie), CLIENT_TIMEOUT)
                .unwrap_or_else(|| panic!("{login} on {}: no answer", host.base_url()));
            r.assert_status(200);
            assert_eq!(&shown(&r), page, "{login} on {}", host.base_url());
        }
        let ready = get_within(host.port(), "/readyz", None, probe_timeout);
        assert_eq!(
            ready.map(|r| r.status),
            Some(200),
            "/readyz on {}",
            host.base_url()
        );
    }
    let before = snapshot(&redis);
    assert!(
        sessions
            .iter()
            .all(|(_, cookie, _)| before.contains_key(&session_key(cookie))),
        "the sessions are in Redis"
    );

    // Redis goes away. Each replica gets a visit: no answer, and no error either.
    redis.stop();
    std::thread::scope(|s| {
        for host in &hosts {
            let (login, cookie, _) = &sessions[0];
            let (port, url) = (host.port(), host.base_url().to_string());
            s.spawn(move || {
                let r = get_within(port, "/user", Some(cookie), CLIENT_TIMEOUT);
                assert!(
                    r.is_none(),
                    "{login} on {url} while Redis is down: the request waits, it does not fail: {}",
                    r.map(|r| r.describe()).unwrap_or_default()
                );
            });
        }
    });
    for host in &hosts {
        let started = Instant::now();
        let health = get_within(host.port(), "/healthz", None, Duration::from_secs(1));
        assert_eq!(
            health.map(|r| r.status),
            Some(200),
            "/healthz on {} answers at once ({:?})",
            host.base_url(),
            started.elapsed()
        );
    }
    let ready = get_within(hosts[0].port(), "/readyz", None, probe_timeout);
    assert!(
        ready.is_none(),
        "/readyz does not answer within the probe's {probe_timeout:?}: {}",
        ready.map(|r| r.describe()).unwrap_or_default()
    );

    // Redis back on the same port with its data. Every session, on every replica.
    redis.start_again_same_port();
    let back = Instant::now();
    let visits: Vec<_> = hosts
        .iter()
        .flat_map(|host| {
            sessions.iter().map(move |(login, cookie, _)| {
                let (host_port, cookie) = (host.port(), cookie.clone());
                let name = format!("{login} on {}", host.base_url());
                let visit = std::thread::spawn(move || {
                    let r = get_within(host_port, "/user", Some(&cookie), RECOVERY_BOUND);
                    (r, back.elapsed())
                });
                (name, visit)
            })
        })
        .collect();
    wait_until(
        RECOVERY_BOUND + Duration::from_secs(10),
        "every session answers again on every replica",
        || visits.iter().all(|(_, v)| v.is_finished()).then_some(()),
    )
    .unwrap();
    let mut times = Vec::new();
    for ((name, visit), (_, _, page)) in visits.into_iter().zip(sessions.iter().cycle()) {
        let (r, after) = visit.join().unwrap();
        let r = r.unwrap_or_else(|| {
            panic!("{name}: no answer {RECOVERY_BOUND:?} after Redis came back")
        });
        r.assert_status(200);
        assert_eq!(&shown(&r), page, "{name}: the same session");
        times.push(after);
    }
    let first = times.iter().min().unwrap();
    let all = times.iter().max().unwrap();
    println!(
        "recovery after Redis came back (3 replicas, {} sessions): first /user 200 after {:.1} s, \
         every session on every replica after {:.1} s",
        sessions.len(),
        first.as_secs_f64(),
        all.as_secs_f64()
    );

    // Recovered replicas answer at once, and are ready.
    for host in &mut hosts {
        for (login, cookie, page) in &sessions {
            let r = get_within(host.port(), "/user", Some(cookie), CLIENT_TIMEOUT)
                .unwrap_or_else(|| panic!("{login} on {}: no answer", host.base_url()));
            r.assert_status(200);
            assert_eq!(&shown(&r), page);
        }
        let ready = get_within(host.port(), "/readyz", None, probe_timeout);
        assert_eq!(
            ready.map(|r| r.status),
            Some(200),
            "/readyz on {}",
            host.base_url()
        );
        assert!(host.is_running(), "{} survived the outage", host.base_url());
        let log = host.log();
        assert!(
            !log.contains("failed: redis:"),
            "no store operation failed on {}:\n{log}",
            host.base_url()
        );
    }
    // Nothing lost, nothing half-written: the store is as it was.
    assert_snapshot_eq(&before, &snapshot(&redis), "Redis after the outage");
}

#[test]
fn idp_outage_before_login_and_while_logged_in() {
    let mut stack = AppStack::start(StoreKind::Redis, |o| o);
    stack.idp.stop();

    // No discovery cached yet: POST /login must reach the IdP and cannot.
    let mut browser = Browser::new();
    let home = browser.get(&stack.url("/"));
    home.assert_status(200);
    let form = home.form_with_action_path("/login");
    let r = browser.submit(&home, &form);
    assert_error_page(&r, 502, "could not be reached");
    assert_eq!(stack.login_cookie(&browser), None, "no login cookie");
    assert!(
        stack.redis().keys("*").is_empty(),
        "nothing is stored: {:?}",
        stack
            .redis()
            .keys("*")
            .iter()
            .map(|k| e2e::app_stack::redact_key(k))
            .collect::<Vec<_>>()
    );
    browser.get(&stack.url("/healthz")).assert_status(200);
    browser.get(&stack.url("/readyz")).assert_status(200);

    // The IdP back (same port and issuer): a login works.
    stack.idp.start_again();
    let signed_in = stack.sign_in(
        &mut browser,
        "dave.faults",
        Some("openid profile offline_access"),
    );
    let session = stack.session_cookie(&browser).unwrap();
    let before_refresh = UserPage::parse(&signed_in.user_page);

    // The IdP gone while logged in: the page still shows (no IdP call), a refresh
    // fails with 502 and changes nothing.
    stack.idp.stop();
    browser.get(&stack.url("/user")).assert_status(200);
    let stored = snapshot(stack.redis());
    let refresh_form = signed_in.user_page.form_with_action_path("/refresh");
    let r = browser.submit(&signed_in.user_page, &refresh_form);
    assert_error_page(&r, 502, "could not be reached");
    // The refresh took the session's lock and released it: the lock's keys are gone,
    // but their registration with upkeep (`gc:` entries, for a holder that dies before
    // releasing) stays until upkeep gets to it. Everything else is as it was.
    assert!(
        stack.redis().keys("lock:*").is_empty(),
        "the refresh released the session's lock"
    );
    let after = snapshot(stack.redis());
    assert_snapshot_eq(
        &without_prefixes(&stored, &["gc:"]),
        &without_prefixes(&after, &["gc:"]),
        "refresh with the IdP down",
    );
    // The only new upkeep entries are for this session's lock keys.
    let lock_prefix = format!("lock:{}:", ticket_parts(&session).0);
    for (key, value) in &after {
        let entry = key.starts_with("gc:")
            && key
                .rsplit(':')
                .next()
                .is_some_and(|n| n.parse::<u64>().is_ok());
        if entry && !stored.contains_key(key) {
            let listed = String::from_utf8_lossy(value);
            assert!(
                listed.lines().all(|k| k.starts_with(&lock_prefix)),
                "a new upkeep entry {} names only the session's lock keys",
                e2e::app_stack::redact_key(key)
            );
        }
    }
    let page = browser.get(&stack.url("/user"));
    page.assert_status(200);
    assert_eq!(
        UserPage::parse(&page).access_token,
        before_refresh.access_token,
        "the session keeps its tokens"
    );

    // The IdP back with no memory of the grant: the refresh token is refused, which
    // ends the session; a new login works.
    stack.idp.start_again();
    let r = browser.submit(&signed_in.user_page, &refresh_form);
    assert_error_page(&r, 401, "no longer accepts this session's refresh token");
    assert!(
        r.set_cookie("oidc_session").is_some_and(|c| c.is_expired()),
        "the session cookie is cleared"
    );
    assert_eq!(stack.redis().get(&session_key(&session)), None);
    assert!(
        stack.redis().get(&ended_key(&session)).is_some(),
        "the ended session's tombstone is there"
    );
    browser
        .get(&stack.url("/user"))
        .assert_redirect(303, &stack.url("/"));
    stack.sign_in(&mut browser, "dave.faults", None);
    assert!(stack.host_running());
}
