//! The fuzz targets. Each takes arbitrary bytes; a panic (including a failed
//! check of what the component promises) is a finding.

use jsonwebtoken::DecodingKey;
use oidc_client::app;
use oidc_client::cookies;
use oidc_client::oidc::id_token::{self, Expectations};
use oidc_client::oidc::transaction::{self, PendingLogin};
use oidc_client::oidc::{discovery, jwks, logout_token, scope};
use oidc_client::request::{self, Request};
use oidc_client::response::Response;
use oidc_client::session::{SessionId, Sessions};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use url::Url;

use crate::world::{self, CLIENT_ID, ISSUER, NONCE, NOW};

/// `Cookie` headers (one per line): only a single, well-formed opaque id is
/// ever taken as a session or login cookie.
pub fn cookie_header(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for base in [cookies::SESSION, cookies::LOGIN] {
        for https in [false, true] {
            let name = cookies::name(base, https);
            let Some(value) = cookies::read(text.split('\n'), &name) else {
                continue;
            };
            assert!(cookies::is_opaque_id(&value), "accepted a malformed id");
            let id = SessionId::parse(&value).expect("a well-formed id parses");
            assert_eq!(id.as_str(), value);
        }
    }
}

/// Query strings and `application/x-www-form-urlencoded` bodies, and the
/// scope a login form carries.
pub fn query_and_form(data: &[u8]) {
    if let Ok(params) = request::parse_params(data) {
        assert!(params.len() <= 32, "more parameters than the limit");
        if let Some(Ok(scopes)) = params.get("scope").map(|s| scope::normalize(s)) {
            assert!(scope::contains(&scopes, "openid"));
            assert!(scopes.split(' ').all(|s| !s.is_empty() && s.is_ascii()));
        }
    }
    let req = Request {
        method: "POST".into(),
        path: "/login".into(),
        query: Some(String::from_utf8_lossy(data).into_owned()),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
        body: data.to_vec(),
    };
    let _ = req.query_params();
    let _ = req.form();
}

/// Any string as a compact JWS, checked against the IdP's keys as an ID token
/// and as a logout token: whatever passes names our issuer and audience.
pub fn jwt_compact(data: &[u8]) {
    let token = String::from_utf8_lossy(data);
    let keys = world::keys();
    if let Ok(claims) = id_token::verify(&token, keys, ISSUER, CLIENT_ID) {
        assert_issuer_and_audience(&claims);
    }
    let expect = expectations();
    if let Ok(valid) = id_token::validate(&token, keys, &expect) {
        assert_issuer_and_audience(&valid.claims);
    }
    if let Ok(logout) = logout_token::validate(&token, keys, ISSUER, CLIENT_ID, NOW) {
        assert_eq!(logout.iss, ISSUER);
    }
}

/// Any JSON object as the claims of a correctly signed token: only claims that
/// satisfy every rule make a valid ID token or logout token.
pub fn signed_claims(data: &[u8]) {
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let token = world::key().sign(&Value::Object(claims.clone()));
    let keys = world::keys();
    let expect = expectations();
    if let Ok(valid) = id_token::validate(&token, keys, &expect) {
        assert_issuer_and_audience(&claims);
        assert_eq!(claims.get("nonce"), Some(&Value::from(NONCE)));
        assert_eq!(claims.get("sub"), Some(&Value::from(valid.sub.as_str())));
        let exp = claims.get("exp").and_then(Value::as_f64).expect("exp");
        assert!(
            exp > (NOW - id_token::CLOCK_SKEW) as f64,
            "accepted an expired token"
        );
        assert!(claims.get("iat").is_some_and(Value::is_number));
    }
    if let Ok(logout) = logout_token::validate(&token, keys, ISSUER, CLIENT_ID, NOW) {
        assert_issuer_and_audience(&claims);
        assert!(!claims.contains_key("nonce"), "a logout token with a nonce");
        assert!(logout.sub.is_some() || logout.sid.is_some());
        assert!(!logout.jti.is_empty());
    }
}

/// What the component expects of an ID token for the world's pending login.
fn expectations() -> Expectations<'static> {
    Expectations {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        nonce: Some(NONCE),
        now: NOW,
    }
}

fn assert_issuer_and_audience(claims: &Map<String, Value>) {
    assert_eq!(claims.get("iss"), Some(&Value::from(ISSUER)));
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == CLIENT_ID,
        Some(Value::Array(auds)) => auds.contains(&Value::from(CLIENT_ID)),
        _ => false,
    };
    assert!(audience_ok, "accepted a token for another audience");
}

/// Any bytes as the discovery document: what is accepted is the configured
/// issuer, with the back-channel endpoints on the IdP's configured origin.
pub fn discovery_json(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let cfg = world::config();
    let Ok(meta) = discovery::parse(doc, cfg) else {
        return;
    };
    assert_eq!(meta.issuer, ISSUER);
    let idp = Url::parse(world::IDP_ORIGIN).expect("origin").origin();
    let backchannel = [Some(&meta.token_endpoint), Some(&meta.jwks_uri)]
        .into_iter()
        .chain([
            meta.userinfo_endpoint.as_ref(),
            meta.revocation_endpoint.as_ref(),
        ]);
    for url in backchannel.flatten() {
        let parsed = Url::parse(url).expect("an accepted endpoint is a URL");
        assert_eq!(parsed.origin(), idp, "an endpoint off the IdP's origin");
    }
    let _ = meta.client_auth();
}

/// Any bytes as the JWKS: keys that are kept can be used to verify a token
/// without panicking.
pub fn jwks_json(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(keys) = jwks::usable_keys(&doc) else {
        return;
    };
    for key in &keys {
        let _ = DecodingKey::from_jwk(key);
    }
    let token = world::key().sign(&world::good_claims());
    if id_token::verify(&token, &keys, ISSUER, CLIENT_ID).is_ok() {
        let ours = world::keys()[0].algorithm.clone();
        assert!(
            keys.iter().any(|k| k.algorithm == ours),
            "a token verified without the signing key"
        );
    }
}

/// Any bytes as what the store holds for a session, a login transaction and
/// the discovery and JWKS caches: unreadable records are never trusted.
pub fn store_records(data: &[u8]) {
    world::with_platform(|p, seeded| {
        let kv = p.kv;
        for key in [
            seeded.session.key(),
            format!("{}{}", transaction::KEY_PREFIX, seeded.login),
            discovery::CACHE_KEY.to_owned(),
            jwks::CACHE_KEY.to_owned(),
        ] {
            kv.set(&key, data).expect("the memory store is up");
        }
        let sessions = Sessions {
            kv,
            clock: p.clock,
            lifetimes: world::LIFETIMES,
        };
        match sessions
            .load(&seeded.session)
            .expect("the memory store is up")
        {
            Some(session) => assert!(session.expires_at > NOW, "an expired session was loaded"),
            None => assert!(
                !kv.exists(&seeded.session.key())
                    .expect("the memory store is up"),
                "an unreadable or expired session record was left behind"
            ),
        }
        if let Ok(Some(pending)) = PendingLogin::find(kv, p.clock, &seeded.login) {
            let _ = pending.check_state(Some(&seeded.state));
        }
        if let Ok(meta) = discovery::load(kv, p.http, p.clock, world::config()) {
            assert_eq!(meta.issuer, ISSUER);
        }
        let key_set = jwks::KeySet {
            kv,
            http: p.http,
            clock: p.clock,
            ttl: 300,
            backchannel: false,
        };
        let _ = key_set.current(&format!("{ISSUER}/jwks"));
    });
}

/// Bytes as a whole request (`METHOD target`, header lines, a blank line, the
/// body) through `app::handle`, against a store with a live session: never a
/// 500, and never a token, the client secret or a cookie value on any page
/// but the session owner's `/user`.
pub fn app_request(data: &[u8]) {
    world::with_platform(|p, seeded| {
        let req = parse_request(data);
        let response = app::handle(&req, p);
        check_response(data, &req, &response, seeded);
    });
}

/// Which IdP answer a byte of `idp_response` replaces, and the user's step that
/// asks for it.
const IDP_ANSWERS: &[(&str, Step)] = &[
    ("/realms/demo/token", Step::Callback),
    ("/realms/demo/userinfo", Step::Callback),
    ("/realms/demo/jwks", Step::Callback),
    ("/realms/demo/token", Step::Refresh),
    ("/realms/demo/.well-known/openid-configuration", Step::Login),
];

#[derive(Clone, Copy, PartialEq)]
enum Step {
    Login,
    Callback,
    Refresh,
}

/// The first byte picks an IdP endpoint, the rest is its answer (status 200),
/// while the user logs in, comes back from the IdP, or refreshes: never a 500,
/// and a failed step leaves no new session and no altered one.
pub fn idp_response(data: &[u8]) {
    idp_step(data, |seeded, run| {
        check_response(data, &run.request, &run.response, seeded);
        let after = seeded.kv.snapshot();
        let before = &run.before;
        let location = run.response.header("location");
        let ours = seeded.session.key();
        let succeeded = run.response.status == 303 && location.is_some();
        match run.step {
            Step::Callback if !(succeeded && location == Some("/user")) => {
                assert_eq!(
                    count_prefixed(&after, "sess:"),
                    count_prefixed(before, "sess:"),
                    "a failed login made a session"
                );
                assert_eq!(
                    after.get(&ours),
                    before.get(&ours),
                    "a failed login changed a session"
                );
            }
            Step::Refresh if !(succeeded && location == Some("/user")) => assert!(
                !after.contains_key(&ours) || after.get(&ours) == before.get(&ours),
                "a failed refresh changed the session"
            ),
            Step::Refresh => {
                let record: Value = serde_json::from_slice(&after[&ours]).expect("JSON");
                assert_eq!(
                    record["identity"]["sub"], "alice",
                    "a refresh changed the user"
                );
            }
            Step::Login if succeeded => {
                let target = Url::parse(location.unwrap_or_default()).expect("an absolute URL");
                assert!(
                    ["https", "http"].contains(&target.scheme()),
                    "redirected to {}",
                    target.scheme()
                );
            }
            Step::Login => assert_eq!(
                count_prefixed(&after, transaction::KEY_PREFIX),
                count_prefixed(before, transaction::KEY_PREFIX),
                "a failed login start stored a transaction"
            ),
            Step::Callback => {}
        }
    });
}

/// The status `idp_response` sees for `data`, for tests of its seeds.
pub fn idp_response_status(data: &[u8]) -> u16 {
    idp_step(data, |_, run| run.response.status).unwrap_or(0)
}

/// One user step against an IdP whose answer was fuzzed.
struct IdpStep {
    step: Step,
    /// The store before the step.
    before: BTreeMap<String, Vec<u8>>,
    request: Request,
    response: Response,
}

/// Runs the step the first byte of `data` picks, with the IdP answering the
/// rest of `data` at that step's endpoint; None for empty input.
fn idp_step<T>(data: &[u8], then: impl FnOnce(&world::Seeded, IdpStep) -> T) -> Option<T> {
    let (&selector, body) = data.split_first()?;
    let (path, step) = IDP_ANSWERS[selector as usize % IDP_ANSWERS.len()];
    Some(world::with_idp_answering(
        Some((path, body.to_vec())),
        |p, seeded| {
            let before = seeded.kv.snapshot();
            let request = step_request(step, seeded);
            let response = app::handle(&request, p);
            let run = IdpStep {
                step,
                before,
                request,
                response,
            };
            then(seeded, run)
        },
    ))
}

fn count_prefixed(store: &BTreeMap<String, Vec<u8>>, prefix: &str) -> usize {
    store.keys().filter(|k| k.starts_with(prefix)).count()
}

/// The request of `step` for the seeded browser.
fn step_request(step: Step, seeded: &world::Seeded) -> Request {
    let form = |path: &str, body: String, cookie: String| Request {
        method: "POST".into(),
        path: path.into(),
        query: None,
        headers: vec![
            ("origin".into(), "https://app.example".into()),
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("cookie".into(), cookie),
        ],
        body: body.into_bytes(),
    };
    match step {
        Step::Login => form("/login", "scope=openid+profile".into(), String::new()),
        Step::Refresh => form(
            "/refresh",
            format!("csrf={}", seeded.csrf),
            format!("__Host-oidc_session={}", seeded.session.as_str()),
        ),
        Step::Callback => Request {
            method: "GET".into(),
            path: "/callback".into(),
            query: Some(format!(
                "code=abc&state={}&iss=https%3A%2F%2Fidp.example%2Frealms%2Fdemo",
                seeded.state
            )),
            headers: vec![(
                "cookie".into(),
                format!("__Host-oidc_login={}", seeded.login),
            )],
            body: Vec::new(),
        },
    }
}

/// Runs one request through the app and returns it with the response, for
/// tests that check the seeds reach the pages they are meant to.
pub fn app_response(data: &[u8]) -> (Request, Response) {
    world::with_platform(|p, _| {
        let req = parse_request(data);
        let response = app::handle(&req, p);
        (req, response)
    })
}

/// Checks one response. A secret counts as disclosed only when the request did
/// not carry it itself: the app may echo what a requester sent (a scope it chose
/// goes into the authorization redirect), which tells them nothing new.
fn check_response(data: &[u8], req: &Request, response: &Response, seeded: &world::Seeded) {
    assert_ne!(
        response.status, 500,
        "{} {} gave a 500",
        req.method, req.path
    );
    let page = response.body_text();
    let headers: Vec<String> = response
        .headers
        .iter()
        .filter(|(name, _)| name != "set-cookie")
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    let everywhere = format!("{page}\n{}", headers.join("\n"));
    // RP-initiated logout sends the ID token to the IdP as `id_token_hint`.
    let logout_hint = format!("location: {ISSUER}/logout?");
    let without_hint: String = everywhere
        .lines()
        .filter(|line| !line.starts_with(&logout_hint))
        .collect::<Vec<_>>()
        .join("\n");
    let owner_page = response.status == 200 && req.path == "/user";
    let session_tokens = [world::ACCESS_TOKEN, world::REFRESH_TOKEN, world::ID_TOKEN];
    let never = [
        world::CLIENT_SECRET,
        seeded.login.as_str(),
        &seeded.state,
        seeded.session.as_str(),
        world::NEW_ACCESS_TOKEN,
        world::NEW_REFRESH_TOKEN,
    ];
    let sent = |secret: &str| data.windows(secret.len()).any(|w| w == secret.as_bytes());
    for secret in never {
        assert!(
            sent(secret) || !everywhere.contains(secret),
            "a secret on {} ({})",
            req.path,
            response.status
        );
    }
    for token in session_tokens {
        assert!(
            owner_page || sent(token) || !without_hint.contains(token),
            "a token on {} ({})",
            req.path,
            response.status
        );
    }
}

/// Reads `METHOD target` / header lines / blank line / body; lenient, so that
/// every input becomes some request.
fn parse_request(data: &[u8]) -> Request {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (&data[..i], &data[i + 2..]))
        .unwrap_or((data, &[]));
    let (head, body) = split;
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let first = lines.next().unwrap_or("");
    let (method, target) = first.split_once(' ').unwrap_or((first, "/"));
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Request {
        method: method.to_ascii_uppercase(),
        path,
        query,
        headers,
        body: body.to_vec(),
    }
}
