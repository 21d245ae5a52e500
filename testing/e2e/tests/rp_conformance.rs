//! Relying-party conformance, end to end: the built component in the test host (store in
//! Redis) against the fake OpenID Provider of `e2e::fake_idp`, which the tests make
//! misbehave. Named after the OpenID Foundation's RP certification tests where one
//! exists (rp-id_token-aud, rp-key-rotation-op-sign-key, ...).
//!
//! Proves that the happy paths work (code flow with PKCE, client_secret_basic and
//! client_secret_post, RS256 and ES256, kid-less tokens, key rotation with exactly one
//! JWKS refetch), and that every bad ID token, discovery document, userinfo answer,
//! callback `iss`, refreshed identity and broken, slow or absent IdP is refused with a
//! clear page and status, leaving nobody logged in and the whole store as it was but
//! for bookkeeping that holds nothing of a user (`Rig::assert_not_logged_in` says which).

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use e2e::fake_idp::{
    CallbackIss, ClaimEdits, EC_KID, Endpoint, FakeIdp, Fault, HeaderKid, KeyKind, RSA_KID, Signer,
};
use e2e::oidc::decode_jwt;
use e2e::rig::{Rig, RigOptions};
use e2e::{Browser, Response};
use serde_json::json;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The header and claims of the ID token the /user page shows.
fn shown_id_token(page: &e2e::Response) -> (serde_json::Value, serde_json::Value) {
    let token = page
        .text_by_id("id-token")
        .expect("the page shows the ID token");
    decode_jwt(token.trim())
}

/// A successful login as `alice`, and no protocol violation seen by the fake.
#[track_caller]
fn assert_logged_in(rig: &mut Rig, page: &e2e::Response) {
    assert_eq!(
        page.text_by_id("username").as_deref().map(str::trim),
        Some("alice")
    );
    assert_eq!(rig.session_keys().len(), 1, "one session in the store");
    assert_eq!(
        rig.idp.problems(),
        Vec::<String>::new(),
        "protocol violations"
    );
    let user = rig.browser.get(&rig.url("/user"));
    user.assert_status(200);
}

/// Starts a rig, lets `spoil` change the fake, logs in: the callback must be refused
/// with `status` and a message containing `fragment`.
fn login_refused(spoil: impl FnOnce(&FakeIdp), status: u16, fragment: &str) -> Rig {
    let mut rig = Rig::start();
    spoil(&rig.idp);
    let callback = rig.login_callback();
    rig.assert_refused(&callback, status, fragment);
    rig
}

/// An ID token with these edits is refused (401) with `fragment` in the message.
fn id_token_refused(edits: ClaimEdits, fragment: &str) {
    let rig = login_refused(|idp| idp.configure(|b| b.id_token = edits), 401, fragment);
    assert_eq!(
        rig.idp.issued_id_tokens(),
        1,
        "the fake handed out its ID token"
    );
}

// ---------------------------------------------------------------- happy paths

#[test]
fn rp_response_type_code_with_pkce_and_client_secret_basic() {
    let mut rig = Rig::start_with(RigOptions::default().behaviour(|b| {
        b.auth_methods = Some(vec!["client_secret_basic".into()]);
    }));
    let page = rig.login();
    assert_logged_in(&mut rig, &page);

    let auth = rig
        .idp
        .last_authorization()
        .expect("an authorization request");
    assert_eq!(auth["response_type"], "code");
    assert_eq!(auth["client_id"], "client1");
    assert_eq!(auth["redirect_uri"], rig.url("/callback"));
    assert_eq!(auth["code_challenge_method"], "S256");
    assert_eq!(auth["code_challenge"].len(), 43);
    assert_eq!(auth["scope"], "openid profile");
    assert!(auth["state"].len() >= 32 && auth["nonce"].len() >= 32);
    assert_eq!(rig.idp.auth_methods_used(), ["client_secret_basic"]);

    let (header, claims) = shown_id_token(&page);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], RSA_KID);
    assert_eq!(
        claims["nonce"],
        auth["nonce"].as_str(),
        "the nonce of this login"
    );
}

/// An access token that is a JWT (Keycloak's are) is shown decoded on /user, as
/// data; an opaque one is said to be opaque.
#[test]
fn a_jwt_access_token_is_shown_decoded_and_an_opaque_one_as_opaque() {
    let mut rig = Rig::start_with(RigOptions::default().behaviour(|b| b.jwt_access_tokens = true));
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
    let kind = page.text_by_id("access-token-kind").unwrap_or_default();
    assert!(kind.starts_with("A JWT"), "{kind}");
    let header: serde_json::Value =
        serde_json::from_str(&page.text_by_id("access-token-header").expect("header")).unwrap();
    let claims: serde_json::Value =
        serde_json::from_str(&page.text_by_id("access-token-claims").expect("claims")).unwrap();
    let token = page.text_by_id("access-token").expect("the access token");
    assert_eq!(
        (header, claims),
        decode_jwt(&token),
        "the token's own header and claims"
    );

    let mut rig = Rig::start();
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
    let kind = page.text_by_id("access-token-kind").unwrap_or_default();
    assert!(kind.starts_with("Opaque"), "{kind}");
    assert_eq!(page.text_by_id("access-token-claims"), None);
}

#[test]
fn rp_token_endpoint_client_secret_basic_is_the_default_when_discovery_is_silent() {
    let mut rig = Rig::start_with(RigOptions::default().behaviour(|b| b.auth_methods = None));
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
    assert_eq!(rig.idp.auth_methods_used(), ["client_secret_basic"]);
}

#[test]
fn rp_token_endpoint_client_secret_post() {
    // The fake refuses client_secret_basic (401 invalid_client) since it advertises only post.
    let mut rig = Rig::start_with(RigOptions::default().behaviour(|b| {
        b.auth_methods = Some(vec!["client_secret_post".into()]);
    }));
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
    assert_eq!(rig.idp.auth_methods_used(), ["client_secret_post"]);
}

// ---------------------------------------------------------------- ID token claims

#[test]
fn rp_nonce_invalid() {
    id_token_refused(
        ClaimEdits::none().set("nonce", json!("not-the-nonce-of-this-login")),
        "nonce",
    );
}

#[test]
fn rp_nonce_missing() {
    id_token_refused(ClaimEdits::none().remove("nonce"), "nonce");
}

#[test]
fn rp_id_token_aud_wrong() {
    id_token_refused(
        ClaimEdits::none().set("aud", json!("another-client")),
        "aud",
    );
}

#[test]
fn rp_id_token_aud_missing() {
    id_token_refused(ClaimEdits::none().remove("aud"), "aud");
}

#[test]
fn rp_id_token_iat_missing() {
    id_token_refused(ClaimEdits::none().remove("iat"), "iat");
}

#[test]
fn rp_id_token_issuer_mismatch() {
    id_token_refused(
        ClaimEdits::none().set("iss", json!("http://127.0.0.1:1/realms/other")),
        "iss",
    );
}

#[test]
fn rp_id_token_sub_missing() {
    id_token_refused(ClaimEdits::none().remove("sub"), "sub");
}

#[test]
fn rp_id_token_expired() {
    // Ten minutes past exp: well beyond any clock-skew allowance.
    let t = now();
    id_token_refused(
        ClaimEdits::none()
            .set("exp", json!(t - 600))
            .set("iat", json!(t - 900)),
        "expired",
    );
}

#[test]
fn rp_id_token_azp_wrong_with_several_audiences() {
    id_token_refused(
        ClaimEdits::none()
            .set("aud", json!(["client1", "other-client"]))
            .set("azp", json!("other-client")),
        "azp",
    );
}

#[test]
fn rp_id_token_several_audiences_without_azp() {
    id_token_refused(
        ClaimEdits::none().set("aud", json!(["client1", "other-client"])),
        "azp",
    );
}

#[test]
fn rp_id_token_several_audiences_with_our_azp_is_accepted() {
    let mut rig = Rig::start();
    rig.idp.configure(|b| {
        b.id_token = ClaimEdits::none()
            .set("aud", json!(["client1", "other-client"]))
            .set("azp", json!("client1"));
    });
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
}

// ---------------------------------------------------------------- signatures

#[test]
fn rp_id_token_sig_rs256() {
    let mut rig = Rig::start();
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
    assert_eq!(shown_id_token(&page).0["alg"], "RS256");
}

#[test]
fn rp_id_token_bad_sig_rs256() {
    // Signed by a key the IdP never published, under the published key's kid.
    let rig = login_refused(
        |idp| {
            idp.add_key(KeyKind::Rsa, "rogue-rsa");
            idp.configure(|b| {
                b.signer = Signer::key_with_header("rogue-rsa", HeaderKid::Named(RSA_KID.into()))
            });
        },
        401,
        "signature",
    );
    assert_eq!(rig.idp.issued_id_tokens(), 1);
}

#[test]
fn rp_id_token_sig_es256() {
    let mut rig = Rig::start();
    rig.idp.configure(|b| b.signer = Signer::key(EC_KID));
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
    let (header, _) = shown_id_token(&page);
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("ES256"), Some(EC_KID))
    );
}

#[test]
fn rp_id_token_bad_sig_es256() {
    login_refused(
        |idp| {
            idp.add_key(KeyKind::Ec, "rogue-ec");
            idp.configure(|b| {
                b.signer = Signer::key_with_header("rogue-ec", HeaderKid::Named(EC_KID.into()))
            });
        },
        401,
        "signature",
    );
}

#[test]
fn rp_id_token_sig_none() {
    login_refused(
        |idp| idp.configure(|b| b.signer = Signer::AlgNone),
        401,
        "none",
    );
}

#[test]
fn hs256_signed_with_the_client_secret_is_refused() {
    login_refused(
        |idp| idp.configure(|b| b.signer = Signer::Hs256ClientSecret),
        401,
        "HS256",
    );
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    login_refused(
        |idp| {
            idp.configure(|b| {
                b.signer = Signer::Hs256RsaPublicKey {
                    kid: RSA_KID.into(),
                }
            })
        },
        401,
        "HS256",
    );
}

// ---------------------------------------------------------------- kid and JWKS

#[test]
fn rp_id_token_kid_absent_single_jwks() {
    let mut rig = Rig::start();
    rig.idp.publish(&[RSA_KID]);
    rig.idp
        .configure(|b| b.signer = Signer::key_with_header(RSA_KID, HeaderKid::Absent));
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
    assert!(
        shown_id_token(&page).0.get("kid").is_none(),
        "the token has no kid"
    );
}

#[test]
fn rp_id_token_kid_absent_multiple_jwks() {
    let mut rig = Rig::start();
    rig.idp.add_key(KeyKind::Rsa, "rsa-2");
    rig.idp.add_key(KeyKind::Rsa, "rogue-rsa");
    rig.idp.publish(&[RSA_KID, "rsa-2", EC_KID]);

    // Signed by the second published RSA key, no kid: one of the keys verifies it.
    rig.idp
        .configure(|b| b.signer = Signer::key_with_header("rsa-2", HeaderKid::Absent));
    let page = rig.login();
    assert_logged_in(&mut rig, &page);

    // Signed by a key no published key matches, no kid: refused, by a new browser.
    rig.fresh_browser();
    let jwks_before = rig.idp.count(Endpoint::Jwks);
    rig.idp
        .configure(|b| b.signer = Signer::key_with_header("rogue-rsa", HeaderKid::Absent));
    let callback = rig.login_callback();
    rig.assert_refused(&callback, 401, "signature");
    // Published keys fit the token, so it is a bad signature, not an unknown key: no
    // refetch (a kid-less forgery cannot make the component call the IdP).
    assert_eq!(
        rig.idp.count(Endpoint::Jwks),
        jwks_before,
        "a kid-less token no published key verifies makes no JWKS refetch"
    );
}

#[test]
fn rp_key_rotation_op_sign_key() {
    let mut rig = Rig::start();
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
    let before = rig.idp.count(Endpoint::Jwks);
    assert_eq!(before, 1, "the first login fetched the JWKS once");

    // The OP rotates: a new key signs; the old one is gone from the JWKS.
    rig.idp.rotate_to(KeyKind::Rsa, "rsa-2");
    let page = rig.login();
    assert_eq!(
        page.text_by_id("username").as_deref().map(str::trim),
        Some("alice")
    );
    assert_eq!(shown_id_token(&page).0["kid"], "rsa-2");
    let after = rig.idp.count(Endpoint::Jwks);
    eprintln!("key rotation: JWKS fetches {before} before, {after} after the rotated login");
    assert_eq!(after, before + 1, "exactly one refetch on the unknown kid");

    // The next login with the new key uses the refreshed cache.
    rig.login();
    assert_eq!(
        rig.idp.count(Endpoint::Jwks),
        after,
        "no fetch once the key is known"
    );
}

/// `n` fresh browsers each start a login and pass the fake's authorization endpoint;
/// then, released together, they all GET /callback at once. Returns each browser with
/// its callback answer.
fn concurrent_callbacks(rig: &Rig, n: usize) -> Vec<(Browser, Response)> {
    let base = rig.base().to_string();
    let authorization = rig.idp.url(Endpoint::Authorization);
    let all_ready = Barrier::new(n);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let (base, authorization, all_ready) = (&base, &authorization, &all_ready);
                scope.spawn(move || {
                    let mut browser = Browser::new();
                    let page = browser.get(&format!("{base}/"));
                    page.assert_status(200);
                    let form = page.form_with_action_path("/login");
                    let to_idp = browser.submit(&page, &form);
                    to_idp.assert_redirect(303, authorization);
                    let to_callback = browser.follow(&to_idp);
                    to_callback.assert_redirect(303, &format!("{base}/callback"));
                    all_ready.wait();
                    let callback = browser.follow(&to_callback);
                    (browser, callback)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a flooding browser panicked"))
            .collect()
    })
}

/// Every browser of a flood was refused with `status` (or any of `statuses`) and a
/// message naming the key, and is not logged in; the store holds no session but the
/// `sessions` there were before.
#[track_caller]
fn assert_flood_refused(
    rig: &Rig,
    flood: &mut [(Browser, Response)],
    statuses: &[u16],
    sessions: &[String],
) -> BTreeMap<u16, usize> {
    let mut seen = BTreeMap::new();
    for (browser, callback) in flood.iter_mut() {
        assert!(
            statuses.contains(&callback.status),
            "a flooding callback answered {}, not one of {statuses:?}: {}",
            callback.status,
            callback.describe()
        );
        *seen.entry(callback.status).or_insert(0) += 1;
        let message = callback
            .error_message()
            .unwrap_or_else(|| panic!("no error message: {}", callback.describe()));
        if callback.status == 401 {
            assert!(message.contains("key"), "{message:?}");
        }
        let user = browser.get(&rig.url("/user"));
        user.assert_redirect(303, &rig.url("/"));
    }
    assert_eq!(rig.session_keys(), sessions, "no session from the flood");
    seen
}

/// A rig with one user logged in, which fetched the JWKS once: the rig, its
/// session keys and the JWKS fetch count so far.
fn logged_in_with_keys_cached() -> (Rig, Vec<String>, usize) {
    let mut rig = Rig::start();
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
    let sessions = rig.session_keys();
    let warm = rig.idp.count(Endpoint::Jwks);
    assert_eq!(warm, 1, "the login fetched the JWKS once");
    (rig, sessions, warm)
}

#[test]
fn unknown_kid_after_refetch_is_refused_and_a_flood_does_not_hammer_the_jwks() {
    const FLOOD: usize = 20;
    let (mut rig, sessions, warm) = logged_in_with_keys_cached();

    // A kid the JWKS does not list, before or after a refetch.
    rig.fresh_browser();
    rig.idp.add_key(KeyKind::Rsa, "rogue-rsa");
    rig.idp.configure(|b| b.signer = Signer::key("rogue-rsa"));
    let callback = rig.login_callback();
    let forced_at = Instant::now();
    rig.assert_refused(&callback, 401, "key");
    let after_one = rig.idp.count(Endpoint::Jwks);
    assert_eq!(
        after_one,
        warm + 1,
        "the unknown kid made the component refetch once"
    );

    // A flood of tokens naming a made-up kid, all at the same moment.
    rig.idp.configure(|b| {
        b.signer = Signer::key_with_header("rogue-rsa", HeaderKid::Named("made-up".into()))
    });
    let mut flood = concurrent_callbacks(&rig, FLOOD);
    assert_flood_refused(&rig, &mut flood, &[401], &sessions);
    let after_flood = rig.idp.count(Endpoint::Jwks);
    // At most one forced refetch per 60 s: within the first minute, none at all.
    let allowed = (forced_at.elapsed().as_secs() / 60) as usize;
    assert!(
        after_flood - after_one <= allowed,
        "{FLOOD} unknown kids at once caused {} JWKS fetches (allowed {allowed}; \
         {warm} warm, {after_one} after one unknown kid, {:?} since the forced refetch)",
        after_flood - after_one,
        forced_at.elapsed()
    );

    // A flood that is the first unknown kid in a minute, all at the same moment:
    // one refetch between them, whether the JWKS endpoint answers or fails (a
    // failed refetch must not lift the rate limit, or every token of a flood
    // calls the IdP while it is down).
    let outcomes: Vec<String> = [
        None,
        Some(Fault::json(500, json!({"error": "server_error"}))),
    ]
    .into_iter()
    .filter_map(|fault| {
        let failing = fault.is_some();
        let (fetches, allowed, answers) = first_flood(FLOOD, fault);
        (fetches > allowed).then(|| {
            format!(
                "{FLOOD} unknown kids at once, the JWKS endpoint {}, caused {fetches} JWKS \
                     fetches (allowed {allowed}); the answers: {answers:?}",
                if failing { "failing" } else { "answering" }
            )
        })
    })
    .collect();
    assert!(outcomes.is_empty(), "{outcomes:#?}");
}

/// A rig with one login (the JWKS cached, no forced refetch yet), then `n`
/// callbacks at once with ID tokens naming an unknown kid, while the JWKS endpoint
/// has `fault`: every one refused (401, or 502 when the refetch fails) and nobody
/// logged in. Returns the JWKS fetches during the flood, how many are allowed (one
/// per started minute) and the answers by status.
fn first_flood(n: usize, fault: Option<Fault>) -> (usize, usize, BTreeMap<u16, usize>) {
    let (rig, sessions, warm) = logged_in_with_keys_cached();
    rig.idp.add_key(KeyKind::Rsa, "rogue-rsa");
    rig.idp.configure(|b| {
        b.signer = Signer::key_with_header("rogue-rsa", HeaderKid::Named("made-up".into()))
    });
    let statuses: &[u16] = if fault.is_some() { &[401, 502] } else { &[401] };
    rig.idp.fault(Endpoint::Jwks, fault);
    let started = Instant::now();
    let mut flood = concurrent_callbacks(&rig, n);
    let answers = assert_flood_refused(&rig, &mut flood, statuses, &sessions);
    let fetches = rig.idp.count(Endpoint::Jwks) - warm;
    let allowed = 1 + (started.elapsed().as_secs() / 60) as usize;
    (fetches, allowed, answers)
}

// ---------------------------------------------------------------- discovery, userinfo, iss

#[test]
fn rp_discovery_issuer_not_matching_config() {
    let mut rig = Rig::start();
    let other = format!("{}/../other", rig.idp.issuer());
    rig.idp
        .configure(|b| b.discovery = ClaimEdits::none().set("issuer", json!(other)));
    let response = rig.begin_login();
    rig.assert_refused(&response, 502, "issuer");
    assert_eq!(
        rig.keys("*"),
        Vec::<String>::new(),
        "nothing stored, not even a cache"
    );
    assert_eq!(rig.idp.count(Endpoint::Authorization), 0);
}

#[test]
fn rp_userinfo_bad_sub_claim() {
    let rig = login_refused(
        |idp| idp.configure(|b| b.userinfo = ClaimEdits::none().set("sub", json!("mallory"))),
        401,
        "sub",
    );
    assert_eq!(rig.idp.count(Endpoint::Userinfo), 1);
}

#[test]
fn rfc9207_wrong_iss_on_the_callback_is_refused() {
    login_refused(
        |idp| {
            idp.configure(|b| {
                b.callback_iss = CallbackIss::Value("http://127.0.0.1:1/realms/fake".into())
            })
        },
        400,
        "iss",
    );
}

#[test]
fn rfc9207_missing_iss_is_refused_when_promised_and_accepted_when_not() {
    let rig = login_refused(
        |idp| idp.configure(|b| b.callback_iss = CallbackIss::Absent),
        400,
        "iss",
    );
    assert_eq!(rig.idp.count(Endpoint::Token), 0, "no code exchange");

    let mut rig = Rig::start_with(RigOptions::default().behaviour(|b| {
        b.iss_parameter_supported = false;
        b.callback_iss = CallbackIss::Absent;
    }));
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
}

// ---------------------------------------------------------------- refresh

/// Logs in, refreshes once successfully, then makes the next refresh return an ID token
/// with `edits`: the refresh must end the session.
fn refresh_with_changed_identity_ends_the_session(edits: ClaimEdits, fragment: &str) {
    let mut rig = Rig::start();
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
    let form = page.form_with_action_path("/refresh");
    let refreshed = rig.browser.submit(&page, &form);
    refreshed.assert_redirect(303, &rig.url("/user"));
    assert_eq!(
        rig.idp.issued_id_tokens(),
        2,
        "the refresh brought a new ID token"
    );
    let page = rig.browser.follow(&refreshed);
    page.assert_status(200);

    rig.idp.configure(|b| b.refresh_id_token = Some(edits));
    let form = page.form_with_action_path("/refresh");
    let refused = rig.browser.submit(&page, &form);
    assert_eq!(rig.idp.issued_id_tokens(), 3);
    rig.assert_refused(&refused, 401, fragment);
}

#[test]
fn refresh_returning_another_sub_ends_the_session() {
    refresh_with_changed_identity_ends_the_session(
        ClaimEdits::none().set("sub", json!("mallory")),
        "session has ended",
    );
}

#[test]
fn refresh_returning_another_iss_ends_the_session() {
    refresh_with_changed_identity_ends_the_session(
        ClaimEdits::none().set("iss", json!("http://127.0.0.1:1/realms/other")),
        "session has ended",
    );
}

// ---------------------------------------------------------------- a broken IdP

#[test]
fn idp_unreachable_before_login() {
    let mut rig = Rig::start();
    rig.idp.stop();
    let response = rig.begin_login();
    rig.assert_refused(&response, 502, "could not be reached");
    assert_eq!(rig.keys("*"), Vec::<String>::new());
}

#[test]
fn idp_unreachable_at_the_code_exchange() {
    let mut rig = Rig::start();
    let to_idp = rig.begin_login();
    let to_callback = rig.browser.follow(&to_idp);
    to_callback.assert_redirect(303, &rig.url("/callback"));
    rig.idp.stop();
    let callback = rig.browser.follow(&to_callback);
    rig.assert_refused(&callback, 502, "could not be reached");
}

/// A rig whose IdP calls time out after 2 s.
fn impatient_rig() -> Rig {
    Rig::start_with(RigOptions::default().variable("idp_timeout", "2"))
}

/// `endpoint` answers only after `delay` (or never): the page says 504 and nothing is stored.
fn slow(endpoint: Endpoint, fault: Fault) {
    let mut rig = impatient_rig();
    if endpoint == Endpoint::Discovery {
        rig.idp.fault(endpoint, Some(fault));
        let (response, took) = Rig::timed(|| rig.begin_login());
        eprintln!("slow {endpoint:?}: answered after {took:?}");
        rig.assert_refused(&response, 504, "did not answer in time");
        assert_eq!(rig.keys("*"), Vec::<String>::new());
    } else {
        rig.idp.fault(endpoint, Some(fault));
        let (response, took) = Rig::timed(|| rig.login_callback());
        eprintln!("slow {endpoint:?}: answered after {took:?}");
        rig.assert_refused(&response, 504, "did not answer in time");
    }
}

#[test]
fn slow_discovery_gives_504() {
    slow(Endpoint::Discovery, Fault::Delay(Duration::from_secs(6)));
}

#[test]
fn hanging_token_endpoint_gives_504() {
    slow(Endpoint::Token, Fault::Hang);
}

#[test]
fn slow_jwks_gives_504() {
    slow(Endpoint::Jwks, Fault::Delay(Duration::from_secs(6)));
}

#[test]
fn slow_userinfo_gives_504() {
    slow(Endpoint::Userinfo, Fault::Delay(Duration::from_secs(6)));
}

/// `endpoint` answers `fault`: the page says 502 and nothing is stored.
fn broken(endpoint: Endpoint, fault: Fault, fragment: &str) {
    let mut rig = Rig::start();
    rig.idp.fault(endpoint, Some(fault));
    let response = if endpoint == Endpoint::Discovery {
        rig.begin_login()
    } else {
        rig.login_callback()
    };
    rig.assert_refused(&response, 502, fragment);
    if endpoint == Endpoint::Discovery {
        assert_eq!(rig.keys("*"), Vec::<String>::new());
    }
}

#[test]
fn discovery_garbage_gives_502() {
    broken(Endpoint::Discovery, Fault::garbage(), "invalid response");
}

#[test]
fn discovery_malformed_json_gives_502() {
    broken(
        Endpoint::Discovery,
        Fault::malformed_json(),
        "invalid response",
    );
}

#[test]
fn discovery_error_status_gives_502() {
    broken(
        Endpoint::Discovery,
        Fault::json(500, json!({"error": "oops"})),
        "invalid response",
    );
}

#[test]
fn discovery_without_endpoints_gives_502() {
    broken(
        Endpoint::Discovery,
        Fault::json(200, json!({"issuer": "x"})),
        "invalid response",
    );
}

#[test]
fn token_garbage_gives_502() {
    broken(Endpoint::Token, Fault::garbage(), "invalid response");
}

#[test]
fn token_malformed_json_gives_502() {
    broken(Endpoint::Token, Fault::malformed_json(), "invalid response");
}

#[test]
fn token_server_error_gives_502() {
    broken(
        Endpoint::Token,
        Fault::json(500, json!({"error": "server_error"})),
        "invalid response",
    );
}

#[test]
fn token_connection_closed_gives_502() {
    broken(Endpoint::Token, Fault::Close, "could not be reached");
}

#[test]
fn token_response_without_id_token_gives_502() {
    let mut rig = Rig::start();
    rig.idp
        .configure(|b| b.token_response = ClaimEdits::none().remove("id_token"));
    let callback = rig.login_callback();
    rig.assert_refused(&callback, 502, "id_token");
}

#[test]
fn jwks_garbage_gives_502() {
    broken(Endpoint::Jwks, Fault::garbage(), "invalid response");
}

#[test]
fn jwks_malformed_json_gives_502() {
    broken(Endpoint::Jwks, Fault::malformed_json(), "invalid response");
}

#[test]
fn jwks_without_keys_gives_502() {
    broken(
        Endpoint::Jwks,
        Fault::json(200, json!({"no": "keys"})),
        "invalid response",
    );
}

#[test]
fn userinfo_garbage_gives_502() {
    broken(Endpoint::Userinfo, Fault::garbage(), "invalid response");
}

// ---------------------------------------------------------------- deep JSON

/// JSON nested `levels` arrays deep around a string.
fn nested(levels: usize) -> serde_json::Value {
    (0..levels).fold(json!("the bottom"), |inner, _| json!([inner]))
}

/// The component runs on a 128 KiB shadow stack (build.rs). Claims nested as deep as
/// the JSON parser allows are taken and shown; deeper answers are a clean 502, never
/// a trap.
#[test]
fn deeply_nested_claims_are_shown_and_deeper_json_is_refused() {
    let mut rig = Rig::start_with(RigOptions::default().behaviour(|b| {
        b.id_token = ClaimEdits::none().set("deep_id", nested(120));
        b.userinfo = ClaimEdits::none().set("deep_info", nested(120));
    }));
    let page = rig.login();
    assert_logged_in(&mut rig, &page);
    let (_, claims) = shown_id_token(&page);
    assert_eq!(claims["deep_id"], nested(120));
    assert!(page.body.contains("deep_info"), "userinfo is shown");
    assert_eq!(
        page.body.matches("the bottom").count(),
        2,
        "both claims, whole"
    );

    let depth = 20_000;
    broken(
        Endpoint::Userinfo,
        Fault::Respond {
            status: 200,
            content_type: "application/json".into(),
            body: format!(
                r#"{{"sub":"alice","deep":{}0{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            ),
        },
        "invalid response",
    );
}

// ---------------------------------------------------------------- a bad origin

/// `oidc_idp_origin` with a path: Spin (3.6 / 4.0) starts the app anyway, because
/// `allowed_outbound_hosts = ["{{ oidc_idp_origin }}"]` names a required variable
/// that `spin up` cannot check before a request (crates/loader/src/local.rs checks
/// templates with default values only), and an outbound request would be denied at
/// run time. The component checks the setting first: as the README says, a page and
/// a log line name the variable, `/readyz` fails, and the IdP is never called.
#[test]
fn an_idp_origin_with_a_path_is_a_page_and_a_log_line_not_a_start_up_failure() {
    let mut rig = Rig::start_with(
        RigOptions::default().variable("oidc_idp_origin", "http://127.0.0.1:1/realms/demo"),
    );
    assert!(rig.host.is_running(), "the host serves, as `spin up` does");

    let page = rig.browser.get(&rig.url("/"));
    page.assert_status(503);
    let message = page.error_message().unwrap_or_default();
    assert!(message.contains("`oidc_idp_origin`"), "{}", page.describe());
    let (login_url, origin) = (rig.url("/login"), rig.base().to_owned());
    let login_url = url::Url::parse(&login_url).unwrap();
    let login = rig
        .browser
        .request("POST", &login_url, &[("origin", &origin)], None);
    login.assert_status(503);
    rig.browser.get(&rig.url("/readyz")).assert_status(503);
    rig.browser.get(&rig.url("/healthz")).assert_status(200);

    e2e::wait::wait_until(
        Duration::from_secs(5),
        "a log line naming the variable",
        || {
            let log = rig.host.log();
            log.lines()
                .any(|l| l.contains("config") && l.contains("oidc_idp_origin"))
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.host.log()));
    assert_eq!(
        rig.idp.counts().values().sum::<usize>(),
        0,
        "nothing was sent to the IdP"
    );
}
