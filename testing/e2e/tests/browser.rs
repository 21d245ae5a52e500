//! A real browser through the v3 setup: headless Chromium (Debian's `/usr/bin/chromium`,
//! driven by `testing/browser/flow.mjs` with playwright-core) logs in at the test IdP
//! through 2 replicas sharing Redis behind the round-robin front, sees `/user` from both
//! replicas, refreshes the tokens, logs out, and is sent from `/user` back to `/`.
//!
//! It proves that the cookies behave in Chromium as the harness's Browser assumes: the
//! session cookie is stored HttpOnly, SameSite=Lax, Path=/, is sent back on every
//! request, and is invisible to `document.cookie`. Screenshots of `/` and `/user` are kept
//! in `target/e2e-artifacts/browser/`.

use e2e::chromium;
use e2e::idp::IdpOptions;
use e2e::replicas::{ReplicaOptions, Replicas, front_url};
use e2e::{Idp, Redis, free_port, repo_root};

const REPLICAS: usize = 2;

#[test]
fn chromium_logs_in_refreshes_and_logs_out_across_replicas() {
    let front_port = free_port();
    let idp = Idp::start(IdpOptions::for_client(&front_url(front_port)));
    let redis = Redis::start();
    let set = Replicas::start(
        &idp,
        ReplicaOptions::new(REPLICAS, front_port).runtime_config(redis.runtime_config_toml()),
    );

    let shots = repo_root().join("target/e2e-artifacts/browser");
    let _ = std::fs::remove_dir_all(&shots);
    let result = chromium::walk(&set.front_url(), REPLICAS, "alice", &shots);
    let r = &result;
    let pretty = serde_json::to_string_pretty(r).unwrap();
    assert_eq!(r["completed"], true, "the browser walk failed:\n{pretty}");

    // Login at the IdP through the front ends on /user, from any replica.
    assert_eq!(r["username"], "alice", "{pretty}");
    assert_eq!(r["login_cookie_during_login"], true, "{pretty}");
    assert_eq!(
        r["login_cookie_after_login"], false,
        "the callback cleared oidc_login: {pretty}"
    );
    let mut pods: Vec<&str> = r["pods_seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    pods.sort();
    pods.dedup();
    assert_eq!(pods, set.pod_names(), "/user from every replica: {pretty}");

    // The session cookie as Chromium stored it, sent back, hidden from scripts.
    let cookie = &r["session_cookie"];
    assert_eq!(cookie["httpOnly"], true, "{pretty}");
    assert_eq!(cookie["sameSite"], "Lax", "{pretty}");
    assert_eq!(cookie["path"], "/", "{pretty}");
    assert_eq!(
        cookie["secure"], false,
        "plain http: no Secure, no __Host- prefix: {pretty}"
    );
    assert_eq!(
        cookie["persistent"], true,
        "Max-Age makes it persistent: {pretty}"
    );
    assert_eq!(
        cookie["value_length"],
        e2e::records::ID_CHARS + 1 + e2e::records::SECRET_CHARS,
        "a ticket, <id>.<secret>: {pretty}"
    );
    assert_eq!(r["cookie_sent_back"], true, "{pretty}");
    assert_eq!(
        r["document_cookie_has_session"], false,
        "HttpOnly: {pretty}"
    );
    for load in r["user_loads"].as_array().unwrap() {
        assert_eq!(load["status"], 200, "{pretty}");
        assert_eq!(load["path"], "/user", "{pretty}");
    }

    // Refresh gives a new access token; logout ends the session here and at the IdP.
    assert_eq!(
        r["has_refresh_token"], true,
        "offline_access was granted: {pretty}"
    );
    assert_eq!(r["refresh_landed_on"], "/user", "{pretty}");
    assert_eq!(r["access_token_changed"], true, "{pretty}");
    assert_eq!(
        r["session_cookie_after_local_logout"], false,
        "POST /logout clears the cookie: {pretty}"
    );
    assert_eq!(
        r["logout_landed_on"], "/",
        "the IdP sends the browser to the post-logout URI: {pretty}"
    );
    assert_eq!(r["session_cookie_after_logout"], false, "{pretty}");
    let after = &r["user_after_logout"];
    assert_eq!(
        after["first_status"], 303,
        "/user after logout redirects: {pretty}"
    );
    assert_eq!(after["final_path"], "/", "{pretty}");
    assert_eq!(after["final_status"], 200, "{pretty}");

    // The server side: the session is gone from Redis, its tombstone left behind.
    assert!(
        redis.keys("sess:*").is_empty(),
        "logout deleted the session"
    );
    assert_eq!(
        redis.keys("ended:*").len(),
        1,
        "logout left the session's tombstone"
    );
    for shot in ["home.png", "user.png"] {
        assert!(shots.join(shot).is_file(), "{shot} in {}", shots.display());
    }
}
