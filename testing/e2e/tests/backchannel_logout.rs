//! OpenID Connect Back-Channel Logout 1.0 across replicas. The user logs out at the
//! IdP itself (its end-session endpoint from discovery, no `id_token_hint`, confirmed
//! with "Yes, sign me out"), never through the app's `/logout`. oidc-provider then
//! POSTs a logout token to `<front>/backchannel-logout` (before it shows its own
//! success page), and nginx hands that POST to one replica, strictly in turn.
//!
//! - v3, one Redis behind 4 replicas: whichever replica gets the POST deletes
//!   `sess:<id>` (the id half of the cookie's ticket) from the shared store and leaves
//!   the session's `ended:<id>` tombstone, so `/user` sends the browser to `/` on every
//!   replica; the logout token's `jti` is recorded; garbage is refused with a 400 JSON
//!   answer that is never cached and changes nothing. The index that finds sessions by
//!   `sid` and `sub` names them by id, under hashed keys: neither the sid nor the user
//!   is in the store in clear.
//! - Two browsers of one user (two IdP sessions): only the session whose IdP session
//!   (`sid`) logged out ends; the other browser stays logged in.
//! - A real logout token (captured on its way from the IdP) works once; delivered again
//!   through the front, to the other replica, it is refused as already used, before
//!   it looks for sessions: the session it names, put back in the store after the
//!   first delivery, survives the replay.
//! - v2, a private store per replica: the single POST reaches one replica. It answers
//!   200 either way, but the session ends only when that replica is the one holding it:
//!   the documented limitation. Both cases are steered with the rotation, so the
//!   outcome follows from the access log, not luck.

use std::time::Duration;

use e2e::app_stack::{assert_snapshot_eq, snapshot, without_prefixes};
use e2e::idp::IdpOptions;
use e2e::records::{
    assert_store_reveals_none, ended_key, session_key, session_record, ticket_parts,
};
use e2e::replicas::{ReplicaOptions, Replicas, front_url};
use e2e::{
    Browser, EchoServer, Idp, LoginOptions, Redis, RespValue, Response, free_port, wait_until,
};
use url::Url;

const USER: &str = "alice";
const SESSION: &str = "oidc_session";
const BACKCHANNEL: &str = "/backchannel-logout";
/// How long the store may take to reflect a delivered logout (it is usually at once:
/// the IdP waits for the POST's answer before it shows its success page).
const DEADLINE: Duration = Duration::from_secs(15);

/// The IdP, for client1 at a front on a port picked now, with back-channel logout to
/// `backchannel_uri` (None: `<front>/backchannel-logout`).
fn idp_for_front(backchannel_uri: Option<String>) -> (Idp, u16) {
    let front_port = free_port();
    let front = front_url(front_port);
    let idp = Idp::start(IdpOptions {
        backchannel_logout_uri: Some(
            backchannel_uri.unwrap_or_else(|| format!("{front}{BACKCHANNEL}")),
        ),
        ..IdpOptions::for_client(&front)
    });
    (idp, front_port)
}

/// `replicas` hosts sharing `redis` behind the front.
fn v3_replicas(idp: &Idp, front_port: u16, redis: &Redis, replicas: usize) -> Replicas {
    Replicas::start(
        idp,
        ReplicaOptions::new(replicas, front_port)
            .runtime_config(e2e::runtime_config::redis_default_store(&redis.url())),
    )
}

/// Signs `USER` in through the front (any replica: the store is shared); returns the
/// session cookie's value and the IdP session id (`sid`) of the ID token the /user page
/// shows. Checks that the session's record lists exactly the index keys that name it
/// (one for the sid, one for the user), and that neither the sid nor the user name is
/// in the store in clear.
fn sign_in_v3(set: &Replicas, idp: &Idp, redis: &Redis, browser: &mut Browser) -> (String, String) {
    let signed_in = e2e::app::sign_in(
        browser,
        &set.front_url(),
        idp,
        &LoginOptions::new(USER),
        None,
    );
    assert_eq!(
        signed_in.user_page.text_by_id("username").as_deref(),
        Some(USER)
    );
    let cookie = browser
        .cookie(&set.url("/"), SESSION)
        .expect("the callback set the session cookie");
    let sid = e2e::app::UserPage::parse(&signed_in.user_page).claims_json()["sid"]
        .as_str()
        .expect("the ID token has a sid (the IdP requires it)")
        .to_string();
    let record = session_record(redis, &cookie).expect("the session is in Redis");
    let mut listed: Vec<String> = record["index"]
        .as_array()
        .expect("the record lists its index keys")
        .iter()
        .map(|k| k.as_str().expect("an index key").to_string())
        .collect();
    listed.sort();
    let mut naming = index_keys_naming(redis, "sid", &cookie);
    assert_eq!(naming.len(), 1, "one sid index entry names the session");
    naming.extend(index_keys_naming(redis, "sub", &cookie));
    naming.sort();
    assert_eq!(
        listed, naming,
        "the record lists the index keys whose entries name it"
    );
    assert_store_reveals_none(redis, &[("IdP session id", &sid), ("user name", USER)]);
    (cookie, sid)
}

/// The back-channel index keys of `kind` (`sid` or `sub`) whose entry lists the session
/// of `cookie` (entries list sessions by the id half of their ticket).
fn index_keys_naming(redis: &Redis, kind: &str, cookie: &str) -> Vec<String> {
    let id = ticket_parts(cookie).0;
    redis
        .keys(&format!("bcl:{kind}:*"))
        .into_iter()
        .filter(|key| {
            redis.get(key).is_some_and(|raw| {
                serde_json::from_str::<serde_json::Value>(&raw).is_ok_and(|entry| {
                    entry["sessions"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(id)))
                })
            })
        })
        .collect()
}

/// The session of `cookie` was ended: its record is gone and its tombstone is there.
#[track_caller]
fn assert_ended(redis: &Redis, cookie: &str) {
    assert!(session_record(redis, cookie).is_none(), "the session ended");
    assert!(
        redis.get(&ended_key(cookie)).is_some(),
        "the ended session's tombstone is there"
    );
}

/// What the IdP's back-channel POST did, from the front's access log.
struct Delivery {
    /// The replica nginx gave the POST to.
    pod: String,
    /// Its access log line.
    line: String,
}

/// Logs `browser` out at the IdP and waits until the front has logged the IdP's
/// back-channel POST. Panics unless the only request through the front meanwhile is
/// exactly that one POST, and unless the IdP logged a successful delivery of the logout
/// for `sid`.
fn log_out_at_idp(set: &Replicas, idp: &Idp, browser: &mut Browser, sid: &str) -> Delivery {
    let before = set.nginx().access_log().len();
    let idp_log_before = idp.log().len();
    let done = idp.logout(browser, &idp.end_session_redirect(&set.url("/user")));
    done.assert_status(200);
    assert!(
        done.url.as_str().starts_with(&idp.origin()),
        "without post_logout_redirect_uri the IdP ends on its own page: {}",
        done.describe()
    );
    let lines = wait_until(
        DEADLINE,
        "the front logs the IdP's back-channel POST",
        || {
            let lines = set.nginx().access_log();
            lines[before..]
                .iter()
                .any(|l| l.starts_with(&format!("POST {BACKCHANNEL} ")))
                .then_some(lines)
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}; the IdP logged: {}",
            &idp.log()[idp_log_before.min(idp.log().len())..]
        )
    });
    let new = &lines[before..];
    assert_eq!(
        new.len(),
        1,
        "one request through the front (the IdP's POST): {new:?}"
    );
    let line = new[0].clone();
    let upstream = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("upstream="))
        .unwrap_or_else(|| panic!("no upstream in {line:?}"));
    let pod = set.pod_of_upstream(upstream);

    let idp_log = idp.log();
    let events = &idp_log[idp_log_before..];
    assert!(
        events.contains(&format!("idp: backchannel.success client1 {USER} {sid}")),
        "the IdP reports the delivery for the logged-out IdP session as a success; it logged: {events}"
    );
    assert!(
        !events.contains("backchannel.error"),
        "the IdP reports a failed delivery: {events}"
    );
    Delivery { pod, line }
}

/// Panics unless the access log line says the POST was answered 200 by the replica.
#[track_caller]
fn assert_answered_200(delivery: &Delivery) {
    assert!(
        delivery
            .line
            .starts_with(&format!("POST {BACKCHANNEL} 200 "))
            && delivery
                .line
                .split_whitespace()
                .any(|w| w == "upstream_status=200"),
        "the replica answers the back-channel POST with 200: {:?}",
        delivery.line
    );
}

/// How many times replica `pod` logged `backchannel-logout: ended <n> session(s)`.
fn ended_lines(set: &Replicas, pod: &str, n: usize) -> usize {
    set.host(pod)
        .log()
        .matches(&format!("backchannel-logout: ended {n} session(s)"))
        .count()
}

/// Waits until replica `pod` has logged that it ended `n` session(s) (its stderr may
/// reach the log file a moment after its answer).
fn wait_for_ended_line(set: &Replicas, pod: &str, n: usize) {
    wait_until(
        DEADLINE,
        &format!("{pod} logs `backchannel-logout: ended {n} session(s)`"),
        || (ended_lines(set, pod, n) == 1).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}; its log:\n{}", set.host(pod).log()));
}

/// Panics unless `response` is the back-channel endpoint's refusal: 400, JSON
/// `{"error": "invalid_request", ...}`, `Cache-Control: no-store`. Returns the
/// description.
#[track_caller]
fn assert_refused(response: &Response) -> String {
    response.assert_status(400);
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{}",
        response.describe()
    );
    assert_eq!(
        response.header("cache-control"),
        Some("no-store"),
        "{}",
        response.describe()
    );
    let body = response.json();
    assert_eq!(body["error"], "invalid_request", "{body}");
    body["error_description"]
        .as_str()
        .unwrap_or_else(|| panic!("no error_description: {body}"))
        .to_string()
}

/// POSTs a form to the back-channel endpoint as a server does (no Origin, no cookies).
fn post_backchannel(set: &Replicas, fields: &[(&str, &str)]) -> (Response, String) {
    let url = Url::parse(&set.url(BACKCHANNEL)).unwrap();
    set.via(|| Browser::new().post_form_from(None, &url, fields))
}

#[test]
fn v3_logout_at_the_idp_ends_the_session_on_every_replica() {
    let (idp, front_port) = idp_for_front(None);
    let redis = Redis::start();
    let set = v3_replicas(&idp, front_port, &redis, 4);
    let mut browser = Browser::new();

    let (id, sid) = sign_in_v3(&set, &idp, &redis, &mut browser);
    assert_eq!(index_keys_naming(&redis, "sid", &id).len(), 1);
    assert_eq!(index_keys_naming(&redis, "sub", &id).len(), 1);
    assert!(redis.keys("bcl:jti:*").is_empty(), "no logout token yet");

    let delivery = log_out_at_idp(&set, &idp, &mut browser, &sid);
    assert_answered_200(&delivery);
    wait_until(DEADLINE, "sess:<id> is gone from Redis", || {
        session_record(&redis, &id).is_none().then_some(())
    })
    .unwrap();
    assert_ended(&redis, &id);
    // The replica nginx gave the POST to did it; no other replica saw a logout token.
    wait_for_ended_line(&set, &delivery.pod, 1);
    for pod in set.pod_names() {
        if pod != delivery.pod {
            let log = set.host(&pod).log();
            assert!(
                !log.contains("backchannel-logout"),
                "{pod} did not get the POST, yet logged: {log}"
            );
        }
    }
    assert!(
        index_keys_naming(&redis, "sid", &id).is_empty(),
        "the sid's index entry goes with it"
    );
    assert_eq!(
        redis.keys("bcl:jti:*").len(),
        1,
        "the token's jti is recorded, so a replay is refused on any replica"
    );

    // Every replica now sends the browser to the login page, and leaves its (dead)
    // cookie alone.
    let mut pods = Vec::new();
    for _ in 0..set.len() {
        let (page, pod) = set.via(|| browser.get(&set.url("/user")));
        page.assert_redirect(303, &set.url("/"));
        assert!(page.set_cookie(SESSION).is_none(), "{}", page.describe());
        pods.push(pod);
    }
    let mut distinct = pods.clone();
    distinct.sort();
    assert_eq!(distinct, set.pod_names(), "all 4 replicas asked: {pods:?}");
    assert_eq!(
        browser.cookie(&set.url("/"), SESSION).as_deref(),
        Some(id.as_str())
    );

    // What is not a valid logout token is refused, never cached, and changes nothing.
    let before = snapshot(&redis);
    let (garbage, _) = post_backchannel(&set, &[("logout_token", "not.a.jwt")]);
    let why = assert_refused(&garbage);
    assert!(why.starts_with("invalid logout_token"), "{why}");
    let (missing, _) = post_backchannel(&set, &[("token", "x")]);
    assert_eq!(assert_refused(&missing), "missing logout_token");
    assert_snapshot_eq(&before, &snapshot(&redis), "refused back-channel POSTs");
}

#[test]
fn v3_logout_at_the_idp_ends_only_that_idp_sessions_login() {
    let (idp, front_port) = idp_for_front(None);
    let redis = Redis::start();
    let set = v3_replicas(&idp, front_port, &redis, 2);
    let (mut first, mut second) = (Browser::new(), Browser::new());

    let (first_id, first_sid) = sign_in_v3(&set, &idp, &redis, &mut first);
    let (second_id, second_sid) = sign_in_v3(&set, &idp, &redis, &mut second);
    assert_ne!(first_id, second_id);
    assert_ne!(
        first_sid, second_sid,
        "two browsers, two IdP sessions, two sids"
    );
    let sub_keys = index_keys_naming(&redis, "sub", &first_id);
    assert_eq!(
        sub_keys,
        index_keys_naming(&redis, "sub", &second_id),
        "one user: both sessions are under the same sub"
    );
    let second_sid_keys = index_keys_naming(&redis, "sid", &second_id);
    assert_eq!(second_sid_keys.len(), 1);

    let delivery = log_out_at_idp(&set, &idp, &mut first, &first_sid);
    assert_answered_200(&delivery);
    wait_until(DEADLINE, "the first browser's session is gone", || {
        session_record(&redis, &first_id).is_none().then_some(())
    })
    .unwrap();
    wait_for_ended_line(&set, &delivery.pod, 1);
    assert_ended(&redis, &first_id);
    assert!(
        session_record(&redis, &second_id).is_some(),
        "the other IdP session's login is not ended"
    );
    assert!(
        redis.get(&ended_key(&second_id)).is_none(),
        "no tombstone for the other session"
    );
    assert!(index_keys_naming(&redis, "sid", &first_id).is_empty());
    assert_eq!(
        index_keys_naming(&redis, "sid", &second_id),
        second_sid_keys
    );

    // The second browser is logged in on every replica; the first on none.
    for _ in 0..set.len() {
        let (page, pod) = set.via(|| second.get(&set.url("/user")));
        page.assert_status(200);
        assert_eq!(page.text_by_id("username").as_deref(), Some(USER), "{pod}");
        let (page, _) = set.via(|| first.get(&set.url("/user")));
        page.assert_redirect(303, &set.url("/"));
    }
}

#[test]
fn v3_a_replayed_logout_token_is_refused_on_another_replica() {
    // The IdP delivers to a recorder instead of the app, so the test holds the real
    // logout token and delivers it itself, twice, through the front.
    let recorder = EchoServer::start("backchannel-recorder");
    let (idp, front_port) = idp_for_front(Some(format!("{}{BACKCHANNEL}", recorder.base_url())));
    let redis = Redis::start();
    let set = v3_replicas(&idp, front_port, &redis, 2);
    let mut browser = Browser::new();
    let (id, _) = sign_in_v3(&set, &idp, &redis, &mut browser);

    let done = idp.logout(&mut browser, &idp.end_session_redirect(&set.url("/user")));
    done.assert_status(200);
    let requests = recorder.requests();
    assert_eq!(
        requests.len(),
        1,
        "the IdP delivered once (and waited for it before its success page)"
    );
    let token = url::form_urlencoded::parse(requests[0].body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("the IdP's POST carries a logout_token");
    assert!(
        session_record(&redis, &id).is_some(),
        "the app was not told yet"
    );

    // What the session is made of in the store, saved (server-side copies) so that,
    // once the first delivery has ended it, it can be put back as it was.
    let mut parts = vec![session_key(&id)];
    parts.extend(index_keys_naming(&redis, "sid", &id));
    parts.extend(index_keys_naming(&redis, "sub", &id));
    assert_eq!(
        parts.len(),
        3,
        "the record, its sid and its sub index entries"
    );
    for key in &parts {
        assert_eq!(
            redis.command(&["COPY", key, &format!("saved:{key}")]),
            RespValue::Integer(1)
        );
    }

    let (first, first_pod) = post_backchannel(&set, &[("logout_token", &token)]);
    first.assert_status(200);
    assert_eq!(first.header("cache-control"), Some("no-store"));
    assert_ended(&redis, &id);
    wait_for_ended_line(&set, &first_pod, 1);

    // The session back, as if the token had never come: the replay must leave it alone.
    for key in &parts {
        assert_eq!(
            redis.command(&["RENAME", &format!("saved:{key}"), key]),
            RespValue::Simple("OK".into())
        );
    }
    assert_eq!(redis.del(&[&ended_key(&id)]), 1);
    let (page, _) = set.via(|| browser.get(&set.url("/user")));
    page.assert_status(200);
    assert_eq!(page.text_by_id("username").as_deref(), Some(USER));
    let before = snapshot(&redis);

    set.advance_to(&set.pod_after(&first_pod, 1));
    let (again, again_pod) = post_backchannel(&set, &[("logout_token", &token)]);
    assert_ne!(again_pod, first_pod, "strict round-robin");
    assert_eq!(assert_refused(&again), "this logout_token was already used");
    // Refused before it looked for sessions: the session the token names is still
    // there, with its index entries and without a tombstone. Only the token's use
    // counter (and its upkeep registration) moved.
    assert_snapshot_eq(
        &without_prefixes(&before, &["bcl:jti:", "gc:"]),
        &without_prefixes(&snapshot(&redis), &["bcl:jti:", "gc:"]),
        "the replayed logout token",
    );
    assert!(session_record(&redis, &id).is_some(), "the session lives");
    assert!(redis.get(&ended_key(&id)).is_none(), "no tombstone");
    for _ in 0..set.len() {
        let (page, pod) = set.via(|| browser.get(&set.url("/user")));
        page.assert_status(200);
        assert_eq!(page.text_by_id("username").as_deref(), Some(USER), "{pod}");
    }
}

/// Signs `USER` in through the front of per-replica stores: the callback is steered
/// (with other users' requests) to the replica that handled `POST /login`, the only
/// one that knows the login. Returns that replica and the session's `sid` (from the
/// ID token claims the /user page shows).
fn sign_in_v2(set: &Replicas, idp: &Idp, browser: &mut Browser) -> (String, String) {
    let (page, _) = set.via(|| browser.get(&set.url("/")));
    page.assert_status(200);
    let form = page.form_with_action_path("/login");
    let (to_idp, login_pod) = set.via(|| browser.submit(&page, &form));
    to_idp.assert_redirect(303, idp.issuer());
    let to_callback = idp.login(browser, &to_idp, USER);
    set.advance_to(&login_pod);
    let (callback, callback_pod) = set.via(|| browser.follow(&to_callback));
    assert_eq!(callback_pod, login_pod, "strict round-robin");
    callback.assert_redirect(303, &set.url("/user"));
    assert!(
        callback
            .set_cookie(SESSION)
            .is_some_and(|c| !c.is_expired()),
        "{}",
        callback.describe()
    );
    let page = user_page_on(set, browser, &login_pod);
    page.assert_status(200);
    let claims = e2e::app::UserPage::parse(&page).claims_json();
    let sid = claims["sid"]
        .as_str()
        .expect("the ID token has a sid (the IdP requires it)")
        .to_string();
    (login_pod, sid)
}

/// GET /user through the front, steered to replica `pod`: 200 with the user when
/// logged in there, else 303 to /.
fn user_page_on(set: &Replicas, browser: &mut Browser, pod: &str) -> Response {
    set.advance_to(pod);
    let (page, served) = set.via(|| browser.get(&set.url("/user")));
    assert_eq!(served, pod, "strict round-robin");
    match page.status {
        200 => assert_eq!(page.text_by_id("username").as_deref(), Some(USER)),
        _ => {
            page.assert_redirect(303, &set.url("/"));
        }
    }
    page
}

#[test]
fn v2_the_single_backchannel_post_ends_the_session_only_on_its_replica() {
    let (idp, front_port) = idp_for_front(None);
    let set = Replicas::start(&idp, ReplicaOptions::new(4, front_port));
    let mut browser = Browser::new();

    // The POST reaches another replica: answered 200 (it knows no session to end),
    // and the session lives on where it was created.
    let (holder, sid) = sign_in_v2(&set, &idp, &mut browser);
    let elsewhere = set.pod_after(&holder, 1);
    set.advance_to(&elsewhere);
    let delivery = log_out_at_idp(&set, &idp, &mut browser, &sid);
    assert_eq!(delivery.pod, elsewhere, "strict round-robin");
    assert_answered_200(&delivery);
    wait_for_ended_line(&set, &elsewhere, 0);
    assert_eq!(
        user_page_on(&set, &mut browser, &holder).status,
        200,
        "the session survives on {holder}: the logout reached {elsewhere} only"
    );

    // The POST reaches the replica holding the session: it ends there.
    let (holder, sid) = sign_in_v2(&set, &idp, &mut browser);
    set.advance_to(&holder);
    let delivery = log_out_at_idp(&set, &idp, &mut browser, &sid);
    assert_eq!(delivery.pod, holder, "strict round-robin");
    assert_answered_200(&delivery);
    wait_for_ended_line(&set, &holder, 1);
    assert_eq!(user_page_on(&set, &mut browser, &holder).status, 303);
}
