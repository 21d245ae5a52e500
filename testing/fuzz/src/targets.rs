//! The fuzz targets. Each takes arbitrary bytes; a panic (including a failed
//! check of what the component promises) is a finding.

use jsonwebtoken::DecodingKey;
use oidc_client::app;
use oidc_client::client_key::{ClientPrivateKey, ConfiguredKey};
use oidc_client::config::TokenAuthMethod;
use oidc_client::cookies;
use oidc_client::keys;
use oidc_client::oidc::id_token::{self, Expectations};
use oidc_client::oidc::token::Caller;
use oidc_client::oidc::transaction::PendingLogin;
use oidc_client::oidc::{discovery, jwks, logout_token, par, scope, transaction};
use oidc_client::request::{self, Request};
use oidc_client::response::Response;
use oidc_client::ticket::{RecordId, Ticket};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use url::Url;

use crate::world::{self, CLIENT_ID, ISSUER, NONCE, NOW};

/// `Cookie` headers (one per line): only a single, well-formed ticket
/// (`<22-char id>.<43-char secret>`, canonical URL-safe base64) is ever taken
/// as a session or login cookie, and it is exactly the value sent.
pub fn cookie_header(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for base in [cookies::SESSION, cookies::LOGIN] {
        for https in [false, true] {
            let name = cookies::name(base, https);
            let Some(ticket) = cookies::read(text.split('\n'), &name) else {
                continue;
            };
            let value = ticket.cookie_value();
            assert!(text.contains(&value), "the ticket is not the value sent");
            let (id, secret) = value.split_once('.').expect("a ticket is <id>.<secret>");
            assert_eq!(
                (id.len(), secret.len()),
                (22, 43),
                "accepted a malformed ticket"
            );
            assert!(
                value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "accepted a ticket that is not URL-safe base64"
            );
            assert_eq!(ticket.id().as_str(), id);
            assert_eq!(RecordId::parse(id).as_ref(), Some(ticket.id()));
            let again = Ticket::parse(&value).expect("a well-formed ticket parses");
            assert_eq!(again.cookie_value(), value);
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
/// and as a logout token. For every input: nothing panics; a token that is not
/// a JWS with a readable header is refused by every check; a token whose
/// signature does not verify is refused as ID token and as logout token alike;
/// and a token that verifies carries, byte for byte, the header and payload of
/// a token the IdP signed (only the signature's encoding may differ), so it
/// decodes to that token's claims; whatever is then accepted names our issuer
/// and audience (and, as an ID token, our nonce).
pub fn jwt_compact(data: &[u8]) {
    let _ = jwt_compact_reach(data);
}

/// Which checks of [`jwt_compact`] an input got to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JwtReach {
    /// The header decoded (a JWS in form, whatever its signature).
    pub well_formed: bool,
    /// The signature verified with the IdP's key (`iss` and `aud` too).
    pub verified: bool,
    pub valid_id_token: bool,
    pub valid_logout_token: bool,
}

/// The tokens the world's IdP signed that fuzz inputs start from (the seeds of
/// `jwt_compact` and the ID and logout tokens of the other targets): the only
/// header-and-payload parts a token may carry and verify.
fn signed_by_the_idp() -> &'static [(String, Value)] {
    static SIGNED: std::sync::OnceLock<Vec<(String, Value)>> = std::sync::OnceLock::new();
    SIGNED.get_or_init(|| {
        let mut logout = serde_json::json!({
            "iss": ISSUER, "aud": CLIENT_ID, "iat": NOW, "exp": NOW + 120,
            "jti": "jti-1", "sid": "idp-session-1",
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        });
        let without_sub = logout.clone();
        logout["sub"] = "alice".into();
        [world::good_claims(), without_sub, logout]
            .into_iter()
            .map(|claims| {
                let token = world::key().sign(&claims);
                let signed = token.rsplit_once('.').expect("a JWS").0.to_owned();
                (signed, claims)
            })
            .collect()
    })
}

/// [`jwt_compact`], saying which checks `data` got to.
pub fn jwt_compact_reach(data: &[u8]) -> JwtReach {
    let token = String::from_utf8_lossy(data);
    let keys = world::keys();
    let expect = expectations();
    let verified = id_token::verify(&token, keys, ISSUER, CLIENT_ID);
    let as_id_token = id_token::validate(&token, keys, &expect);
    let as_logout_token = logout_token::validate(&token, keys, ISSUER, CLIENT_ID, NOW);
    let reach = JwtReach {
        well_formed: jsonwebtoken::decode_header(token.as_bytes()).is_ok(),
        verified: verified.is_ok(),
        valid_id_token: as_id_token.is_ok(),
        valid_logout_token: as_logout_token.is_ok(),
    };
    if !reach.well_formed {
        assert!(
            !reach.verified,
            "verified a token without a readable header"
        );
    }
    if !reach.verified {
        assert!(
            !reach.valid_id_token && !reach.valid_logout_token,
            "accepted a token whose signature does not verify: {reach:?}"
        );
        return reach;
    }
    let claims = verified.expect("verified");
    let signed_part = token.rsplit_once('.').map_or("", |(signed, _)| signed);
    let (_, original) = signed_by_the_idp()
        .iter()
        .find(|(signed, _)| signed == signed_part)
        .unwrap_or_else(|| {
            panic!("verified a header and payload the IdP never signed: {signed_part:?}")
        });
    assert_eq!(
        &Value::Object(claims.clone()),
        original,
        "a verified token decodes to other claims than the IdP signed"
    );
    assert_issuer_and_audience(&claims);
    if let Ok(valid) = as_id_token {
        assert_issuer_and_audience(&valid.claims);
        assert_eq!(valid.claims.get("nonce"), Some(&Value::from(NONCE)));
    }
    if let Ok(logout) = as_logout_token {
        assert_eq!(logout.iss, ISSUER);
        assert!(!claims.contains_key("nonce"), "a logout token with a nonce");
    }
    reach
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
    // Accepted with the world's secret configuration, so a secret method is offered;
    // the methods an operator may choose are answered without panicking.
    meta.client_auth(None)
        .expect("an accepted document offers a secret method");
    for chosen in [
        TokenAuthMethod::SecretBasic,
        TokenAuthMethod::SecretPost,
        TokenAuthMethod::PrivateKeyJwt,
    ] {
        let _ = meta.client_auth(Some(chosen));
    }
}

/// Any text as `client_private_key`: refused with a short reason in which no
/// word is long enough to be key material, or a P-256 key whose published JWK
/// holds exactly the public members and whose `Debug` shows only its `kid`.
pub fn client_private_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // What loading accepts (cheaply) is what the full parse accepts, but for
    // a public part that does not belong to the private one.
    if let Err(reason) = ConfiguredKey::check(text) {
        assert_eq!(ClientPrivateKey::parse(text).err(), Some(reason));
    }
    match ClientPrivateKey::parse(text) {
        Err(reason) => {
            assert!(reason.len() < 200, "a long reason: {reason}");
            assert!(
                reason.split_whitespace().all(|word| word.len() < 16),
                "the reason may repeat the value: {reason}"
            );
        }
        Ok(key) => {
            let jwk = key.public_jwk();
            let mut members: Vec<&str> = jwk
                .as_object()
                .expect("a JWK is an object")
                .keys()
                .map(String::as_str)
                .collect();
            members.sort_unstable();
            assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
            assert_eq!(
                format!("{key:?}"),
                format!("ClientPrivateKey([redacted], kid {})", key.kid())
            );
            let rng = oidc_client::testing::CountingRandom::default();
            let assertion = key.assertion("client1", ISSUER, 1_800_000_000, &rng);
            assert_eq!(assertion.split('.').count(), 3);
        }
    }
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
/// the discovery and JWKS caches: unreadable records are never trusted, a
/// record another ticket sealed is neither opened nor removed, and the store
/// never holds a token or a ticket's secret in clear that the bytes did not
/// bring themselves.
pub fn store_records(data: &[u8]) {
    let _ = store_records_reach(data);
}

/// What [`store_records`] opened with `data` in every record: the session,
/// the login transaction. For tests that check the seeds reach that far.
pub fn store_records_reach(data: &[u8]) -> (bool, bool) {
    world::with_platform(|p, seeded| {
        let kv = p.kv;
        let session_key = keys::session(seeded.session.id());
        let login_key = keys::login(seeded.login.id());
        for key in [
            session_key.as_str(),
            login_key.as_str(),
            keys::DISCOVERY,
            keys::JWKS,
        ] {
            kv.set(key, data).expect("the memory store is up");
        }
        let sessions = world::sessions(kv, p.rng);
        let session = sessions
            .load(&seeded.session)
            .expect("the memory store is up");
        match &session {
            Some(session) => {
                assert!(session.expires_at > NOW, "an expired session was loaded");
                assert_eq!(
                    kv.get(&session_key)
                        .expect("the memory store is up")
                        .as_deref(),
                    Some(data),
                    "loading a session rewrote it"
                );
            }
            None => left_alone_only_if_foreign(kv, &session_key, data, &seeded.session, "session"),
        }
        let pending =
            PendingLogin::find(kv, p.clock, &seeded.login).expect("the memory store is up");
        match &pending {
            Some(pending) => {
                let _ = pending.check_state(Some(&seeded.state));
                assert_eq!(
                    kv.get(&login_key)
                        .expect("the memory store is up")
                        .as_deref(),
                    Some(data),
                    "finding a login transaction changed it"
                );
            }
            None => left_alone_only_if_foreign(kv, &login_key, data, &seeded.login, "login"),
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
        // The bytes were written as they are: what they carry is theirs.
        assert_no_secret_stored(&seeded.kv.snapshot(), &store_secrets(seeded, None), |s| {
            carries(data, s)
        });
        (session.is_some(), pending.is_some())
    })
}

/// After a read with `ticket` found nothing at `key`, where `data` was
/// written: expired, unreadable and tampered records are removed, so what may
/// be left is `data` itself, unchanged, and only if it is someone else's
/// record (a readable `check` that is not this ticket's verifier), which a
/// cookie with that id and another secret must neither open nor remove.
fn left_alone_only_if_foreign(
    kv: &dyn oidc_client::ports::KeyValue,
    key: &str,
    data: &[u8],
    ticket: &Ticket,
    what: &str,
) {
    let Some(left) = kv.get(key).expect("the memory store is up") else {
        return;
    };
    assert_eq!(left, data, "a {what} record that did not open was changed");
    // Read as leniently as the component's record types do: serde skips the
    // fields a type does not name without checking their UTF-8, escapes or
    // number ranges, so a record damaged only there may still be taken,
    // rightly, as someone else's. (Lossy UTF-8 and raw values skip the same.)
    // A session record's readable part is its first line; a login record is all JSON.
    let readable = match key.starts_with(oidc_client::keys::SESSION_PREFIX) {
        true => data.split(|&b| b == b'\n').next().unwrap_or_default(),
        false => data,
    };
    let check =
        serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(&String::from_utf8_lossy(readable))
            .ok()
            .and_then(|fields| fields.get("check").map(|raw| raw.get().to_owned()))
            .and_then(|raw| serde_json::from_str::<String>(&raw).ok());
    assert!(
        check.is_some_and(|c| c != ticket.verifier()),
        "an unreadable, expired or tampered {what} record was left behind"
    );
}

/// Bytes as a whole request (`METHOD target`, header lines, a blank line, the
/// body) through `app::handle`, against a store with a live session: never a
/// 500, and never a token, the client secret or a cookie value on any page
/// but the session owner's `/user`.
///
/// And the store never holds a token or a ticket's secret in clear, whatever
/// the request: nothing a request carries is stored unsealed, so unlike the
/// pages, no secret is excused for having been sent.
pub fn app_request(data: &[u8]) {
    world::with_platform(|p, seeded| {
        let req = parse_request(data);
        let response = app::handle(&req, p);
        check_response(data, &req, &response, seeded);
        let secrets = store_secrets(seeded, Some(&response));
        assert_no_secret_stored(&seeded.kv.snapshot(), &secrets, |_| false);
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
/// a failed step leaves no new session and no altered one (a refresh ends the
/// session only on `invalid_grant` or a refused ID token, and then clears its
/// cookie), a completed one
/// leaves a session alice's cookie opens, and the store never holds a token
/// or a ticket's secret in clear.
pub fn idp_response(data: &[u8]) {
    idp_step(data, |seeded, run| {
        check_response(data, &run.request, &run.response, seeded);
        let after = seeded.kv.snapshot();
        let before = &run.before;
        let location = run.response.header("location");
        let ours = keys::session(seeded.session.id());
        let succeeded = run.response.status == 303 && location.is_some();
        let rng = world::CountingRandom::default();
        let sessions = world::sessions(&seeded.kv, &rng);
        match run.step {
            Step::Callback if !(succeeded && location == Some("/user")) => {
                assert_eq!(
                    count_prefixed(&after, keys::SESSION_PREFIX),
                    count_prefixed(before, keys::SESSION_PREFIX),
                    "a failed login made a session"
                );
                assert_eq!(
                    after.get(&ours),
                    before.get(&ours),
                    "a failed login changed a session"
                );
            }
            Step::Callback => {
                assert_eq!(
                    count_prefixed(&after, keys::SESSION_PREFIX),
                    count_prefixed(before, keys::SESSION_PREFIX) + 1,
                    "a login did not make exactly one new session"
                );
                assert_eq!(
                    after.get(&ours),
                    before.get(&ours),
                    "a login changed another session"
                );
                let name = cookies::name(cookies::SESSION, world::config().https());
                let ticket = set_cookie_values(&run.response)
                    .into_iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, v)| Ticket::parse(&v))
                    .expect("a completed login sets a session cookie");
                assert_ne!(
                    ticket.id(),
                    seeded.session.id(),
                    "a login reused a session id"
                );
                let session = sessions
                    .load(&ticket)
                    .expect("the memory store is up")
                    .expect("the new cookie opens the new session");
                assert_eq!(
                    (session.identity.iss.as_str(), session.identity.sub.as_str()),
                    (ISSUER, "alice"),
                    "a login made a session for someone else"
                );
            }
            Step::Refresh if !(succeeded && location == Some("/user")) => {
                // The README: a failed refresh leaves no altered session, and
                // `invalid_grant` ends it, as does a refreshed ID token the
                // component refuses (it must name the same user at the same
                // issuer). So the session ends only when the IdP's answer said
                // `invalid_grant` or carried an ID token; otherwise it stays
                // byte for byte as it was. Besides, a refresh fills the
                // discovery and JWKS caches as a successful one would, and
                // taking the session's lock registers the lock's keys with
                // upkeep (`gc:` keys), which stay after the lock is released:
                // those are left out of the comparison, which the lock's own
                // keys are not (a released lock leaves none). An ID token
                // naming an unknown key takes the JWKS refetch slot, a lock
                // that is never released (`lock:jwks-refetch:`): left out too.
                let ended = keys::ended(seeded.session.id());
                let rest = |store: &BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
                    store
                        .iter()
                        .filter(|(k, _)| {
                            !k.starts_with("gc:")
                                && !k.starts_with("lock:jwks-refetch:")
                                && ![keys::DISCOVERY, keys::JWKS, &ours, &ended]
                                    .contains(&k.as_str())
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                };
                assert!(
                    rest(&after) == rest(before),
                    "a failed refresh changed the store beyond its session"
                );
                // The answer as the component reads it: exactly one JSON
                // value, or nothing (bytes after the value make it malformed).
                let answer = serde_json::from_slice::<Value>(&data[1..]).ok();
                let may_end = run.path == "/realms/demo/token"
                    && answer.is_some_and(|answer| {
                        answer.get("error") == Some(&Value::from("invalid_grant"))
                            || answer.get("id_token").is_some()
                    });
                match after.get(&ours) {
                    Some(record) => {
                        assert_eq!(
                            Some(record),
                            before.get(&ours),
                            "a failed refresh changed the session"
                        );
                        assert!(
                            !after.contains_key(&ended),
                            "a failed refresh left a tombstone on a live session"
                        );
                    }
                    None => {
                        assert!(
                            may_end,
                            "a failed refresh ended the session, though the IdP's answer \
                             was neither invalid_grant nor an ID token (status {})",
                            run.response.status
                        );
                        assert!(
                            after.contains_key(&ended),
                            "a failed refresh removed the session without ending it"
                        );
                        let name = cookies::name(cookies::SESSION, world::config().https());
                        assert!(
                            set_cookie_values(&run.response)
                                .iter()
                                .any(|(n, v)| *n == name && v.is_empty()),
                            "a refresh that ended the session left its cookie in the browser"
                        );
                    }
                }
            }
            Step::Refresh => {
                let session = sessions
                    .load(&seeded.session)
                    .expect("the memory store is up")
                    .expect("a refreshed session opens with its cookie");
                assert_eq!(
                    (session.identity.iss.as_str(), session.identity.sub.as_str()),
                    (ISSUER, "alice"),
                    "a refresh changed the user"
                );
                assert_eq!(session.rev, 1, "a refresh that was not recorded as one");
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
                count_prefixed(&after, keys::LOGIN_PREFIX),
                count_prefixed(before, keys::LOGIN_PREFIX),
                "a failed login start stored a transaction"
            ),
        }
        // Discovery and the JWKS are cached as the IdP sent them: what a
        // fuzzed answer there carries is its own. Token and userinfo answers
        // only ever reach the store sealed.
        let cached_raw = matches!(
            run.path,
            "/realms/demo/jwks" | "/realms/demo/.well-known/openid-configuration"
        );
        let secrets = store_secrets(seeded, Some(&run.response));
        assert_no_secret_stored(&after, &secrets, |s| cached_raw && carries(data, s));
    });
}

/// The status `idp_response` sees for `data`, for tests of its seeds.
pub fn idp_response_status(data: &[u8]) -> u16 {
    idp_step(data, |_, run| run.response.status).unwrap_or(0)
}

/// One user step against an IdP whose answer was fuzzed.
struct IdpStep {
    step: Step,
    /// The endpoint whose answer was fuzzed.
    path: &'static str,
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
                path,
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
            format!("__Host-oidc_session={}", seeded.session_cookie()),
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
                format!("__Host-oidc_login={}", seeded.login_cookie()),
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

/// Whether the seeded session is still in the store after one request (a
/// record under its key) and whether it was ended (its tombstone), for tests
/// that check the seeds that should end it do.
pub fn app_leaves_session(data: &[u8]) -> (bool, bool) {
    world::with_platform(|p, seeded| {
        let _ = app::handle(&parse_request(data), p);
        let id = seeded.session.id();
        let store = seeded.kv.snapshot();
        (
            store.contains_key(&keys::session(id)),
            store.contains_key(&keys::ended(id)),
        )
    })
}

/// The cookies a response sets, as (name, value); a cleared cookie has an empty value.
fn set_cookie_values(response: &Response) -> Vec<(String, String)> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .filter_map(|(_, value)| {
            let pair = value.split(';').next()?;
            let (name, value) = pair.split_once('=')?;
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// Every ticket of the world and of `response` (the seeded session's and
/// login's, and those the response sets) as cookie value and as secret half,
/// labelled for messages that must not show them.
fn ticket_secrets(
    seeded: &world::Seeded,
    response: Option<&Response>,
) -> Vec<(&'static str, String)> {
    let mut values = vec![seeded.session_cookie(), seeded.login_cookie()];
    values.extend(
        response
            .map(set_cookie_values)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, value)| value)
            .filter(|value| !value.is_empty()),
    );
    let mut out = Vec::new();
    for value in values {
        if let Some((_, secret)) = value.split_once('.')
            && !secret.is_empty()
        {
            out.push(("a ticket's secret", secret.to_owned()));
        }
        out.push(("a cookie value", value));
    }
    out
}

/// What the store must never hold in clear: every token of the world and
/// every ticket's cookie value and secret.
fn store_secrets(
    seeded: &world::Seeded,
    response: Option<&Response>,
) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = world::tokens_in_clear(seeded)
        .into_iter()
        .map(|t| ("a token", t))
        .collect();
    out.extend(ticket_secrets(seeded, response));
    out
}

/// No key or value of `store` contains a secret of `secrets`, unless
/// `excused` says the input brought that secret into the store itself.
fn assert_no_secret_stored(
    store: &BTreeMap<String, Vec<u8>>,
    secrets: &[(&'static str, String)],
    excused: impl Fn(&str) -> bool,
) {
    let secrets: Vec<&(&str, String)> = secrets.iter().filter(|(_, s)| !excused(s)).collect();
    for (key, value) in store {
        let value = String::from_utf8_lossy(value);
        for (what, secret) in &secrets {
            assert!(
                !key.contains(secret.as_str()) && !value.contains(secret.as_str()),
                "{what} is in the store in clear, at {key}"
            );
        }
    }
}

/// Whether `data` contains `secret`.
fn carries(data: &[u8], secret: &str) -> bool {
    data.windows(secret.len()).any(|w| w == secret.as_bytes())
}

/// Checks one response. A secret counts as disclosed only when the request did
/// not carry it itself: the app may echo what a requester sent (a scope it chose
/// goes into the authorization redirect), which tells them nothing new.
/// A ticket (the cookie value, or its secret half) appears nowhere but in the
/// `Set-Cookie` header that hands it to its browser.
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
    let mut never: Vec<(&str, String)> = vec![
        ("the client secret", world::CLIENT_SECRET.to_owned()),
        ("the login's state", seeded.state.clone()),
        ("a token", world::NEW_ACCESS_TOKEN.to_owned()),
        ("a token", world::NEW_REFRESH_TOKEN.to_owned()),
        ("a token", world::issued_id_token(seeded)),
    ];
    never.extend(ticket_secrets(seeded, Some(response)));
    let sent = |secret: &str| carries(data, secret);
    for (what, secret) in &never {
        assert!(
            sent(secret) || !everywhere.contains(secret.as_str()),
            "{what} on {} ({})",
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

/// Any answer from the PAR endpoint (RFC 9126), its first byte choosing the
/// status: either a refusal whose reason is short (it goes on a page) or the
/// URL that sends the browser to the authorization endpoint with exactly
/// `client_id` and a `request_uri` that a 200/201 JSON object named, printable
/// and bounded, next to a positive `expires_in`.
pub fn par_response(data: &[u8]) {
    const STATUSES: [u16; 6] = [201, 200, 400, 401, 500, 302];
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(*first) % STATUSES.len()];
    let body = body.to_vec();
    let http = oidc_client::testing::FakeHttp::new(move |_| {
        Ok(http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.clone())
            .expect("a valid response"))
    });
    let cfg = world::config();
    let mut doc = world::discovery();
    doc["pushed_authorization_request_endpoint"] = Value::from(format!("{ISSUER}/par"));
    let meta = discovery::parse(doc, cfg).expect("the fuzz discovery is valid");
    let rng = oidc_client::testing::CountingRandom::default();
    let (_, txn) = transaction::new(&rng, world::clock(), "openid".into(), false);
    let caller = Caller {
        http: &http,
        clock: world::clock(),
        rng: &rng,
    };
    let endpoint = format!("{ISSUER}/par");
    match par::push(&caller, cfg, &meta, &endpoint, &txn) {
        Err(e) => {
            let why = format!("{e:?}");
            assert!(why.len() < 160, "a long reason: {why}");
        }
        Ok(url) => {
            assert!(matches!(status, 200 | 201), "accepted HTTP {status}");
            let url = Url::parse(&url).expect("an absolute URL");
            assert!(url.as_str().starts_with(&meta.authorization_endpoint));
            let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            let [(k1, v1), (k2, request_uri)] = pairs.as_slice() else {
                panic!("the browser carries more than a reference: {pairs:?}");
            };
            assert_eq!(
                (k1.as_str(), v1.as_str(), k2.as_str()),
                ("client_id", CLIENT_ID, "request_uri")
            );
            assert!(!request_uri.is_empty() && request_uri.len() <= 2048);
            assert!(request_uri.bytes().all(|b| b.is_ascii_graphic()));
            let answer: Value = serde_json::from_slice(data.split_first().unwrap().1)
                .expect("only JSON is accepted");
            assert_eq!(answer["request_uri"].as_str(), Some(request_uri.as_str()));
            assert!(answer["expires_in"].as_u64().is_some_and(|e| e > 0));
        }
    }
}
