//! Whole flows through `app::handle` against an in-process fake IdP: the routes,
//! their statuses, cookies and what they leave in the store, including every
//! bad-input case. (The built .wasm is tested against real parts in testing/e2e.)

use crate::app::{Platform, handle};
use crate::ports::{HttpError, HttpRequest};
use crate::request::Request;
use crate::response::Response;
use crate::testing::MemoryStore;
use crate::testing::vars;
use crate::testing::{CountingRandom, FakeHttp, FixedClock, json_response};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://idp.example/realms/demo";
const BASE: &str = "https://app.example";

/// How the fake IdP behaves; tests change it between steps.
#[derive(Clone)]
struct IdpState {
    nonce: String,
    sub: String,
    userinfo_sub: Option<String>,
    refresh_error: Option<&'static str>,
    down: Option<HttpError>,
    /// Every answer is a 200 whose body is not JSON.
    garbage: bool,
    /// Bytes the token endpoint sends after its JSON answer.
    token_trailer: &'static str,
    /// The token endpoint refuses authorization codes with this error.
    code_error: Option<&'static str>,
    access_counter: u32,
    /// Every token it issued (access, refresh and ID tokens).
    issued: Vec<String>,
    /// With private_key_jwt: the token endpoint takes no Basic credentials.
    private_key_jwt: bool,
    /// The form of every token and revocation request, oldest first.
    client_forms: Vec<HashMap<String, String>>,
    /// DPoP: token and userinfo requests must carry a proof.
    dpop_required: bool,
    /// How many token requests in a row get a `use_dpop_nonce` challenge.
    dpop_challenges: u32,
    /// The `token_type` the token endpoint answers.
    token_type: &'static str,
    /// The header and claims of every DPoP proof received, oldest first.
    dpop_proofs: Vec<(Value, Value)>,
    /// PAR: discovery names the endpoint, which answers this.
    par_answer: Option<(u16, Value)>,
    /// The forms pushed to it.
    pushed: Vec<HashMap<String, String>>,
}

/// The header and claims of a request's DPoP proof (verified by `es256`'s
/// and the e2e fake IdP's tests; here only read).
fn dpop_proof(req: &HttpRequest) -> Option<(Value, Value)> {
    use base64::Engine;
    let proof = req.headers().get("dpop")?.to_str().ok()?;
    let mut parts = proof.split('.').map(|p| {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .ok()?;
        serde_json::from_slice::<Value>(&bytes).ok()
    });
    Some((parts.next()??, parts.next()??))
}

struct World {
    kv: MemoryStore,
    clock: FixedClock,
    rng: CountingRandom,
    http: FakeHttp,
    idp: Rc<RefCell<IdpState>>,
    vars: crate::testing::MapVars,
    cookies: HashMap<String, String>,
    /// Every cookie value the app ever set.
    cookie_values: Vec<String>,
}

fn idp(state: Rc<RefCell<IdpState>>) -> FakeHttp {
    FakeHttp::new(move |req: &HttpRequest| {
        let mut s = state.borrow_mut();
        if let Some(e) = &s.down {
            return Err(e.clone());
        }
        if s.garbage {
            return Ok(http::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(b"<html>not what you asked for".to_vec())
                .unwrap());
        }
        let path = req.uri().path().to_owned();
        match path.as_str() {
            "/realms/demo/.well-known/openid-configuration" => {
                let mut doc = test_support::discovery(ISS);
                if s.par_answer.is_some() {
                    doc["pushed_authorization_request_endpoint"] = json!(format!("{ISS}/par"));
                }
                json_response(200, &doc)
            }
            "/realms/demo/par" => {
                let body = String::from_utf8(req.body().clone()).unwrap();
                s.pushed.push(form(&body));
                let (status, answer) = s.par_answer.clone().expect("PAR is on");
                json_response(status, &answer)
            }
            "/realms/demo/jwks" => json_response(
                200,
                &json!({"keys": [test_support::rsa().public_jwk("k1")]}),
            ),
            "/realms/demo/token" => {
                let body = String::from_utf8(req.body().clone()).unwrap();
                s.client_forms.push(form(&body));
                if s.dpop_required {
                    let proof = dpop_proof(req).expect("a DPoP proof");
                    s.dpop_proofs.push(proof);
                    if s.dpop_challenges > 0 {
                        s.dpop_challenges -= 1;
                        let mut r = json_response(400, &json!({"error": "use_dpop_nonce"}))?;
                        r.headers_mut()
                            .insert("dpop-nonce", "srv-nonce".parse().unwrap());
                        return Ok(r);
                    }
                }
                assert_eq!(
                    req.headers()
                        .get("authorization")
                        .is_some_and(|a| a.to_str().unwrap().starts_with("Basic ")),
                    !s.private_key_jwt
                );
                if body.contains("grant_type=refresh_token") {
                    if let Some(err) = s.refresh_error {
                        return json_response(400, &json!({"error": err}));
                    }
                } else {
                    assert!(
                        body.contains("code_verifier="),
                        "PKCE verifier must be sent"
                    );
                    if let Some(err) = s.code_error {
                        return json_response(400, &json!({"error": err}));
                    }
                }
                s.access_counter += 1;
                let id_token = test_support::rsa().sign(
                    Some("k1"),
                    &json!({"iss": ISS, "aud": "client1", "sub": s.sub, "exp": NOW + 300, "iat": NOW,
                            "nonce": s.nonce, "sid": "sid-1", "preferred_username": "alice<b>"}),
                );
                let access_token = format!("at-{}-Qz9", s.access_counter);
                let refresh_token = "rt-1-Qz9".to_owned();
                s.issued.extend([
                    access_token.clone(),
                    refresh_token.clone(),
                    id_token.clone(),
                ]);
                let mut answer = json_response(
                    200,
                    &json!({"access_token": access_token, "token_type": s.token_type,
                    "expires_in": 300, "refresh_token": refresh_token, "id_token": id_token}),
                );
                if let Ok(r) = &mut answer {
                    r.body_mut().extend_from_slice(s.token_trailer.as_bytes());
                }
                answer
            }
            "/realms/demo/revoke" => {
                let body = String::from_utf8(req.body().clone()).unwrap();
                s.client_forms.push(form(&body));
                assert!(
                    body.contains("token=rt-1-Qz9")
                        && body.contains("token_type_hint=refresh_token"),
                    "{body}"
                );
                json_response(200, &json!({}))
            }
            "/realms/demo/userinfo" if s.dpop_required => {
                let (_, claims) = dpop_proof(req).expect("a DPoP proof at userinfo");
                let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
                assert!(auth.starts_with("DPoP at-"), "{auth}");
                assert!(claims["ath"].is_string());
                s.dpop_proofs.push((Value::Null, claims));
                json_response(200, &json!({"sub": s.sub}))
            }
            "/realms/demo/userinfo" => json_response(
                200,
                &json!({"sub": s.userinfo_sub.clone().unwrap_or(s.sub.clone()), "email": "a@example.test"}),
            ),
            _ => json_response(404, &json!({})),
        }
    })
}

impl World {
    fn new() -> Self {
        let state = Rc::new(RefCell::new(IdpState {
            nonce: String::new(),
            sub: "alice".into(),
            userinfo_sub: None,
            refresh_error: None,
            down: None,
            garbage: false,
            token_trailer: "",
            code_error: None,
            access_counter: 0,
            issued: Vec::new(),
            private_key_jwt: false,
            client_forms: Vec::new(),
            dpop_required: false,
            dpop_challenges: 0,
            token_type: "Bearer",
            dpop_proofs: Vec::new(),
            par_answer: None,
            pushed: Vec::new(),
        }));
        World {
            kv: MemoryStore::new(),
            clock: FixedClock::at(NOW),
            rng: CountingRandom::default(),
            http: idp(state.clone()),
            idp: state,
            vars: vars(),
            cookies: HashMap::new(),
            cookie_values: Vec::new(),
        }
    }

    fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !self.cookies.is_empty() && !headers.iter().any(|(k, _)| *k == "cookie") {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            all.push(("cookie".into(), jar.join("; ")));
        }
        if method == "POST" {
            all.push((
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
        }
        let req = Request {
            method: method.into(),
            path,
            query,
            headers: all,
            body: body.as_bytes().to_vec(),
        };
        let p = Platform {
            vars: &self.vars,
            kv: &self.kv,
            http: &self.http,
            clock: &self.clock,
            rng: &self.rng,
        };
        let resp = handle(&req, &p);
        for (k, v) in &resp.headers {
            if k == "set-cookie" {
                let (name, rest) = v.split_once('=').unwrap();
                let value = rest.split(';').next().unwrap();
                if v.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                    self.cookie_values.push(value.to_owned());
                }
            }
        }
        resp
    }

    fn get(&mut self, target: &str) -> Response {
        self.send("GET", target, &[], "")
    }

    fn post(&mut self, target: &str, body: &str) -> Response {
        self.send("POST", target, &[("origin", BASE)], body)
    }

    /// POST /login; returns the authorization URL's parameters.
    fn start_login(&mut self, scope: &str) -> HashMap<String, String> {
        let r = self.post("/login", &format!("scope={}", scope.replace(' ', "+")));
        assert_eq!(r.status, 303, "{}", r.body_text());
        let url = url::Url::parse(r.header("location").unwrap()).unwrap();
        assert!(url.as_str().starts_with(&format!("{ISS}/auth?")));
        let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
        self.idp.borrow_mut().nonce = params["nonce"].clone();
        params
    }

    fn callback_url(params: &HashMap<String, String>) -> String {
        format!(
            "/callback?code=c1&state={}&iss={}",
            params["state"],
            urlencode(ISS)
        )
    }

    fn login(&mut self) -> String {
        let params = self.start_login("openid profile offline_access");
        let r = self.get(&Self::callback_url(&params));
        assert_eq!(r.status, 303, "{}", r.body_text());
        assert_eq!(r.header("location"), Some("/user"));
        self.cookies["__Host-oidc_session"].clone()
    }

    fn csrf(&mut self) -> String {
        let page = self.get("/user").body_text();
        let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
        page[at..at + 43].to_owned()
    }
}

fn form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn happy_path_login_user_refresh_logout() {
    let mut w = World::new();
    let home = w.get("/");
    assert_eq!(home.status, 200);
    assert!(home.body_text().contains("Confidential Client (local @ "));
    assert!(home.body_text().contains("value=\"openid profile\""));

    let params = w.start_login("openid profile offline_access");
    for p in [
        "state",
        "nonce",
        "code_challenge",
        "redirect_uri",
        "client_id",
    ] {
        assert!(params.contains_key(p), "{p}");
    }
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["prompt"], "consent");
    assert_eq!(params["redirect_uri"], format!("{BASE}/callback"));
    assert!(w.cookies.contains_key("__Host-oidc_login"));
    assert_eq!(w.kv.keys_with_prefix("login:").len(), 1);

    let r = w.get(&World::callback_url(&params));
    assert_eq!(r.status, 303);
    let set_cookies: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(
        set_cookies
            .iter()
            .any(|c| c.starts_with("__Host-oidc_session=")
                && c.contains("HttpOnly")
                && c.contains("Secure")
                && c.contains("SameSite=Lax")
                && c.contains("Path=/"))
    );
    assert!(
        w.kv.keys_with_prefix("login:").is_empty(),
        "the login transaction is consumed"
    );
    let sid = w.cookies["__Host-oidc_session"].clone();
    assert_eq!(w.kv.keys_with_prefix("sess:"), vec![session_key(&sid)]);

    let (reads, writes) = (w.kv.reads.get(), w.kv.writes.get());
    let user = w.get("/user");
    assert_eq!(user.status, 200);
    assert_eq!(
        (w.kv.reads.get() - reads, w.kv.writes.get() - writes),
        (1, 0),
        "GET /user: one read, no write"
    );
    let page = user.body_text();
    assert!(page.contains("<span id=\"username\">alice&lt;b&gt;</span>"));
    assert!(page.contains("at-1-Qz9") && page.contains("rt-1-Qz9"));
    assert_eq!(user.header("cache-control"), Some("no-store"));
    assert!(w.get("/").body_text().contains("href=\"/user\""));

    let csrf = w.csrf();
    let r = w.post("/refresh", &format!("csrf={csrf}"));
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/user"));
    assert!(w.get("/user").body_text().contains("at-2-Qz9"));

    let r = w.post("/logout", &format!("csrf={csrf}"));
    assert_eq!(r.status, 303);
    let to = url::Url::parse(r.header("location").unwrap()).unwrap();
    assert_eq!(to.path(), "/realms/demo/logout");
    let q: HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["post_logout_redirect_uri"], format!("{BASE}/"));
    assert!(q.contains_key("id_token_hint"));
    assert_eq!(
        w.http.calls_to("/revoke"),
        1,
        "the refresh token is revoked at logout"
    );
    assert!(w.kv.keys_with_prefix("sess:").is_empty());
    assert_eq!(w.get("/user").status, 303);
}

#[test]
fn tampered_state_missing_code_and_bad_iss_leave_the_store_unchanged() {
    let mut w = World::new();
    let params = w.start_login("openid");
    let before = w.kv.snapshot();
    let cases = [
        (
            format!("/callback?code=c1&state=tampered&iss={}", urlencode(ISS)),
            400,
        ),
        (
            format!("/callback?state={}&iss={}", params["state"], urlencode(ISS)),
            400,
        ),
        (
            format!(
                "/callback?code=c1&state={}&iss=https%3A%2F%2Fevil.example",
                params["state"]
            ),
            400,
        ),
        (format!("/callback?code=c1&state={}", params["state"]), 400),
        (
            format!("/callback?code=c1&code=c2&state={}", params["state"]),
            400,
        ),
        ("/callback?code=c1&state=%FF".to_string(), 400),
    ];
    for (url, status) in cases {
        let r = w.get(&url);
        assert_eq!(r.status, status, "{url}: {}", r.body_text());
        assert_eq!(w.kv.snapshot(), before, "{url}");
    }
    // The real callback still works afterwards.
    assert_eq!(w.get(&World::callback_url(&params)).status, 303);
}

#[test]
fn replayed_callback_is_refused() {
    let mut w = World::new();
    let params = w.start_login("openid");
    let url = World::callback_url(&params);
    let login_cookie = w.cookies["__Host-oidc_login"].clone();
    assert_eq!(w.get(&url).status, 303);
    let snapshot = w.kv.snapshot();
    let r = w.send(
        "GET",
        &url,
        &[("cookie", &format!("__Host-oidc_login={login_cookie}"))],
        "",
    );
    assert_eq!(r.status, 400);
    assert!(r.body_text().contains("Unknown login state"));
    assert_eq!(w.kv.snapshot(), snapshot);
}

#[test]
fn callback_on_another_replica_names_the_cause() {
    let mut w = World::new();
    let params = w.start_login("openid");
    let mut other = World::new(); // a replica with its own store
    other.cookies = w.cookies.clone();
    let r = other.get(&World::callback_url(&params));
    assert_eq!(r.status, 400);
    assert!(r.body_text().contains("Unknown login state"));
    assert!(other.kv.snapshot().is_empty());
}

#[test]
fn idp_error_is_shown_escaped() {
    let mut w = World::new();
    let params = w.start_login("openid");
    let r = w.get(&format!(
        "/callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state={}&iss={}",
        params["state"],
        urlencode(ISS)
    ));
    assert_eq!(r.status, 403);
    let body = r.body_text();
    assert!(body.contains("access_denied"));
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !body.contains("<script>"));
    assert!(
        w.kv.snapshot()
            .keys()
            .all(|k| k.starts_with("cache:") || k.starts_with("gc:")),
        "no session, no transaction left (only caches and upkeep's bookkeeping)"
    );
}

#[test]
fn an_expired_pushed_request_says_to_log_in_again_and_leaves_no_login() {
    let mut w = World::new();
    let params = w.start_login("openid");
    let r = w.get(&format!(
        "/callback?error=invalid_request_uri&state={}&iss={}",
        params["state"],
        urlencode(ISS)
    ));
    assert_eq!(r.status, 400);
    let (next, _) = next_step(&r);
    assert!(next.contains("expired at the identity provider"), "{next}");
    assert!(w.kv.keys_with_prefix("login:").is_empty());
    assert!(!w.cookies.contains_key("__Host-oidc_login"));
}

#[test]
fn id_token_and_userinfo_rejections_create_no_session() {
    for break_it in [
        (|s: &mut IdpState| s.nonce = "other".into()) as fn(&mut IdpState),
        |s: &mut IdpState| s.userinfo_sub = Some("mallory".into()),
    ] {
        let mut w = World::new();
        let params = w.start_login("openid");
        break_it(&mut w.idp.borrow_mut());
        let r = w.get(&World::callback_url(&params));
        assert_eq!(r.status, 401, "{}", r.body_text());
        assert!(w.kv.keys_with_prefix("sess:").is_empty());
        assert!(w.kv.keys_with_prefix("login:").is_empty());
        assert!(!w.cookies.contains_key("__Host-oidc_session"));
    }
}

#[test]
fn session_fixation_old_cookie_is_not_reused() {
    let mut w = World::new();
    let first = w.login();
    let second = w.login();
    assert_ne!(first, second);
    assert_eq!(
        w.kv.keys_with_prefix("sess:"),
        vec![session_key(&second)],
        "the pre-login session is gone"
    );
}

#[test]
fn garbage_and_unknown_session_cookies_mean_not_logged_in() {
    let mut w = World::new();
    for cookie in [
        "__Host-oidc_session=garbage",
        "__Host-oidc_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
    ] {
        let r = w.send("GET", "/user", &[("cookie", cookie)], "");
        assert_eq!(r.status, 303);
        assert_eq!(r.header("location"), Some("/"));
    }
    assert!(w.kv.snapshot().is_empty());
}

#[test]
fn cross_site_and_tokenless_posts_are_refused() {
    let mut w = World::new();
    w.login();
    let csrf = w.csrf();
    let before = w.kv.snapshot();
    for (origin, body) in [
        ("https://evil.example", format!("csrf={csrf}")),
        (BASE, String::new()),
        (BASE, "csrf=wrong".into()),
        ("null", format!("csrf={csrf}")),
    ] {
        for path in ["/logout", "/refresh"] {
            let r = w.send("POST", path, &[("origin", origin)], &body);
            assert_eq!(r.status, 403, "{path} from {origin}");
        }
    }
    let r = w.send(
        "POST",
        "/login",
        &[("origin", "https://evil.example")],
        "scope=openid",
    );
    assert_eq!(r.status, 403);
    assert_eq!(w.kv.snapshot(), before);
}

#[test]
fn refresh_with_another_sub_or_invalid_grant_ends_the_session() {
    for (change, status) in [
        (
            (|s: &mut IdpState| s.sub = "mallory".into()) as fn(&mut IdpState),
            401,
        ),
        (
            |s: &mut IdpState| s.refresh_error = Some("invalid_grant"),
            401,
        ),
    ] {
        let mut w = World::new();
        w.login();
        let csrf = w.csrf();
        change(&mut w.idp.borrow_mut());
        let r = w.post("/refresh", &format!("csrf={csrf}"));
        assert_eq!(r.status, status, "{}", r.body_text());
        assert!(w.kv.keys_with_prefix("sess:").is_empty());
        assert_eq!(w.get("/user").status, 303);
    }
}

/// A refresh that finds another request holding the session's lock never
/// calls the IdP: it waits, and when the other is still busy it says so and
/// leaves the session as it was (never a logout).
#[test]
fn a_refresh_while_another_holds_the_lock_never_calls_the_idp() {
    let mut w = World::new();
    let cookie = w.login();
    let csrf = w.csrf();
    let ticket = crate::ticket::Ticket::parse(&cookie).unwrap();
    let sessions = crate::session::Sessions {
        kv: &w.kv,
        clock: &w.clock,
        rng: &w.rng,
        lifetimes: crate::session::Lifetimes {
            idle: 1800,
            absolute: 28800,
        },
        lock_hold: 25,
    };
    let held = sessions.try_lock(ticket.id()).unwrap().expect("free");
    let grants = w.http.calls_to("/token");
    // The held lock's counters count the waiter's attempts; the rest is unchanged.
    let unlocked = |s| {
        without_upkeep(s)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("lock:"))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let before = unlocked(w.kv.snapshot());
    let r = w.post("/refresh", &format!("csrf={csrf}"));
    assert_eq!(r.status, 409, "{}", r.body_text());
    assert!(
        r.body_text().contains("/user"),
        "points back to the user page"
    );
    assert_eq!(w.http.calls_to("/token"), grants, "no grant sent");
    assert!(
        unlocked(w.kv.snapshot()) == before,
        "the session is as it was"
    );
    held.release(&w.kv);
    assert_eq!(w.post("/refresh", &format!("csrf={csrf}")).status, 303);
    assert_eq!(
        w.http.calls_to("/token"),
        grants + 1,
        "free again: one grant"
    );
}

#[test]
fn other_refresh_failures_keep_the_session() {
    let mut w = World::new();
    w.login();
    let csrf = w.csrf();
    w.idp.borrow_mut().refresh_error = Some("server_error");
    let before = without_upkeep(w.kv.snapshot());
    assert_eq!(w.post("/refresh", &format!("csrf={csrf}")).status, 502);
    assert_eq!(without_upkeep(w.kv.snapshot()), before);
    assert_eq!(w.get("/user").status, 200);
}

#[test]
fn idp_unreachable_slow_or_garbage_stores_nothing() {
    for (fault, status) in [
        (HttpError::Unreachable("refused".into()), 502),
        (HttpError::Timeout, 504),
    ] {
        let mut w = World::new();
        w.idp.borrow_mut().down = Some(fault);
        let r = w.post("/login", "scope=openid");
        assert_eq!(r.status, status);
        assert!(w.kv.snapshot().is_empty());
        assert!(!w.cookies.contains_key("__Host-oidc_login"));
    }

    // An IdP answering garbage at discovery: nothing stored, no login started.
    let mut w = World::new();
    w.idp.borrow_mut().garbage = true;
    let r = w.post("/login", "scope=openid");
    assert_eq!(r.status, 502, "{}", r.body_text());
    assert!(r.body_text().contains("invalid response"));
    assert!(w.kv.snapshot().is_empty());
    assert!(!w.cookies.contains_key("__Host-oidc_login"));

    // ...or at the token endpoint, once the login started: no session.
    let mut w = World::new();
    let params = w.start_login("openid");
    w.idp.borrow_mut().garbage = true;
    let r = w.get(&World::callback_url(&params));
    assert_eq!(r.status, 502, "{}", r.body_text());
    assert!(w.kv.keys_with_prefix("sess:").is_empty());
    assert!(w.kv.keys_with_prefix("login:").is_empty());
    assert!(!w.cookies.contains_key("__Host-oidc_session"));
    assert!(!w.cookies.contains_key("__Host-oidc_login"));

    // ...or a good token answer with bytes after it: malformed, no session.
    let mut w = World::new();
    let params = w.start_login("openid");
    w.idp.borrow_mut().token_trailer = "{\"access_token\": \"other\"}";
    let r = w.get(&World::callback_url(&params));
    assert_eq!(r.status, 502, "{}", r.body_text());
    assert!(r.body_text().contains("malformed"), "{}", r.body_text());
    assert!(w.kv.keys_with_prefix("sess:").is_empty());
    assert!(!w.cookies.contains_key("__Host-oidc_session"));
}

#[test]
fn store_down_gives_503_but_healthz_stays_up() {
    let mut w = World::new();
    w.login();
    w.kv.down.set(true);
    let r = w.get("/user");
    assert_eq!(r.status, 503);
    assert!(r.body_text().contains("session store is unavailable"));
    assert_eq!(w.get("/readyz").status, 503);
    assert_eq!(w.get("/healthz").status, 200);
    w.kv.down.set(false);
    assert_eq!(w.get("/user").status, 200);
    assert_eq!(w.get("/readyz").status, 200);
}

#[test]
fn missing_configuration_names_the_variable() {
    let mut w = World::new();
    w.vars.0.remove("oidc_issuer_url");
    let r = w.get("/");
    assert_eq!(r.status, 503);
    assert!(r.body_text().contains("oidc_issuer_url"));
    assert!(
        r.body_text().contains(
            "spin up --variable oidc_issuer_url=https://keycloak.example.com/realms/demo"
        ),
        "an example value: {}",
        r.body_text()
    );
    assert_eq!(w.get("/healthz").status, 200);
    assert_eq!(w.get("/readyz").status, 503);
}

/// The sentence under what happened on an error page, and whether it links home.
fn next_step(r: &Response) -> (String, bool) {
    let body = r.body_text();
    let next = body
        .split_once("<p id=\"next\">")
        .and_then(|(_, rest)| rest.split_once("</p>"))
        .map(|(next, _)| next.to_owned())
        .unwrap_or_default();
    (next, body.contains("<a href=\"/\">"))
}

#[test]
fn every_error_page_says_what_to_do_next_and_links_home() {
    let mut w = World::new();
    w.login();
    let mut pages = vec![
        ("404", w.get("/nope")),
        ("405", w.send("DELETE", "/user", &[], "")),
        ("400", w.get("/callback?code=x")),
        ("403", w.post("/refresh", "csrf=wrong")),
    ];
    w.kv.down.set(true);
    pages.push(("503 store", w.get("/user")));
    w.kv.down.set(false);
    // Discovery is not cached yet in a new world, so a login asks the IdP.
    for (what, fault) in [
        ("504", HttpError::Timeout),
        ("502", HttpError::Unreachable("refused".into())),
    ] {
        let mut fresh = World::new();
        fresh.idp.borrow_mut().down = Some(fault);
        pages.push((what, fresh.post("/login", "scope=openid")));
    }
    w.vars.0.remove("client_id");
    pages.push(("503 config", w.get("/")));
    let mut nexts = Vec::new();
    for (what, r) in &pages {
        assert!(r.status >= 400, "{what}: {}", r.status);
        let (next, home) = next_step(r);
        assert!(home, "{what}: no link back to /: {}", r.body_text());
        assert!(
            next.ends_with('.') && next.len() > 20 && next.matches(". ").count() == 0,
            "{what}: one sentence on what to do next, got {next:?}"
        );
        nexts.push(next);
    }
    assert!(nexts[4].contains("key-value store"), "{:?}", nexts[4]);
    assert!(nexts[7].contains("operator must set"), "{:?}", nexts[7]);
}

#[test]
fn unknown_paths_and_wrong_methods() {
    let mut w = World::new();
    assert_eq!(w.get("/nope").status, 404);
    let r = w.send("DELETE", "/user", &[], "");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = w.get("/login");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(w.send("POST", "/healthz", &[], "").status, 405);
    let head = w.send("HEAD", "/", &[], "");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let css = w.get("/style.css");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
}

#[test]
fn bad_scopes_and_forms_are_400() {
    let mut w = World::new();
    for body in ["scope=profile", "scope=openid%22%3E", "scope=a&scope=b"] {
        assert_eq!(w.post("/login", body).status, 400, "{body}");
    }
    let r = w.send(
        "POST",
        "/login",
        &[("origin", BASE), ("content-type", "application/json")],
        "{}",
    );
    assert_eq!(r.status, 400);
    assert!(w.kv.keys_with_prefix("login:").is_empty());
}

#[test]
fn every_response_carries_security_headers() {
    let mut w = World::new();
    for r in [w.get("/"), w.get("/nope"), w.post("/login", "scope=openid")] {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert!(
            r.header("content-security-policy")
                .unwrap()
                .contains("form-action 'self' https://idp.example")
        );
    }
}

#[test]
fn expired_session_is_deleted_and_redirects() {
    let mut w = World::new();
    w.login();
    w.clock.advance(3600);
    assert_eq!(w.get("/user").status, 303);
    assert!(w.kv.keys_with_prefix("sess:").is_empty());
}

/// The idle lifetime (1800 s by default, as in spin.toml) slides with visits,
/// recorded at most once per tenth of it: a user who keeps using the app stays
/// logged in.
#[test]
fn visits_keep_the_session_alive_with_a_write_per_tenth_of_the_idle_timeout() {
    let mut w = World::new();
    w.login();
    let store_ops = |w: &mut World, path: &str| {
        let (reads, writes) = (w.kv.reads.get(), w.kv.writes.get());
        assert_eq!(w.get(path).status, 200, "{path}");
        (w.kv.reads.get() - reads, w.kv.writes.get() - writes)
    };
    w.clock.advance(179);
    assert_eq!(store_ops(&mut w, "/user"), (1, 0), "not due yet");
    w.clock.advance(1);
    // The rare write: under the session's lock (3 increments, 3 deletes, and
    // one upkeep registration: a cursor check, an increment, an entry), the
    // record read again, written once, and the tombstone checked.
    assert_eq!(store_ops(&mut w, "/user"), (4, 9), "due: recorded once");
    assert_eq!(store_ops(&mut w, "/user"), (1, 0));
    w.clock.advance(1500);
    assert_eq!(store_ops(&mut w, "/"), (4, 9), "the login page counts too");
    w.clock.advance(1500);
    assert_eq!(w.get("/user").status, 200, "alive 3180 s after login");
    w.clock.advance(1800);
    assert_eq!(
        w.get("/user").status,
        303,
        "idle for the whole idle timeout"
    );
}

/// Every page a scenario produced, and every secret it sent or was sent.
#[derive(Default)]
struct Exposure {
    pages: Vec<(&'static str, Response)>,
    secrets: Vec<String>,
}

impl Exposure {
    /// Keeps `r`, which must be the error page `status`.
    fn page(&mut self, what: &'static str, r: Response, status: u16) {
        assert_eq!(r.status, status, "{what}: {}", r.body_text());
        self.pages.push((what, r));
    }

    /// The secrets of a finished scenario: the client secret, every token the
    /// IdP issued, every cookie value set.
    fn secrets_of(&mut self, w: &World) {
        self.secrets.push(w.vars.0["client_secret"].clone());
        self.secrets.extend(w.idp.borrow().issued.iter().cloned());
        self.secrets.extend(w.cookie_values.iter().cloned());
    }
}

/// A world whose client secret is recognisable.
fn world_with_secret() -> World {
    let mut w = World::new();
    w.vars
        .0
        .insert("client_secret".into(), "client-secret-Qz9".into());
    w
}

fn callback_with_code(params: &HashMap<String, String>, code: &str) -> String {
    format!(
        "/callback?code={code}&state={}&iss={}",
        params["state"],
        urlencode(ISS)
    )
}

#[test]
fn secrets_never_appear_on_error_pages_or_in_log_lines() {
    crate::log::captured::take();
    let mut e = Exposure::default();
    e.secrets
        .extend(["code-1-Qz9", "code-2-Qz9", "code-3-Qz9"].map(String::from));

    // The callback: a wrong state, the IdP refusing the code, a rejected ID
    // token, a userinfo for someone else, garbage from the token endpoint,
    // and a replay of a completed login, each with a code and the login cookie.
    let mut w = world_with_secret();
    let params = w.start_login("openid");
    e.secrets
        .extend([params["state"].clone(), params["nonce"].clone()]);
    let wrong_state = format!(
        "/callback?code=code-1-Qz9&state=wrong&iss={}",
        urlencode(ISS)
    );
    e.page("wrong state", w.get(&wrong_state), 400);
    e.secrets_of(&w);
    type Failure = (&'static str, fn(&mut IdpState), u16);
    let failures: [Failure; 4] = [
        (
            "code refused",
            |s| s.code_error = Some("invalid_grant"),
            400,
        ),
        ("id token rejected", |s| s.nonce = "other".into(), 401),
        (
            "userinfo of another user",
            |s| s.userinfo_sub = Some("mallory".into()),
            401,
        ),
        ("token endpoint garbage", |s| s.garbage = true, 502),
    ];
    for (what, break_it, status) in failures {
        let mut w = world_with_secret();
        let params = w.start_login("openid");
        e.secrets
            .extend([params["state"].clone(), params["nonce"].clone()]);
        break_it(&mut w.idp.borrow_mut());
        e.page(
            what,
            w.get(&callback_with_code(&params, "code-2-Qz9")),
            status,
        );
        e.secrets_of(&w);
    }
    let mut w = world_with_secret();
    let params = w.start_login("openid");
    let login_cookie = w.cookies["__Host-oidc_login"].clone();
    assert_eq!(
        w.get(&callback_with_code(&params, "code-3-Qz9")).status,
        303
    );
    w.cookies.insert("__Host-oidc_login".into(), login_cookie);
    e.page(
        "replayed callback",
        w.get(&callback_with_code(&params, "code-3-Qz9")),
        400,
    );
    e.secrets_of(&w);

    // A logged-in session: forms without the CSRF token, refreshes the IdP
    // fails or refuses, the store down, and the ID token as a logout token.
    let mut w = world_with_secret();
    w.login();
    let csrf = w.csrf();
    e.secrets.push(csrf.clone());
    e.page("logout without csrf", w.post("/logout", "csrf=wrong"), 403);
    w.idp.borrow_mut().down = Some(HttpError::Unreachable("refused".into()));
    e.page(
        "refresh, IdP down",
        w.post("/refresh", &format!("csrf={csrf}")),
        502,
    );
    w.idp.borrow_mut().down = None;
    w.idp.borrow_mut().refresh_error = Some("server_error");
    e.page(
        "refresh, IdP error",
        w.post("/refresh", &format!("csrf={csrf}")),
        502,
    );
    w.kv.down.set(true);
    e.page("store down", w.get("/user"), 503);
    w.kv.down.set(false);
    let id_token = w
        .idp
        .borrow()
        .issued
        .last()
        .cloned()
        .expect("a login issued tokens");
    e.page(
        "id token as logout token",
        w.send(
            "POST",
            "/backchannel-logout",
            &[],
            &format!("logout_token={id_token}"),
        ),
        400,
    );
    w.idp.borrow_mut().refresh_error = Some("invalid_grant");
    e.page(
        "refresh, grant revoked",
        w.post("/refresh", &format!("csrf={csrf}")),
        401,
    );
    e.secrets_of(&w);
    let mut w = world_with_secret();
    w.login();
    let csrf = w.csrf();
    e.secrets.push(csrf.clone());
    w.idp.borrow_mut().sub = "mallory".into();
    e.page(
        "refresh, another user",
        w.post("/refresh", &format!("csrf={csrf}")),
        401,
    );
    e.secrets_of(&w);

    let logged = crate::log::captured::take();
    assert!(
        logged.len() >= e.pages.len(),
        "every error is logged: {logged:?}"
    );
    assert!(e.secrets.len() > 30 && e.secrets.iter().all(|s| s.len() >= 8));
    for secret in &e.secrets {
        for (what, page) in &e.pages {
            assert!(
                !page.body_text().contains(secret.as_str()),
                "{what}: the page shows {secret}"
            );
            for (name, value) in page.headers.iter().filter(|(n, _)| n != "set-cookie") {
                assert!(
                    !value.contains(secret.as_str()),
                    "{what}: header {name} holds {secret}"
                );
            }
        }
        for line in &logged {
            assert!(
                !line.contains(secret.as_str()),
                "a log line holds {secret}: {line}"
            );
        }
    }
}

fn logout_token(claims: Value) -> String {
    test_support::rsa().sign(Some("k1"), &claims)
}

fn logout_claims(jti: &str) -> Value {
    json!({"iss": ISS, "aud": "client1", "iat": NOW, "exp": NOW + 120, "jti": jti, "sid": "sid-1",
           "events": {crate::oidc::logout_token::EVENT: {}}})
}

#[test]
fn backchannel_logout_ends_the_named_session_once() {
    let mut w = World::new();
    w.login();
    assert_eq!(w.get("/user").status, 200);
    let token = logout_token(logout_claims("j-1"));
    // Server to server: no cookies, no Origin.
    let r = w.send(
        "POST",
        "/backchannel-logout",
        &[("cookie", "")],
        &format!("logout_token={token}"),
    );
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(w.kv.keys_with_prefix("sess:").is_empty());
    assert_eq!(w.get("/user").status, 303);
    let replay = w.send(
        "POST",
        "/backchannel-logout",
        &[("cookie", "")],
        &format!("logout_token={token}"),
    );
    assert_eq!(replay.status, 400);
    assert!(replay.body_text().contains("already used"));
}

#[test]
fn backchannel_logout_by_sub_ends_all_of_the_users_sessions() {
    let mut w = World::new();
    w.login();
    let mut second_browser = World::new();
    std::mem::swap(&mut second_browser.cookies, &mut w.cookies);
    w.login();
    assert_eq!(w.kv.keys_with_prefix("sess:").len(), 2);
    let mut claims = logout_claims("j-2");
    claims.as_object_mut().unwrap().remove("sid");
    claims["sub"] = json!("alice");
    let r = w.send(
        "POST",
        "/backchannel-logout",
        &[],
        &format!("logout_token={}", logout_token(claims)),
    );
    assert_eq!(r.status, 200);
    assert!(w.kv.keys_with_prefix("sess:").is_empty());
}

#[test]
fn backchannel_logout_rejects_bad_tokens_and_keeps_sessions() {
    let mut w = World::new();
    w.login();
    let mut with_nonce = logout_claims("j-3");
    with_nonce["nonce"] = json!("n");
    let mut other_aud = logout_claims("j-4");
    other_aud["aud"] = json!("other");
    let bodies = [
        String::new(),
        "logout_token=garbage".into(),
        format!("logout_token={}", logout_token(with_nonce)),
        format!("logout_token={}", logout_token(other_aud)),
        format!(
            "logout_token={}",
            test_support::hs256_forgery(&logout_claims("j-5"), b"s3cret", Some("k1"))
        ),
        format!(
            "logout_token={}",
            test_support::rsa_other().sign(Some("k1"), &logout_claims("j-6"))
        ),
    ];
    for body in bodies {
        let r = w.send("POST", "/backchannel-logout", &[], &body);
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_eq!(w.kv.keys_with_prefix("sess:").len(), 1);
    assert_eq!(w.get("/user").status, 200);
}

/// The store key of a session cookie's ticket: `sess:<id>`, the part before the dot.
fn session_key(cookie: &str) -> String {
    format!("sess:{}", cookie.split_once('.').expect("a ticket").0)
}

/// The store without upkeep's bookkeeping (`gc:` keys), which a lock taken and
/// released leaves behind until its bucket is processed.
fn without_upkeep(
    snapshot: std::collections::BTreeMap<String, Vec<u8>>,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    snapshot
        .into_iter()
        .filter(|(k, _)| !k.starts_with("gc:"))
        .collect()
}

/// The text of the element with `id` on a page of ours (no markup inside it).
fn by_id(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    let end = start + page[start..].find('<')?;
    Some(page[start..end].to_owned())
}

#[test]
fn the_user_page_says_where_the_session_lives_and_when_tokens_expire() {
    let mut w = World::new();
    w.vars.0.insert("pod_name".into(), "replica-7".into());
    let cookie = w.login();
    w.vars.0.insert("pod_name".into(), "replica-8".into());
    let page = w.get("/user").body_text();
    assert_eq!(by_id(&page, "served-by").as_deref(), Some("replica-8"));
    assert_eq!(by_id(&page, "created-by").as_deref(), Some("replica-7"));
    // The fake store keeps counters as Spin's SQLite store does.
    assert_eq!(
        by_id(&page, "store").as_deref(),
        Some("Spin's local SQLite store: this replica's own")
    );
    let id = cookie.split('.').next().unwrap();
    assert_eq!(by_id(&page, "store-key"), Some(format!("sess:{id}")));
    assert!(!page.contains(&cookie), "the page never shows the cookie");
    assert_eq!(
        by_id(&page, "id-expires"),
        Some(crate::timefmt::utc(NOW + 300))
    );
    assert_eq!(
        by_id(&page, "access-expires"),
        Some(crate::timefmt::utc(NOW + 300))
    );
    assert!(
        by_id(&page, "access-token-kind")
            .unwrap()
            .starts_with("Opaque"),
        "the fake IdP's access tokens are opaque"
    );
    // The origin is in the readable part of the record, for redis-cli.
    let record = w.kv.snapshot()[&format!("sess:{id}")].clone();
    let line = record.split(|&b| b == b'\n').next().unwrap();
    let header: Value = serde_json::from_slice(line).unwrap();
    assert_eq!(header["created_by"], "replica-7");
    assert_eq!(header["store"], "spin-sqlite");
}

/// A world whose client authenticates with `private_key_jwt` and no secret.
fn world_with_private_key(key: &str) -> World {
    let mut w = World::new();
    w.vars.0.remove("client_secret");
    w.vars.0.insert(
        "token_endpoint_auth_method".into(),
        "private_key_jwt".into(),
    );
    w.vars.0.insert("client_private_key".into(), key.into());
    w.idp.borrow_mut().private_key_jwt = true;
    w
}

#[test]
fn private_key_jwt_sends_a_fresh_assertion_on_code_refresh_and_revocation() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
    use test_support::client_keys::{P256_D, P256_PEM, P256_THUMBPRINT};
    let mut w = world_with_private_key(P256_PEM);
    let jwks = w.get("/jwks.json");
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.header("content-type"), Some("application/json"));
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));
    assert!(!jwks.body_text().contains(P256_D));
    let set: JwkSet = serde_json::from_slice(&jwks.body).unwrap();
    assert_eq!(set.keys.len(), 1);
    assert_eq!(set.keys[0].common.key_id.as_deref(), Some(P256_THUMBPRINT));
    let key = DecodingKey::from_jwk(&set.keys[0]).unwrap();

    w.login();
    let csrf = w.csrf();
    w.post("/refresh", &format!("csrf={csrf}"));
    w.post("/logout", &format!("csrf={csrf}"));
    let forms = w.idp.borrow().client_forms.clone();
    assert_eq!(forms.len(), 3, "code, refresh and revocation");
    let mut jtis = Vec::new();
    for f in &forms {
        assert_eq!(f["client_id"], "client1");
        assert!(!f.contains_key("client_secret"));
        assert_eq!(
            f["client_assertion_type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[ISS]);
        v.set_issuer(&["client1"]);
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(&f["client_assertion"], &key, &v)
            .expect("signed by the key /jwks.json publishes")
            .claims;
        assert_eq!(claims["sub"], "client1");
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["exp"], NOW + 60);
        jtis.push(claims["jti"].clone());
    }
    jtis.dedup();
    assert_eq!(jtis.len(), 3, "one fresh assertion per request");
}

/// P256_JWK with an `x` that is not its `d`'s: only the full parse sees it.
fn mismatched_jwk() -> String {
    use test_support::client_keys::{P256_JWK, P256_Y};
    let mut jwk: Value = serde_json::from_str(P256_JWK).unwrap();
    jwk["x"] = serde_json::json!(P256_Y);
    jwk.to_string()
}

#[test]
fn a_key_that_fails_the_full_parse_is_refused_where_it_is_used() {
    let mut w = world_with_private_key(&mismatched_jwk());
    // Loading checks the key only cheaply, so pages that do not use it work.
    assert_eq!(w.get("/").status, 200);
    assert_eq!(w.get("/readyz").status, 503);
    let login = w.post("/login", "");
    // A login started with a good key, then the key replaced: the code
    // exchange, where the assertion is signed, gets the same page.
    let mut started = world_with_private_key(test_support::client_keys::P256_PEM);
    let params = started.start_login("openid");
    started
        .vars
        .0
        .insert("client_private_key".into(), mismatched_jwk());
    let callback = started.get(&World::callback_url(&params));
    assert!(started.idp.borrow().client_forms.is_empty());
    for r in [w.get("/jwks.json"), login, callback] {
        assert_eq!(r.status, 503);
        let page = r.body_text();
        assert!(
            page.contains(
                "`client_private_key` is a JWK whose `x` and `y` do not belong to its `d`"
            ) && page.contains("--variable client_private_key="),
            "{page}"
        );
        assert!(!page.contains(test_support::client_keys::P256_D), "{page}");
    }
    assert!(
        w.idp.borrow().client_forms.is_empty(),
        "nothing reached the IdP"
    );
}

#[test]
fn the_hot_path_never_parses_the_key() {
    use test_support::client_keys::P256_PEM;
    let mut w = world_with_private_key(P256_PEM);
    w.login();
    // A key the full parse refuses: /user would fail if it were parsed there.
    w.vars
        .0
        .insert("client_private_key".into(), mismatched_jwk());
    let r = w.get("/user");
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(w.get("/jwks.json").status, 503);
}

#[test]
fn jwks_json_is_404_without_private_key_jwt() {
    let mut w = World::new();
    let r = w.get("/jwks.json");
    assert_eq!(r.status, 404);
    assert!(r.body_text().contains("does not use private_key_jwt"));
}

#[test]
fn an_unusable_private_key_names_the_variable_and_fails_readyz() {
    use test_support::client_keys::{P256_PEM, P384_PEM};
    for (key, problem) in [
        (P384_PEM, "is an EC key on curve P-384"),
        ("not a key at all", "is neither a PKCS#8 PEM"),
    ] {
        let mut w = world_with_private_key(key);
        assert_eq!(w.get("/readyz").status, 503);
        for path in ["/jwks.json", "/"] {
            let r = w.get(path);
            assert_eq!(r.status, 503, "{path}");
            let page = r.body_text();
            assert!(
                page.contains("client_private_key") && page.contains(problem),
                "{page}"
            );
            assert!(
                !page.contains("MIG") && !page.contains("not a key at all"),
                "{page}"
            );
        }
    }
    // The method without a key, and a key without the method.
    let mut w = world_with_private_key(P256_PEM);
    w.vars.0.remove("client_private_key");
    assert!(
        w.get("/")
            .body_text()
            .contains("`client_private_key` is not set")
    );
    let mut w = World::new();
    w.vars
        .0
        .insert("client_private_key".into(), P256_PEM.into());
    assert!(
        w.get("/")
            .body_text()
            .contains("`token_endpoint_auth_method` is not private_key_jwt")
    );
}

/// A world whose IdP wants DPoP proofs and answers `DPoP` tokens, and whose
/// app has `dpop = on`.
fn world_with_dpop(challenges: u32) -> World {
    let mut w = World::new();
    w.vars.0.insert("dpop".into(), "on".into());
    let mut s = w.idp.borrow_mut();
    s.dpop_required = true;
    s.dpop_challenges = challenges;
    s.token_type = "DPoP";
    drop(s);
    w
}

/// The RFC 7638 thumbprint of the key in a proof's header.
fn proof_jkt(header: &Value) -> String {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(header["jwk"].clone()).unwrap();
    jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .unwrap()
}

#[test]
fn dpop_binds_the_tokens_to_the_session_key_and_meets_one_nonce_challenge() {
    let mut w = world_with_dpop(1);
    let params = w.start_login("openid offline_access");
    let jkt = params["dpop_jkt"].clone();
    let r = w.get(&World::callback_url(&params));
    assert_eq!(r.status, 303, "{}", r.body_text());

    let proofs = w.idp.borrow().dpop_proofs.clone();
    assert_eq!(proofs.len(), 3, "code (challenged), code again, userinfo");
    for (header, _) in &proofs[..2] {
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(
            proof_jkt(header),
            jkt,
            "the key sent as dpop_jkt signs the proofs"
        );
    }
    assert_eq!(proofs[0].1.get("nonce"), None);
    assert_eq!(proofs[1].1["nonce"], "srv-nonce");
    assert_ne!(proofs[0].1["jti"], proofs[1].1["jti"]);
    assert_eq!(proofs[0].1["htu"], format!("{ISS}/token"));
    assert_eq!(proofs[2].1["htu"], format!("{ISS}/userinfo"));
    let forms = w.idp.borrow().client_forms.clone();
    assert_eq!(forms.len(), 2, "the code went twice, once per proof");

    let page = w.get("/user").body_text();
    assert_eq!(by_id(&page, "dpop-jkt").as_deref(), Some(jkt.as_str()));
    assert_eq!(by_id(&page, "token-type").as_deref(), Some("DPoP"));
    assert!(!page.contains("\"d\""), "no private key member on the page");

    // A refresh proves the same key again.
    w.idp.borrow_mut().dpop_challenges = 1;
    let csrf = w.csrf();
    let r = w.post("/refresh", &format!("csrf={csrf}"));
    assert_eq!(r.header("location"), Some("/user"), "{}", r.body_text());
    let proofs = w.idp.borrow().dpop_proofs.clone();
    assert_eq!(proofs.len(), 5);
    for (header, claims) in &proofs[3..] {
        assert_eq!(proof_jkt(header), jkt);
        assert_eq!(claims["htm"], "POST");
    }
    let page = w.get("/user").body_text();
    assert_eq!(by_id(&page, "dpop-jkt").as_deref(), Some(jkt.as_str()));
}

#[test]
fn dpop_refuses_a_bearer_answer_and_a_second_nonce_challenge_and_stores_nothing() {
    for (challenges, token_type, why) in [
        (0, "Bearer", "the token type is not DPoP"),
        (
            2,
            "DPoP",
            "the token endpoint asked for a DPoP nonce again after the retry (use_dpop_nonce)",
        ),
    ] {
        let mut w = world_with_dpop(challenges);
        w.idp.borrow_mut().token_type = token_type;
        let params = w.start_login("openid");
        let r = w.get(&World::callback_url(&params));
        assert_eq!(r.status, 502, "{why}");
        assert!(r.body_text().contains(why), "{}", r.body_text());
        assert!(w.kv.keys_with_prefix("sess:").is_empty(), "no session");
        assert!(
            w.kv.keys_with_prefix("login:").is_empty(),
            "the login is over"
        );
        assert!(!w.cookies.contains_key("__Host-oidc_session"));
        assert!(!w.cookies.contains_key("__Host-oidc_login"));
    }
}

#[test]
fn a_pushed_login_sends_only_a_reference_through_the_browser() {
    let mut w = World::new();
    w.idp.borrow_mut().par_answer = Some((
        201,
        json!({"request_uri": "urn:ietf:params:oauth:request_uri:r-1", "expires_in": 60}),
    ));
    let r = w.post("/login", "scope=openid");
    assert_eq!(r.status, 303, "{}", r.body_text());
    let url = url::Url::parse(r.header("location").unwrap()).unwrap();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        [
            ("client_id".to_owned(), "client1".to_owned()),
            (
                "request_uri".to_owned(),
                "urn:ietf:params:oauth:request_uri:r-1".to_owned()
            ),
        ]
    );
    let pushed = w.idp.borrow().pushed[0].clone();
    w.idp.borrow_mut().nonce = pushed["nonce"].clone();
    let r = w.get(&World::callback_url(&pushed));
    assert_eq!(r.status, 303, "{}", r.body_text());
    let page = w.get("/user").body_text();
    assert_eq!(by_id(&page, "par").as_deref(), Some("pushed (PAR)"));
    assert_eq!(
        by_id(&page, "client-auth").as_deref(),
        Some("client_secret_basic")
    );
    assert_eq!(by_id(&page, "token-type").as_deref(), Some("Bearer"));
}

#[test]
fn a_refused_or_malformed_push_stores_nothing_and_sets_no_cookie() {
    for (status, answer, why) in [
        (
            400,
            json!({"error": "invalid_request"}),
            "the pushed authorization request was refused (invalid_request)",
        ),
        (
            201,
            json!({"request_uri": "urn:x", "expires_in": 0}),
            "the pushed authorization response is malformed",
        ),
    ] {
        let mut w = World::new();
        w.idp.borrow_mut().par_answer = Some((status, answer));
        let r = w.post("/login", "scope=openid");
        assert_eq!(r.status, 502);
        assert!(r.body_text().contains(why), "{}", r.body_text());
        assert!(
            w.kv.snapshot().keys().all(|k| k.starts_with("cache:")),
            "only the discovery cache: {:?}",
            w.kv.snapshot().keys().collect::<Vec<_>>()
        );
        assert!(!w.cookies.contains_key("__Host-oidc_login"));
    }
}
