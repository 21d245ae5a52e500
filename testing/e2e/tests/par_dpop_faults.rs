//! Pushed authorization requests (RFC 9126) and DPoP (RFC 9449) against the fake
//! IdP, which checks every pushed request and every proof and can misbehave.
//!
//! PAR: the browser carries only `client_id` and `request_uri`, the pushed
//! parameters are complete; a refused push or a malformed answer is a 502 naming it,
//! with nothing stored and no login cookie; `always` without an endpoint and `never`
//! against an IdP that requires pushing are 502 pages. DPoP: a nonce challenge at the
//! token endpoint is answered once (two token requests, both proofs valid), userinfo
//! gets `DPoP` with `ath`, refresh carries a proof by the same key; a second
//! challenge, or a `Bearer` answer, is a 502 with nothing stored. The `dpop_jkt` sent
//! is the proofs' key thumbprint and `/user` shows it. No private key member and no
//! client secret reaches a page or the log.

use e2e::Response;
use e2e::app::UserPage;
use e2e::fake_idp::{
    CLIENT_ID, CLIENT_SECRET, ClaimEdits, DpopNonce, Endpoint, Fault, REQUEST_URI_PREFIX,
    access_token_hash, jwk_thumbprint,
};
use e2e::rig::{Rig, RigOptions};
use serde_json::{Value, json};
use test_support::client_keys::{P256_D, P256_JWK};

/// Texts that would betray key material or the client secret: a private JWK's `d`
/// member (raw or HTML-escaped) and the secret itself.
const SECRETS: [&str; 4] = ["\"d\":", "&quot;d&quot;:", "&#34;d&#34;:", CLIENT_SECRET];

/// No secret in the host's log nor in any of `pages`.
#[track_caller]
fn assert_no_secrets(rig: &Rig, pages: &[&Response]) {
    let log = rig.host.log();
    for secret in SECRETS.iter().chain([&P256_D]) {
        assert!(!log.contains(secret), "{secret:?} in the host log");
        for page in pages {
            assert!(
                !page.body.contains(secret),
                "{secret:?} on {} {}",
                page.method,
                page.url
            );
        }
    }
}

/// `response` set no login cookie and the browser holds none.
#[track_caller]
fn assert_no_login_cookie(rig: &Rig, response: &Response) {
    assert!(
        response.set_cookie("oidc_login").is_none(),
        "a login cookie: {}",
        response.describe()
    );
    assert_eq!(rig.browser.cookie(rig.base(), "oidc_login"), None);
}

#[track_caller]
fn assert_no_problems(rig: &Rig) {
    assert_eq!(
        rig.idp.problems(),
        Vec::<String>::new(),
        "protocol violations"
    );
}

/// A proof as the contract has it: `dpop+jwt`, ES256, a public P-256 jwk with
/// exactly its public members; `htm` and `htu` of this request; `iat` and `jti`.
#[track_caller]
fn assert_proof_shape((header, claims): &(Value, Value), htm: &str, htu: &str) {
    assert_eq!(
        (&header["typ"], &header["alg"]),
        (&json!("dpop+jwt"), &json!("ES256")),
        "{header}"
    );
    let mut members: Vec<&str> = header["jwk"]
        .as_object()
        .expect("a jwk")
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["crv", "kty", "x", "y"], "{header}");
    assert_eq!(
        (&claims["htm"], &claims["htu"]),
        (&json!(htm), &json!(htu)),
        "{claims}"
    );
    assert!(claims["iat"].is_i64(), "{claims}");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );
}

fn par_rig() -> Rig {
    Rig::start_with(RigOptions::default().behaviour(|b| b.par_endpoint = true))
}

/// A rig whose fake IdP requires DPoP (JWT access tokens, so `cnf.jkt` shows) and
/// whose component has `dpop = on`.
fn dpop_rig(change: impl FnOnce(&mut e2e::fake_idp::Behaviour)) -> Rig {
    Rig::start_with(
        RigOptions::default()
            .behaviour(|b| {
                b.dpop = true;
                b.jwt_access_tokens = true;
                change(b);
            })
            .variable("dpop", "on"),
    )
}

// ------------------------------------------------------------------ PAR

#[test]
fn par_login_pushes_and_the_browser_carries_only_client_id_and_request_uri() {
    let mut rig = par_rig();
    let to_idp = rig.begin_login();
    let authorization = to_idp.assert_redirect(303, &rig.idp.url(Endpoint::Authorization));
    assert!(to_idp.set_cookie("oidc_login").is_some(), "a login begun");

    let pushed = rig.idp.pushed_requests();
    assert_eq!(pushed.len(), 1, "one push");
    let query: Vec<(String, String)> = authorization.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        [
            ("client_id".to_string(), CLIENT_ID.to_string()),
            ("request_uri".to_string(), pushed[0].request_uri.clone()),
        ],
        "nothing else travels through the browser"
    );
    assert!(pushed[0].request_uri.starts_with(REQUEST_URI_PREFIX));
    let p = &pushed[0].params;
    let callback_url = rig.url("/callback");
    for (name, value) in [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", callback_url.as_str()),
        ("code_challenge_method", "S256"),
    ] {
        assert_eq!(p.get(name).map(String::as_str), Some(value), "{name}");
    }
    for name in ["state", "nonce", "code_challenge"] {
        assert!(p.get(name).is_some_and(|v| !v.is_empty()), "{name}: {p:?}");
    }
    assert!(
        p["scope"].split(' ').any(|s| s == "openid"),
        "{}",
        p["scope"]
    );
    assert!(!p.contains_key("dpop_jkt"), "dpop is off");
    assert_eq!(pushed[0].auth_method, "client_secret_basic");

    let to_callback = rig.browser.follow(&to_idp);
    to_callback.assert_redirect(303, &rig.url("/callback"));
    let callback = rig.browser.follow(&to_callback);
    callback.assert_redirect(303, &rig.url("/user"));
    let page = rig.browser.follow(&callback);
    page.assert_status(200);
    assert_eq!(
        UserPage::parse(&page).username.as_deref(),
        Some("alice"),
        "/user works"
    );
    assert_eq!(page.text_by_id("par").as_deref(), Some("pushed (PAR)"));
    assert_eq!(page.text_by_id("token-type").as_deref(), Some("Bearer"));
    assert_eq!(
        (rig.idp.count(Endpoint::Par), rig.idp.count(Endpoint::Token)),
        (1, 1)
    );
    assert_no_problems(&rig);
    assert_no_secrets(&rig, &[&to_idp, &callback, &page]);
}

#[test]
fn a_refused_push_gives_502_naming_the_error_and_stores_nothing() {
    let mut rig = par_rig();
    let cases = [
        (
            Fault::json(400, json!({"error": "invalid_request"})),
            "the pushed authorization request was refused (invalid_request)",
        ),
        (
            Fault::json(400, json!({})),
            "the pushed authorization request was refused (HTTP 400)",
        ),
        (
            Fault::Respond {
                status: 500,
                content_type: "text/plain".into(),
                body: "internal error".into(),
            },
            "the pushed authorization request was refused (HTTP 500)",
        ),
    ];
    let n = cases.len();
    for (fault, message) in cases {
        rig.fresh_browser();
        rig.idp.fault(Endpoint::Par, Some(fault));
        let response = rig.begin_login();
        assert_no_login_cookie(&rig, &response);
        rig.assert_refused(&response, 502, message);
        assert_no_secrets(&rig, &[&response]);
    }
    assert_eq!(rig.idp.count(Endpoint::Par), n);
    assert_eq!(rig.idp.count(Endpoint::Authorization), 0);
    assert_no_problems(&rig);
}

#[test]
fn a_malformed_push_answer_gives_502_and_stores_nothing() {
    let mut rig = par_rig();
    let uri = |len: usize| {
        format!(
            "{REQUEST_URI_PREFIX}{}",
            "a".repeat(len - REQUEST_URI_PREFIX.len())
        )
    };
    let good = uri(40);
    let created = |body: Value| Fault::json(201, body);
    let cases = [
        ("no request_uri", created(json!({"expires_in": 60}))),
        (
            "an empty request_uri",
            created(json!({"request_uri": "", "expires_in": 60})),
        ),
        (
            "a number",
            created(json!({"request_uri": 42, "expires_in": 60})),
        ),
        (
            "a space",
            created(json!({"request_uri": format!("{good} x"), "expires_in": 60})),
        ),
        (
            "2049 characters",
            created(json!({"request_uri": uri(2049), "expires_in": 60})),
        ),
        ("no expires_in", created(json!({"request_uri": good}))),
        (
            "expires_in 0",
            created(json!({"request_uri": good, "expires_in": 0})),
        ),
        (
            "expires_in negative",
            created(json!({"request_uri": good, "expires_in": -60})),
        ),
        (
            "expires_in a string",
            created(json!({"request_uri": good, "expires_in": "60"})),
        ),
        ("a JSON array", created(json!([good]))),
        (
            "not JSON",
            Fault::Respond {
                status: 201,
                content_type: "text/html".into(),
                body: "<html><body>Created</body></html>".into(),
            },
        ),
        ("truncated JSON", Fault::malformed_json()),
    ];
    let n = cases.len();
    for (what, fault) in cases {
        eprintln!("case: {what}");
        rig.fresh_browser();
        rig.idp.fault(Endpoint::Par, Some(fault));
        let response = rig.begin_login();
        assert_no_login_cookie(&rig, &response);
        rig.assert_refused(
            &response,
            502,
            "the pushed authorization response is malformed",
        );
    }
    assert_eq!(rig.idp.count(Endpoint::Par), n);
    assert_eq!(rig.idp.count(Endpoint::Authorization), 0);

    // The bound itself is fine: 2048 characters and a 200 are taken as they are.
    let longest = uri(2048);
    rig.fresh_browser();
    rig.idp.fault(
        Endpoint::Par,
        Some(Fault::json(
            200,
            json!({"request_uri": longest, "expires_in": 1}),
        )),
    );
    let to_idp = rig.begin_login();
    let location = to_idp.assert_redirect(303, &rig.idp.url(Endpoint::Authorization));
    let request_uri = location
        .query_pairs()
        .find(|(k, _)| k == "request_uri")
        .map(|(_, v)| v.into_owned());
    assert_eq!(request_uri.as_deref(), Some(longest.as_str()));
    assert_no_problems(&rig);
}

#[test]
fn par_always_without_an_endpoint_gives_502_and_stores_nothing() {
    let mut rig =
        Rig::start_with(RigOptions::default().variable("pushed_authorization_requests", "always"));
    refused_before_the_idp(&mut rig, "pushed_authorization_request_endpoint");
}

#[test]
fn par_never_against_an_idp_that_requires_it_gives_502_and_stores_nothing() {
    let mut rig = Rig::start_with(
        RigOptions::default()
            .behaviour(|b| {
                b.par_endpoint = true;
                b.require_par = true;
            })
            .variable("pushed_authorization_requests", "never"),
    );
    refused_before_the_idp(&mut rig, "the IdP requires pushed authorization requests");
}

/// A login the setting and discovery disagree on: a 502 saying `why`, no
/// login cookie, nothing stored, and neither a push nor a redirect to the IdP.
fn refused_before_the_idp(rig: &mut Rig, why: &str) {
    let response = rig.begin_login();
    assert_no_login_cookie(rig, &response);
    rig.assert_refused(&response, 502, why);
    assert_eq!(
        (
            rig.idp.count(Endpoint::Par),
            rig.idp.count(Endpoint::Authorization)
        ),
        (0, 0)
    );
    assert_no_problems(rig);
}

#[test]
fn par_never_redirects_plainly_though_the_idp_offers_pushing() {
    let mut rig = Rig::start_with(
        RigOptions::default()
            .in_memory()
            .behaviour(|b| b.par_endpoint = true)
            .variable("pushed_authorization_requests", "never"),
    );
    let page = rig.login();
    assert_eq!(rig.idp.count(Endpoint::Par), 0);
    let query = rig
        .idp
        .last_authorization()
        .expect("an authorization request");
    assert_eq!(query.get("response_type").map(String::as_str), Some("code"));
    assert!(!query.contains_key("request_uri"), "{query:?}");
    assert_eq!(
        page.text_by_id("par").as_deref(),
        Some("through the browser")
    );
    assert_no_problems(&rig);
}

// ----------------------------------------------------------------- DPoP

#[test]
fn dpop_login_answers_one_nonce_challenge_and_refresh_carries_a_proof() {
    let mut rig = dpop_rig(|b| b.dpop_nonce = DpopNonce::Once);
    let page = rig.login();
    let token_url = rig.idp.url(Endpoint::Token);

    // Two token requests: the first without a nonce, challenged; then with it.
    assert_eq!(rig.idp.count(Endpoint::Token), 2);
    let proofs = rig.idp.dpop_proofs(Endpoint::Token);
    assert_eq!(proofs.len(), 2, "a proof on each token request");
    let nonces = rig.idp.dpop_nonces_issued();
    assert_eq!(nonces.len(), 1, "{nonces:?}");
    assert_eq!(proofs[0].1.get("nonce"), None, "{}", proofs[0].1);
    assert_eq!(proofs[1].1["nonce"], json!(nonces[0]));
    for proof in &proofs {
        assert_proof_shape(proof, "POST", &token_url);
    }
    assert_ne!(proofs[0].1["jti"], proofs[1].1["jti"], "a fresh jti");
    let jwk = &proofs[0].0["jwk"];
    assert_eq!(&proofs[1].0["jwk"], jwk, "one key per login");
    let jkt = jwk_thumbprint(jwk).expect("a P-256 jwk");

    // The authorization request named that key; the token is bound to it.
    let authorization = rig.idp.last_authorization().unwrap();
    assert_eq!(authorization.get("dpop_jkt"), Some(&jkt));
    let access_token = UserPage::parse(&page)
        .access_token
        .expect("the page shows the access token");
    let (_, at_claims) = e2e::oidc::decode_jwt(&access_token);
    assert_eq!(at_claims["cnf"]["jkt"], json!(jkt));

    // Userinfo: the DPoP scheme and a proof for GET with the token's hash.
    let userinfo = rig.idp.requests(Endpoint::Userinfo);
    assert_eq!(userinfo.len(), 1);
    assert_eq!(
        userinfo[0].header("authorization"),
        Some(format!("DPoP {access_token}").as_str())
    );
    let ui_proofs = rig.idp.dpop_proofs(Endpoint::Userinfo);
    assert_eq!(ui_proofs.len(), 1);
    assert_proof_shape(&ui_proofs[0], "GET", &rig.idp.url(Endpoint::Userinfo));
    assert_eq!(
        ui_proofs[0].1["ath"],
        json!(access_token_hash(&access_token))
    );
    assert_eq!(&ui_proofs[0].0["jwk"], jwk);

    // The page says so.
    assert_eq!(page.text_by_id("token-type").as_deref(), Some("DPoP"));
    assert_eq!(page.text_by_id("dpop-jkt").as_deref(), Some(jkt.as_str()));
    assert_eq!(page.text_by_id("cnf-jkt").as_deref(), Some(jkt.as_str()));
    assert_no_problems(&rig);

    // Refresh: a proof by the same key, with the nonce (at once, or after a challenge).
    let refreshed = rig
        .browser
        .submit(&page, &page.form_with_action_path("/refresh"));
    refreshed.assert_redirect(303, &rig.url("/user"));
    let after = rig.browser.follow(&refreshed);
    after.assert_status(200);
    let proofs = rig.idp.dpop_proofs(Endpoint::Token);
    assert!(proofs.len() > 2, "the refresh sent a proof");
    assert_eq!(
        proofs.len(),
        rig.idp.count(Endpoint::Token),
        "every token request carried one"
    );
    for proof in &proofs[2..] {
        assert_proof_shape(proof, "POST", &token_url);
        assert_eq!(&proof.0["jwk"], jwk, "the session's key");
    }
    assert_eq!(proofs.last().unwrap().1["nonce"], json!(nonces[0]));
    assert_eq!(after.text_by_id("dpop-jkt").as_deref(), Some(jkt.as_str()));
    assert_ne!(UserPage::parse(&after).access_token, Some(access_token));
    assert_no_problems(&rig);
    assert_no_secrets(&rig, &[&page, &refreshed, &after]);
}

#[test]
fn a_second_nonce_challenge_gives_502_after_two_token_requests_and_stores_nothing() {
    let mut rig = dpop_rig(|b| b.dpop_nonce = DpopNonce::Always);
    let callback = rig.login_callback();
    rig.assert_refused(
        &callback,
        502,
        "the token endpoint asked for a DPoP nonce again after the retry (use_dpop_nonce)",
    );
    assert_eq!(rig.idp.count(Endpoint::Token), 2, "one retry, no more");
    let proofs = rig.idp.dpop_proofs(Endpoint::Token);
    let nonces = rig.idp.dpop_nonces_issued();
    assert_eq!((proofs.len(), nonces.len()), (2, 2));
    assert_eq!(proofs[1].1["nonce"], json!(nonces[0]), "the retry used it");
    assert_eq!(rig.idp.count(Endpoint::Userinfo), 0);
    assert_no_problems(&rig);
    assert_no_secrets(&rig, &[&callback]);
}

#[test]
fn a_bearer_token_type_under_dpop_gives_502_and_stores_nothing() {
    let mut rig = dpop_rig(|b| {
        b.token_response = ClaimEdits::none().set("token_type", json!("Bearer"));
    });
    let callback = rig.login_callback();
    rig.assert_refused(&callback, 502, "the token type is not DPoP");
    assert_eq!(rig.idp.count(Endpoint::Token), 1);
    assert_eq!(rig.idp.dpop_proofs(Endpoint::Token).len(), 1);
    assert_eq!(rig.idp.count(Endpoint::Userinfo), 0);
    assert_no_problems(&rig);
    assert_no_secrets(&rig, &[&callback]);
}

#[test]
fn a_userinfo_nonce_challenge_is_answered_once() {
    let mut rig = dpop_rig(|b| b.userinfo_dpop_nonce = DpopNonce::Once);
    let page = rig.login();
    let proofs = rig.idp.dpop_proofs(Endpoint::Userinfo);
    let nonces = rig.idp.dpop_nonces_issued();
    assert_eq!(
        rig.idp.count(Endpoint::Userinfo),
        2,
        "challenged, then retried"
    );
    assert_eq!((proofs.len(), nonces.len()), (2, 1));
    assert_eq!(proofs[0].1.get("nonce"), None);
    assert_eq!(proofs[1].1["nonce"], json!(nonces[0]));
    assert_ne!(proofs[0].1["jti"], proofs[1].1["jti"]);
    assert!(
        page.text_by_id("userinfo")
            .is_some_and(|u| u.contains("alice@example.test")),
        "the page shows what userinfo said"
    );
    assert_no_problems(&rig);
    assert_no_secrets(&rig, &[&page]);
}

/// PAR, DPoP and `private_key_jwt` together: the pushed `dpop_jkt` is the key the
/// proofs carry, the push and both token requests (challenge and retry) each have a
/// fresh assertion, and the page shows the thumbprint.
#[test]
fn the_pushed_dpop_jkt_is_the_proofs_key_with_private_key_jwt() {
    let mut rig = Rig::start_with(
        RigOptions::default()
            .behaviour(|b| {
                b.par_endpoint = true;
                b.dpop = true;
                b.dpop_nonce = DpopNonce::Once;
                b.jwt_access_tokens = true;
                b.auth_methods = Some(vec!["private_key_jwt".into()]);
            })
            .variable("dpop", "on")
            .variable("token_endpoint_auth_method", "private_key_jwt")
            .variable("client_private_key", P256_JWK),
    );
    let published = rig.browser.get(&rig.url("/jwks.json")).json()["keys"][0].clone();
    rig.idp
        .configure(|b| b.client_assertion_key = Some(published));
    let page = rig.login();

    let pushed = rig.idp.pushed_requests();
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].auth_method, "private_key_jwt");
    let raw = &rig.idp.requests(Endpoint::Par)[0];
    assert_eq!(raw.header("authorization"), None, "no Basic header");
    assert!(!raw.form().contains_key("client_secret"), "no secret");

    let proofs = rig.idp.dpop_proofs(Endpoint::Token);
    assert_eq!(proofs.len(), 2, "challenged once");
    let jkt = jwk_thumbprint(&proofs[0].0["jwk"]).expect("a P-256 jwk");
    assert_eq!(pushed[0].params.get("dpop_jkt"), Some(&jkt));
    assert_eq!(page.text_by_id("dpop-jkt").as_deref(), Some(jkt.as_str()));
    assert_eq!(page.text_by_id("cnf-jkt").as_deref(), Some(jkt.as_str()));
    assert_eq!(page.text_by_id("par").as_deref(), Some("pushed (PAR)"));

    let assertions = rig.idp.client_assertions();
    assert_eq!(assertions.len(), 3, "push, token, token retry");
    for a in &assertions {
        assert_eq!(a["aud"], json!(rig.idp.issuer()));
    }
    assert_no_problems(&rig);
    assert_no_secrets(&rig, &[&page]);
}
