//! Hostile input against the running component (Redis store, so the store can be
//! snapshotted with `KEYS *` / `GET` around every case): tampered, replayed, foreign
//! and malformed callbacks; `error=access_denied` from the IdP; HTML in
//! `error_description`; unknown and garbage session cookies; oversized cookies,
//! queries and bodies; wrong methods; unknown paths; cross-site POSTs. Every case
//! leaves the store exactly as it was, except where the component legitimately
//! consumes the login transaction (a successful callback, an error from the IdP).
//! Every error page is HTML with the message, no stack trace and no secret (client
//! secret, authorization codes, cookie values, tokens), and the host never crashes.

use e2e::app::UserPage;
use e2e::app_stack::{AppStack, Snapshot, StoreKind, assert_snapshot_eq, snapshot};
use e2e::oidc::random_token;
use e2e::raw_http;
use e2e::records::{assert_store_reveals_none, login_key, session_key, ticket_parts};
use e2e::{Browser, Consent, LoginOptions, Response};
use url::Url;

/// Starts the stack with a discovery/JWKS cache that cannot go stale mid-test, so the
/// only writes are the ones a case causes.
/// Not pushed (PAR): the tests read `state` and `nonce` off the browser's
/// way to the IdP, as an attacker on that way could.
fn start() -> AppStack {
    AppStack::start(StoreKind::Redis, |o| {
        o.variable("discovery_cache_ttl", "3600")
            .variable("pushed_authorization_requests", "never")
    })
}

/// Collects every error page for the final "no secret anywhere" check.
#[derive(Default)]
struct Pages {
    seen: Vec<(String, u16, String)>,
}

impl Pages {
    /// Checks an error page: status, HTML, the message in `<p class="error">`,
    /// no stack trace or source location. Keeps the body for [`Pages::assert_no_secrets`].
    #[track_caller]
    fn error(&mut self, case: &str, r: &Response, status: u16, message: &str) {
        assert_eq!(r.status, status, "{case}: {}", r.describe());
        self.check_body(case, status, r.header("content-type"), &r.body, message);
    }

    #[track_caller]
    fn raw_error(&mut self, case: &str, r: &raw_http::RawResponse, status: u16, message: &str) {
        assert_eq!(r.status, status, "{case}: {} {}", r.status, r.body_text());
        self.check_body(
            case,
            status,
            r.header("content-type"),
            &r.body_text(),
            message,
        );
    }

    #[track_caller]
    fn check_body(
        &mut self,
        case: &str,
        status: u16,
        content_type: Option<&str>,
        body: &str,
        message: &str,
    ) {
        assert!(
            content_type.is_some_and(|t| t.starts_with("text/html")),
            "{case}: an HTML error page, got content-type {content_type:?}"
        );
        let shown = e2e::html::text_by_id(body, "error")
            .unwrap_or_else(|| panic!("{case}: no <p id=\"error\"> in the page:\n{body}"));
        assert!(
            shown.contains(message),
            "{case}: the message {shown:?} should contain {message:?}"
        );
        for leak in [
            "panicked",
            "backtrace",
            "RUST_BACKTRACE",
            ".rs:",
            "src/",
            "wasm",
        ] {
            assert!(
                !body.contains(leak),
                "{case}: the page shows internals ({leak:?}):\n{body}"
            );
        }
        self.seen.push((case.to_string(), status, body.to_string()));
    }

    /// No page seen so far contains any of `secrets` (named by what they are).
    fn assert_no_secrets(&self, secrets: &[(&str, String)]) {
        assert!(!self.seen.is_empty());
        for (case, _, body) in &self.seen {
            for (what, secret) in secrets {
                assert!(secret.len() >= 8, "{what} is too short to search for");
                assert!(
                    !body.contains(secret.as_str()),
                    "{case}: the error page contains the {what}"
                );
            }
        }
    }
}

fn with_query(stack: &AppStack, path: &str, query: &str) -> Url {
    Url::parse(&format!("{}{path}?{query}", stack.base())).unwrap()
}

fn get(browser: &mut Browser, url: &Url) -> Response {
    browser.request("GET", url, &[], None)
}

/// The callback URL `to_callback` points at, with its query replaced by `pairs` joined
/// as given (already encoded).
fn callback_with(stack: &AppStack, pairs: &[String]) -> Url {
    with_query(stack, "/callback", &pairs.join("&"))
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// POST /login from the start page, without going on to the IdP: the redirect to the
/// IdP and the state it carries.
fn start_login(stack: &AppStack, browser: &mut Browser) -> (Response, String) {
    let home = browser.get(&stack.url("/"));
    let form = home.form_with_action_path("/login");
    let to_idp = browser.submit(&home, &form);
    to_idp.assert_redirect(303, stack.idp.issuer());
    let state = to_idp
        .location_param("state")
        .expect("the request has a state");
    (to_idp, state)
}

#[test]
fn hostile_callbacks_leave_the_store_as_it_was() {
    let mut stack = start();
    let redis_snapshot = |stack: &AppStack| snapshot(stack.redis());
    let mut pages = Pages::default();
    let mut secrets: Vec<(&str, String)> =
        vec![("client secret", stack.idp.client_secret().to_string())];

    // A login in progress: the IdP has sent the browser back with a code.
    let mut browser = Browser::new();
    let (to_idp, state) = start_login(&stack, &mut browser);
    let login_cookie = stack
        .login_cookie(&browser)
        .expect("POST /login sets oidc_login");
    let to_callback = stack.idp.login(&mut browser, &to_idp, "mallory.target");
    let real = to_callback.expect_location();
    let param = |name: &str| {
        real.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("the IdP's redirect has no {name}"))
    };
    let (code, iss) = (param("code"), param("iss"));
    assert_eq!(param("state"), state);
    secrets.push(("authorization code", code.clone()));
    secrets.push(("login cookie", login_cookie.clone()));
    secrets.push((
        "login cookie's secret half",
        ticket_parts(&login_cookie).1.to_string(),
    ));
    let code_p = format!("code={}", enc(&code));
    let state_p = format!("state={}", enc(&state));
    let iss_p = format!("iss={}", enc(&iss));

    let before = redis_snapshot(&stack);
    let transaction_key = login_key(&login_cookie);
    assert!(
        before.contains_key(&transaction_key),
        "the transaction is stored"
    );
    // Sealed: the store shows neither the flow's values nor the cookie that opens it.
    let nonce = to_idp
        .location_param("nonce")
        .expect("the request has a nonce");
    assert_store_reveals_none(
        stack.redis(),
        &[
            ("state", &state),
            ("nonce", &nonce),
            ("login cookie", &login_cookie),
            ("login cookie's secret half", ticket_parts(&login_cookie).1),
        ],
    );

    // Callbacks that must be refused without consuming anything.
    let forged_state = random_token(32);
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "tampered state",
            vec![
                code_p.clone(),
                format!("state={forged_state}"),
                iss_p.clone(),
            ],
            "state parameter does not match",
        ),
        (
            "no state",
            vec![code_p.clone(), iss_p.clone()],
            "no state parameter",
        ),
        (
            "no code",
            vec![state_p.clone(), iss_p.clone()],
            "no authorization code",
        ),
        (
            "empty code",
            vec!["code=".into(), state_p.clone(), iss_p.clone()],
            "no authorization code",
        ),
        (
            "foreign issuer",
            vec![
                code_p.clone(),
                state_p.clone(),
                format!("iss={}", enc("http://evil.example/realms/demo")),
            ],
            "different issuer",
        ),
        (
            "duplicated state",
            vec![
                code_p.clone(),
                state_p.clone(),
                state_p.clone(),
                iss_p.clone(),
            ],
            "appears more than once",
        ),
        (
            "duplicated code",
            vec![
                code_p.clone(),
                "code=other".into(),
                state_p.clone(),
                iss_p.clone(),
            ],
            "appears more than once",
        ),
        (
            "state not UTF-8",
            vec![code_p.clone(), "state=%FF%FE%C3%28".into(), iss_p.clone()],
            "not valid UTF-8",
        ),
        (
            "state with a NUL",
            vec![
                code_p.clone(),
                format!("state={}%00", enc(&state)),
                iss_p.clone(),
            ],
            "control characters",
        ),
        (
            "state with invalid percent-encoding",
            vec![code_p.clone(), "state=%ZZ%4".into(), iss_p.clone()],
            "state parameter does not match",
        ),
    ];
    for (case, pairs, message) in &cases {
        let r = get(&mut browser, &callback_with(&stack, pairs));
        pages.error(case, &r, 400, message);
        assert_snapshot_eq(&before, &redis_snapshot(&stack), case);
        assert_eq!(
            stack.login_cookie(&browser).as_deref(),
            Some(login_cookie.as_str()),
            "{case}: the login can still complete"
        );
    }

    // The real callback URL from a browser that did not start this login (login CSRF /
    // a leaked callback URL): refused, nothing consumed.
    let mut stranger = Browser::new();
    let r = get(&mut stranger, &real);
    pages.error(
        "callback from another browser",
        &r,
        400,
        "Unknown login state",
    );
    assert_snapshot_eq(
        &before,
        &redis_snapshot(&stack),
        "callback from another browser",
    );

    // The real callback completes the login, consuming the transaction.
    let ok = browser.follow(&to_callback);
    ok.assert_redirect(303, &stack.url("/user"));
    e2e::app_stack::assert_callback_cookies(&ok);
    let session = stack.session_cookie(&browser).expect("a session cookie");
    secrets.push(("session cookie", session.clone()));
    secrets.push((
        "session cookie's secret half",
        ticket_parts(&session).1.to_string(),
    ));
    let user = browser.follow(&ok);
    user.assert_status(200);
    let shown = UserPage::parse(&user);
    secrets.push(("access token", shown.access_token.clone().unwrap()));
    secrets.push(("ID token", shown.id_token.clone().unwrap()));
    let after_login = redis_snapshot(&stack);
    assert!(
        !after_login.contains_key(&transaction_key),
        "the transaction is consumed"
    );
    assert!(
        after_login.contains_key(&session_key(&session)),
        "the session is stored"
    );

    // Replays of the same callback URL: with the login cookie cleared as the browser
    // has it, and with the old login cookie put back by hand.
    let r = get(&mut browser, &real);
    pages.error("replayed callback", &r, 400, "Unknown login state");
    assert_snapshot_eq(&after_login, &redis_snapshot(&stack), "replayed callback");
    let mut replayer = Browser::new();
    replayer.jar.set_value(&real, "oidc_login", &login_cookie);
    let r = get(&mut replayer, &real);
    pages.error(
        "replayed callback with the old login cookie",
        &r,
        400,
        "Unknown login state",
    );
    assert_snapshot_eq(
        &after_login,
        &redis_snapshot(&stack),
        "replay with the old login cookie",
    );
    // The session of the real login still works.
    browser.get(&stack.url("/user")).assert_status(200);

    // The user cancels at the IdP's consent page: error=access_denied comes back.
    let mut denier = Browser::new();
    let (to_idp, _) = start_login(&stack, &mut denier);
    let denied_login = stack.login_cookie(&denier).unwrap();
    secrets.push(("login cookie", denied_login.clone()));
    let mut opts = LoginOptions::new("denies.consent");
    opts.consent = Consent::Deny;
    let (back, trace) = stack.idp.login_with(&mut denier, &to_idp, &opts);
    assert!(trace.consent_form, "the IdP asked for consent");
    assert_eq!(
        back.location_param("error").as_deref(),
        Some("access_denied")
    );
    let before = redis_snapshot(&stack);
    let r = denier.follow(&back);
    pages.error("access_denied", &r, 403, "access_denied");
    let mut expected = before.clone();
    assert!(expected.remove(&login_key(&denied_login)).is_some());
    assert_snapshot_eq(
        &expected,
        &redis_snapshot(&stack),
        "access_denied (only the transaction goes)",
    );
    assert_eq!(
        stack.login_cookie(&denier),
        None,
        "access_denied clears the login cookie"
    );
    assert_eq!(
        stack.session_cookie(&denier),
        None,
        "no session after access_denied"
    );

    // HTML in error_description, with the real state: shown as text, never as markup.
    let mut victim = Browser::new();
    let (_, state) = start_login(&stack, &mut victim);
    let victim_login = stack.login_cookie(&victim).unwrap();
    let before = redis_snapshot(&stack);
    let markup = "<script>alert('x')</script><img src=x onerror=alert(1)>\"'&";
    let url = callback_with(
        &stack,
        &[
            "error=invalid_request".into(),
            format!("error_description={}", enc(markup)),
            format!("state={}", enc(&state)),
            format!("iss={}", enc(stack.idp.issuer())),
        ],
    );
    let r = get(&mut victim, &url);
    pages.error("HTML in error_description", &r, 400, markup);
    for raw in ["<script", "<img", "onerror=alert(1)>"] {
        assert!(
            !r.body.contains(raw),
            "the markup {raw:?} is escaped:\n{}",
            r.body
        );
    }
    assert!(
        r.body.contains("&lt;script&gt;"),
        "escaped as entities:\n{}",
        r.body
    );
    let mut expected = before.clone();
    assert!(expected.remove(&login_key(&victim_login)).is_some());
    assert_snapshot_eq(
        &expected,
        &redis_snapshot(&stack),
        "error with HTML (only the transaction goes)",
    );

    pages.assert_no_secrets(&secrets);
    assert!(stack.host_running(), "the host survived every case");
}

#[test]
fn hostile_requests_are_refused_without_side_effects() {
    let mut stack = start();
    let mut pages = Pages::default();
    let base = Url::parse(stack.base()).unwrap();

    // A logged-in user whose session must survive everything below.
    let mut browser = Browser::new();
    let signed_in = stack.sign_in(
        &mut browser,
        "victim.user",
        Some("openid profile offline_access"),
    );
    let session = stack.session_cookie(&browser).unwrap();
    let shown = UserPage::parse(&signed_in.user_page);
    let csrf = shown.csrf.clone().expect("the logout form's csrf");
    let (session_id, session_secret) = ticket_parts(&session);
    let secrets: Vec<(&str, String)> = vec![
        ("client secret", stack.idp.client_secret().to_string()),
        ("session cookie", session.clone()),
        ("session cookie's secret half", session_secret.to_string()),
        ("csrf token", csrf.clone()),
        ("access token", shown.access_token.clone().unwrap()),
        ("refresh token", shown.refresh_token.clone().unwrap()),
        ("ID token", shown.id_token.clone().unwrap()),
    ];
    let before: Snapshot = snapshot(stack.redis());
    let unchanged = |stack: &AppStack, case: &str| {
        assert_snapshot_eq(&before, &snapshot(stack.redis()), case);
    };
    let still_logged_in = |browser: &mut Browser, case: &str| {
        let r = browser.get(&stack.url("/user"));
        assert_eq!(
            r.status,
            200,
            "{case}: the session still works: {}",
            r.describe()
        );
    };

    // Unknown, garbage and ambiguous session cookies: not logged in, nothing touched.
    // Among them well-formed tickets that are not the session's: another id with the
    // session's secret, the session's id with another secret (a guess opens nothing and
    // removes nothing), and the halves alone or swapped.
    let user_url = Url::parse(&stack.url("/user")).unwrap();
    let unknown = random_token(32);
    assert_eq!(unknown.len(), 43);
    let other_id = random_token(16);
    assert_eq!(other_id.len(), 22);
    for (case, cookie) in [
        ("unknown session cookie", format!("oidc_session={unknown}")),
        (
            "unknown well-formed ticket",
            format!("oidc_session={other_id}.{unknown}"),
        ),
        (
            "the session's id with another secret",
            format!("oidc_session={session_id}.{unknown}"),
        ),
        (
            "another id with the session's secret",
            format!("oidc_session={other_id}.{session_secret}"),
        ),
        (
            "the session's id alone",
            format!("oidc_session={session_id}"),
        ),
        (
            "the session's store key",
            format!("oidc_session={}", session_key(&session)),
        ),
        (
            "the session's secret alone",
            format!("oidc_session={session_secret}"),
        ),
        (
            "the halves swapped",
            format!("oidc_session={session_secret}.{session_id}"),
        ),
        (
            "garbage session cookie",
            "oidc_session=../../etc/passwd".to_string(),
        ),
        ("glob session cookie", "oidc_session=*".to_string()),
        (
            "overlong session cookie",
            format!("oidc_session={}A", session),
        ),
        (
            "session cookie sent twice",
            format!("oidc_session={session}; oidc_session={unknown}"),
        ),
    ] {
        let mut stranger = Browser::new();
        let r = stranger.request("GET", &user_url, &[("cookie", &cookie)], None);
        r.assert_redirect(303, &stack.url("/"));
        unchanged(&stack, case);
    }

    // Size limits, each just under (accepted) and just over (refused).
    let pad = |n: usize| "a".repeat(n);
    let cookie_prefix = format!("oidc_session={session}; pad=");
    let at_limit = format!("{cookie_prefix}{}", pad(8192 - cookie_prefix.len()));
    assert_eq!(at_limit.len(), 8192);
    let r = browser.request("GET", &user_url, &[("cookie", &at_limit)], None);
    r.assert_status(200);
    let over = format!("{at_limit}a");
    let r = browser.request("GET", &user_url, &[("cookie", &over)], None);
    pages.error("oversized Cookie header", &r, 431, "cookies are too large");
    unchanged(&stack, "oversized Cookie header");

    let target_prefix = "/user?pad=";
    let exact = with_query(
        &stack,
        "/user",
        &format!("pad={}", pad(4096 - target_prefix.len())),
    );
    assert_eq!(exact.as_str().len() - stack.base().len(), 4096);
    browser.request("GET", &exact, &[], None).assert_status(200);
    let long = with_query(
        &stack,
        "/user",
        &format!("pad={}", pad(4097 - target_prefix.len())),
    );
    let r = browser.request("GET", &long, &[], None);
    pages.error("oversized query", &r, 414, "address is too long");
    let long_callback = with_query(&stack, "/callback", &format!("state={}", pad(5000)));
    let r = browser.request("GET", &long_callback, &[], None);
    pages.error("oversized callback query", &r, 414, "address is too long");
    unchanged(&stack, "oversized query");

    let origin = base.origin().ascii_serialization();
    let post = |browser: &mut Browser, path: &str, origin: &str, body: Vec<u8>, ctype: &str| {
        let url = Url::parse(&stack.url(path)).unwrap();
        browser.request("POST", &url, &[("origin", origin)], Some((ctype, body)))
    };
    const FORM: &str = "application/x-www-form-urlencoded";
    let big_body = |n: usize| format!("scope=openid&pad={}", pad(n - 17)).into_bytes();
    let r = post(
        &mut browser,
        "/login",
        &origin,
        big_body(32 * 1024 + 1),
        FORM,
    );
    pages.error("oversized POST body", &r, 413, "body is too large");
    unchanged(&stack, "oversized POST body");
    let logout_body = format!("csrf={csrf}&pad={}", pad(33 * 1024)).into_bytes();
    let r = post(&mut browser, "/logout", &origin, logout_body, FORM);
    pages.error("oversized logout body", &r, 413, "body is too large");
    unchanged(&stack, "oversized logout body");
    still_logged_in(&mut browser, "oversized logout body");
    // Without Content-Length: a chunked body is cut off while it is read.
    let chunked_body = raw_http::chunked(&big_body(40 * 1024));
    let head = format!(
        "POST /login HTTP/1.1\r\nOrigin: {origin}\r\nContent-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n"
    );
    let r = raw_http::send(stack.host.port(), &head, &chunked_body).expect("a response");
    pages.raw_error("oversized chunked POST body", &r, 413, "body is too large");
    unchanged(&stack, "oversized chunked POST body");

    // Wrong methods and unknown paths.
    for (method, path, allow) in [
        ("DELETE", "/user", "GET, HEAD"),
        ("GET", "/login", "POST"),
        ("PUT", "/logout", "POST"),
        ("POST", "/callback", "GET, HEAD"),
    ] {
        let url = Url::parse(&stack.url(path)).unwrap();
        let r = browser.request(method, &url, &[("origin", &origin)], None);
        let case = format!("{method} {path}");
        pages.error(&case, &r, 405, "does not accept that method");
        assert_eq!(r.header("allow"), Some(allow), "{case}: the Allow header");
        unchanged(&stack, &case);
    }
    for path in ["/nope", "/user/", "/.env", "/callback/x"] {
        let r = browser.get(&stack.url(path));
        pages.error(path, &r, 404, "There is no page at this address");
    }
    // Sent byte for byte (an URL library would normalise the dot segments away).
    for path in ["/%2e%2e/etc/passwd", "/../user", "/user%2f..%2flogin"] {
        let r = raw_http::send(stack.host.port(), &format!("GET {path} HTTP/1.1\r\n"), b"")
            .expect("a response");
        pages.raw_error(path, &r, 404, "There is no page at this address");
    }
    unchanged(&stack, "unknown paths");

    // Cross-site POSTs: refused, the session untouched.
    let evil = "http://evil.example";
    let logout_form = format!("csrf={csrf}").into_bytes();
    let r = post(&mut browser, "/logout", evil, logout_form.clone(), FORM);
    pages.error(
        "cross-site POST /logout",
        &r,
        403,
        "Cross-site request refused",
    );
    assert!(
        r.set_cookie("oidc_session").is_none(),
        "the session cookie is kept"
    );
    unchanged(&stack, "cross-site POST /logout");
    still_logged_in(&mut browser, "cross-site POST /logout");
    let r = post(&mut browser, "/refresh", evil, logout_form.clone(), FORM);
    pages.error(
        "cross-site POST /refresh",
        &r,
        403,
        "Cross-site request refused",
    );
    unchanged(&stack, "cross-site POST /refresh");
    let r = post(&mut browser, "/login", evil, b"scope=openid".to_vec(), FORM);
    pages.error(
        "cross-site POST /login",
        &r,
        403,
        "Cross-site request refused",
    );
    unchanged(&stack, "cross-site POST /login");
    let r = post(
        &mut browser,
        "/logout",
        &origin,
        b"csrf=wrong-token-value".to_vec(),
        FORM,
    );
    pages.error(
        "POST /logout with a wrong csrf",
        &r,
        403,
        "form has expired",
    );
    unchanged(&stack, "POST /logout with a wrong csrf");
    still_logged_in(&mut browser, "POST /logout with a wrong csrf");

    // Malformed queries and forms.
    let mut stranger = Browser::new();
    for (case, query) in [
        ("duplicated query parameter", "state=a&state=b"),
        ("query not UTF-8", "state=%C3%28"),
        ("query with a control character", "state=a%0Ab"),
    ] {
        let r = get(&mut stranger, &with_query(&stack, "/callback", query));
        pages.error(case, &r, 400, "Malformed request");
    }
    for (case, body, ctype, message) in [
        (
            "form not UTF-8",
            b"scope=openid%FF".to_vec(),
            FORM,
            "Malformed request",
        ),
        (
            "form with duplicated scope",
            b"scope=openid&scope=x".to_vec(),
            FORM,
            "appears more than once",
        ),
        (
            "form as JSON",
            br#"{"scope":"openid"}"#.to_vec(),
            "application/json",
            "Malformed request",
        ),
        (
            "scope without openid",
            b"scope=profile+email".to_vec(),
            FORM,
            "must include `openid`",
        ),
        (
            "scope with a quote",
            b"scope=openid+%22x".to_vec(),
            FORM,
            "characters a scope may not have",
        ),
    ] {
        let r = post(&mut stranger, "/login", &origin, body, ctype);
        pages.error(case, &r, 400, message);
        unchanged(&stack, case);
    }

    pages.assert_no_secrets(&secrets);
    still_logged_in(&mut browser, "the end");
    unchanged(&stack, "the end");
    assert!(stack.host_running(), "the host survived every case");
    browser.get(&stack.url("/healthz")).assert_status(200);
}
