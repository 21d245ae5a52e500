//! Faults of the services the component depends on, without restarting the host:
//! Redis going away while a user is logged in (503 pages, `/readyz` 503, `/healthz`
//! 200), then coming back empty on the same port (ready again, the session is gone, a
//! new login works); the IdP unreachable before the first login (502, nothing stored)
//! and while logged in (a refresh fails with 502 and leaves the session as it was),
//! then back with fresh keys and no grants (the old refresh token is refused and ends
//! the session; a new login works).

use std::time::Duration;

use e2e::app::UserPage;
use e2e::app_stack::{AppStack, StoreKind, assert_snapshot_eq, snapshot, without_prefixes};
use e2e::records::{ended_key, session_key, ticket_parts};
use e2e::{Browser, Response, wait_until};

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

#[test]
fn redis_outage_and_recovery_without_restarting_the_host() {
    let mut stack = AppStack::start(StoreKind::Redis, |o| o);
    let mut browser = Browser::new();
    stack.sign_in(&mut browser, "carol.faults", None);
    let old_session = stack.session_cookie(&browser).unwrap();
    browser.get(&stack.url("/readyz")).assert_status(200);

    stack.redis_mut().stop();
    let r = browser.get(&stack.url("/user"));
    assert_error_page(&r, 503, "session store is unavailable");
    let r = browser.get(&stack.url("/"));
    assert_error_page(&r, 503, "session store is unavailable");
    let home_form = Browser::new().post_form(&stack.url("/login"), &[("scope", "openid")]);
    assert_error_page(&home_form, 503, "session store is unavailable");
    assert!(
        home_form.set_cookie("oidc_login").is_none(),
        "no login starts without a store"
    );
    let ready = browser.get(&stack.url("/readyz"));
    assert_eq!(ready.status, 503, "/readyz: {}", ready.describe());
    browser.get(&stack.url("/healthz")).assert_status(200);
    assert!(stack.host_running(), "the host survives the outage");

    // Redis back on the same port, empty (no persistence).
    stack.redis_mut().start_again_same_port();
    let readyz = stack.url("/readyz");
    wait_until(Duration::from_secs(20), "/readyz answers 200 again", || {
        Browser::new()
            .try_get(&readyz)
            .ok()
            .filter(|r| r.status == 200)
    })
    .unwrap();
    let r = browser.get(&stack.url("/user"));
    r.assert_redirect(303, &stack.url("/"));
    assert!(
        stack.redis().keys("sess:*").is_empty(),
        "the session is gone"
    );

    stack.sign_in(&mut browser, "carol.faults", None);
    let new_session = stack.session_cookie(&browser).unwrap();
    assert_ne!(new_session, old_session);
    assert!(
        stack.redis().get(&session_key(&new_session)).is_some(),
        "the new session is in the restarted Redis"
    );
    assert!(stack.host_running());
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
