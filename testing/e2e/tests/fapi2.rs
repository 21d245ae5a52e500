//! Pushed authorization requests (RFC 9126) and DPoP (RFC 9449) against the
//! real IdP, set up as the FAPI 2.0 Security Profile wants it: oidc-provider
//! with its FAPI 2.0 profile refuses an authorization request that was not
//! pushed, registers client1 with `private_key_jwt` and DPoP-bound access
//! tokens, demands a server nonce in every DPoP proof, and signs ID tokens with
//! ES256. The component (`dpop=on`, `private_key_jwt`, PAR by discovery) logs
//! in, shows userinfo, refreshes and logs out, on the local store and on three
//! replicas sharing Redis; the IdP's log shows the login was pushed and every
//! token and userinfo request carried a proof that met the nonce challenge.
//!
//! A component told never to push, against that IdP, refuses the login with a
//! clear page before storing anything.

use e2e::app::UserPage;
use e2e::app_stack::{AppStack, StoreKind, assert_snapshot_eq, snapshot, without_prefixes};
use e2e::browser::Response;
use e2e::idp::IdpOptions;
use e2e::replicas::{ReplicaOptions, Replicas, front_url};
use e2e::{Browser, Idp, LoginOptions, Redis, free_port};
use test_support::client_keys::{P256_D, P256_PEM, P256_THUMBPRINT};

const SCOPE: &str = "openid profile email offline_access";

/// client1 as FAPI 2.0 wants it, its assertion keys at `jwks_uri`.
fn fapi_idp(o: IdpOptions, jwks_uri: String) -> IdpOptions {
    IdpOptions {
        token_auth_method: Some("private_key_jwt".into()),
        client_jwks_uri: Some(jwks_uri),
        par_required: true,
        dpop_required: true,
        fapi2: true,
        env: vec![("IDP_ID_TOKEN_SIGNING_ALG".into(), "ES256".into())],
        ..o
    }
}

/// The component's variables for that IdP: `private_key_jwt` with the test key,
/// DPoP on, and PAR left at its default (`auto`: discovery names the endpoint).
fn component_variables() -> Vec<(String, String)> {
    [
        ("token_endpoint_auth_method", "private_key_jwt"),
        ("client_private_key", P256_PEM),
        ("dpop", "on"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into()
}

/// An app and IdP as above; `more` are further component variables.
fn stack(store: StoreKind, more: &[(&str, &str)]) -> AppStack {
    AppStack::start_with(
        store,
        |o| {
            let base = o.redirect_uris[0].trim_end_matches("/callback").to_owned();
            fapi_idp(o, format!("{base}/jwks.json"))
        },
        |h| {
            let mut h = h.without_variable("client_secret");
            for (name, value) in component_variables() {
                h = h.variable(&name, &value);
            }
            for (name, value) in more {
                h = h.variable(name, value);
            }
            h
        },
    )
}

/// The private key's scalar and its PEM's base64 lines: none may appear in a log.
fn key_material() -> Vec<&'static str> {
    let mut parts: Vec<&str> = P256_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    parts.push(P256_D);
    parts
}

#[track_caller]
fn assert_no_key_material(what: &str, text: &str) {
    for secret in key_material() {
        assert!(!text.contains(secret), "key material in {what}");
    }
}

/// The IdP runs as configured: discovery says PAR is required and offers DPoP.
#[track_caller]
fn assert_idp_demands_par_and_dpop(idp: &Idp) {
    let discovery = idp.discovery();
    assert_eq!(
        discovery["require_pushed_authorization_requests"],
        serde_json::Value::Bool(true),
        "{discovery}"
    );
    assert!(
        discovery["dpop_signing_alg_values_supported"]
            .as_array()
            .is_some_and(|algs| algs.iter().any(|a| a == "ES256")),
        "{discovery}"
    );
}

/// `to_idp` (the answer to POST /login) sends the browser to the authorization
/// endpoint with nothing but `client_id` and the `request_uri` the push gave.
#[track_caller]
fn assert_pushed_redirect(to_idp: &Response, idp: &Idp) {
    let location = to_idp.expect_location();
    let mut endpoint = location.clone();
    endpoint.set_query(None);
    assert_eq!(
        endpoint.as_str(),
        idp.endpoint("authorization_endpoint"),
        "POST /login redirects to the authorization endpoint"
    );
    let pairs: Vec<(String, String)> = location
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["client_id", "request_uri"], "{location}");
    assert_eq!(pairs[0].1, "client1");
    assert!(
        pairs[1].1.starts_with("urn:ietf:params:oauth:request_uri:"),
        "the request_uri oidc-provider issues: {location}"
    );
}

/// What the IdP logged for one login with PAR: one push, authenticated with an
/// assertion and naming the DPoP key, answered 201; the authorization endpoint
/// reached with a `request_uri` only.
#[track_caller]
fn assert_one_push(idp: &Idp) {
    assert_eq!(
        idp.par_lines(),
        ["client_assertion=yes dpop_jkt=yes -> 201"],
        "the IdP's log of pushed authorization requests"
    );
    let auth_path = url::Url::parse(&idp.endpoint("authorization_endpoint"))
        .unwrap()
        .path()
        .to_owned();
    let authorizations: Vec<String> = idp
        .log()
        .lines()
        .filter_map(|l| l.strip_prefix("idp: GET "))
        .filter(|l| l.starts_with(&format!("{auth_path}?")))
        .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(authorizations.len(), 1, "{authorizations:?}");
    let query = authorizations[0].split_once('?').unwrap().1;
    let names: Vec<&str> = query
        .split('&')
        .map(|p| p.split('=').next().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["client_id", "request_uri"],
        "the authorization request the IdP saw"
    );
}

/// What the IdP logged of the DPoP proofs for one login and one refresh: the code
/// exchange first goes without a nonce and is told to use one (400
/// `use_dpop_nonce`), the retry carries it and gets the tokens; userinfo and the
/// refresh likewise.
const DPOP_LINES: [&str; 6] = [
    "token: proof=yes nonce=no -> 400",
    "token: proof=yes nonce=yes -> 200",
    "userinfo: proof=yes nonce=no -> 401",
    "userinfo: proof=yes nonce=yes -> 200",
    "token: proof=yes nonce=no -> 400",
    "token: proof=yes nonce=yes -> 200",
];

/// Every token request (code and refresh, each with its nonce retry) authenticated
/// with an assertion alone; only the retries got tokens.
const CLIENT_AUTH_LINES: [&str; 4] = [
    "token: basic=no client_secret=no client_assertion=yes -> 400",
    "token: basic=no client_secret=no client_assertion=yes -> 200",
    "token: basic=no client_secret=no client_assertion=yes -> 400",
    "token: basic=no client_secret=no client_assertion=yes -> 200",
];

/// The /user page says how the login was protected: an assertion, and a pushed
/// authorization request.
#[track_caller]
fn assert_protection_shown(page: &Response) {
    assert_eq!(
        page.text_by_id("client-auth").as_deref(),
        Some("private_key_jwt")
    );
    assert_eq!(page.text_by_id("par").as_deref(), Some("pushed (PAR)"));
}

/// The /user page's binding section: DPoP with the session key's thumbprint, which
/// it returns. The access token oidc-provider issues is opaque, so there is no
/// `cnf.jkt` to show.
#[track_caller]
fn assert_dpop_binding(page: &Response) -> String {
    let binding = page
        .text_by_id("binding")
        .expect("the page has a binding section");
    assert_eq!(page.text_by_id("token-type").as_deref(), Some("DPoP"));
    assert!(binding.contains("DPoP"), "{binding}");
    assert!(!binding.contains("Bearer"), "{binding}");
    let jkt = page
        .text_by_id("dpop-jkt")
        .expect("the page shows the DPoP key's thumbprint")
        .trim()
        .to_owned();
    assert!(
        jkt.len() == 43
            && jkt
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "a base64url SHA-256 thumbprint: {jkt:?}"
    );
    assert!(binding.contains(&jkt), "{binding}");
    assert_ne!(
        jkt, P256_THUMBPRINT,
        "the DPoP key is the login's own, not the client assertion key"
    );
    let access_token = UserPage::parse(page)
        .access_token
        .expect("the page shows the access token");
    assert!(
        !access_token.contains('.'),
        "oidc-provider's access tokens here are opaque, not JWTs"
    );
    assert_eq!(page.text_by_id("cnf-jkt"), None, "no JWT, no cnf.jkt");
    jkt
}

#[test]
fn login_userinfo_refresh_and_logout_with_par_dpop_and_fapi2() {
    let stack = stack(StoreKind::Memory, &[]);
    assert_idp_demands_par_and_dpop(&stack.idp);
    let mut browser = Browser::new();

    let signed = stack.sign_in(&mut browser, "alice.fapi", Some(SCOPE));
    assert_pushed_redirect(&signed.to_idp, &stack.idp);
    assert_one_push(&stack.idp);
    let page = e2e::app::assert_full_user_page(&signed.user_page, "alice.fapi");
    assert_protection_shown(&signed.user_page);
    let (header, _) = e2e::oidc::decode_jwt(page.id_token.as_deref().expect("an ID token"));
    assert_eq!(header["alg"], "ES256", "FAPI 2.0 wants ES256 or PS256");
    let jkt = assert_dpop_binding(&signed.user_page);

    let after = e2e::app::refresh(&mut browser, &signed.user_page, stack.base());
    assert_eq!(
        assert_dpop_binding(&after),
        jkt,
        "the refreshed token is bound to the session's key"
    );
    e2e::app::sign_out_completely(&mut browser, &after, &stack.idp, stack.base());

    assert_eq!(stack.idp.dpop_lines(), DPOP_LINES, "the IdP's log of DPoP");
    assert_eq!(
        stack.idp.client_auth_lines(),
        CLIENT_AUTH_LINES,
        "the IdP's log of client authentication"
    );
    assert_one_push(&stack.idp);
    assert_no_key_material("the host's log", &stack.host.log());
    assert_no_key_material("the IdP's log", &stack.idp.log());
}

/// Three replicas sharing Redis behind one front: the login's DPoP key travels in
/// the shared transaction and session records, so whichever replica exchanges the
/// code, calls userinfo or refreshes proves possession of the same key.
#[test]
fn v3_par_and_dpop_work_across_three_replicas_sharing_redis() {
    let front_port = free_port();
    let front = front_url(front_port);
    let idp = Idp::start(fapi_idp(
        IdpOptions::for_client(&front),
        format!("{front}/jwks.json"),
    ));
    assert_idp_demands_par_and_dpop(&idp);
    let redis = Redis::start();
    let mut opts = ReplicaOptions::new(3, front_port)
        .runtime_config(e2e::runtime_config::redis_default_store(&redis.url()));
    opts.variables = component_variables();
    let set = Replicas::start(&idp, opts);
    let mut browser = Browser::new();
    let signed = e2e::app::sign_in(
        &mut browser,
        &set.front_url(),
        &idp,
        &LoginOptions::new("bob.fapi"),
        Some(SCOPE),
    );
    assert_pushed_redirect(&signed.to_idp, &idp);
    assert_one_push(&idp);
    assert_protection_shown(&signed.user_page);
    let jkt = assert_dpop_binding(&signed.user_page);
    let after = e2e::app::refresh(&mut browser, &signed.user_page, &set.front_url());
    assert_eq!(assert_dpop_binding(&after), jkt);
    e2e::app::sign_out_completely(&mut browser, &after, &idp, &set.front_url());

    let mut served = set.pods_served();
    served.sort();
    served.dedup();
    assert_eq!(served.len(), 3, "every replica served: {served:?}");
    assert_eq!(idp.dpop_lines(), DPOP_LINES, "the IdP's log of DPoP");
    assert_eq!(idp.client_auth_lines(), CLIENT_AUTH_LINES);
    for host in set.hosts() {
        assert_no_key_material("a replica's log", &host.log());
    }
    assert_no_key_material("the IdP's log", &idp.log());
}

/// An operator who turned PAR off against an IdP that requires it: the component
/// sees `require_pushed_authorization_requests` in discovery and says so, rather
/// than sending the browser to an IdP that would refuse it.
#[test]
fn par_never_against_an_idp_that_requires_it_gives_a_clear_page_and_stores_nothing() {
    let stack = stack(
        StoreKind::Redis,
        &[("pushed_authorization_requests", "never")],
    );
    assert_idp_demands_par_and_dpop(&stack.idp);
    let mut browser = Browser::new();
    let login_page = browser.get(&stack.url("/"));
    login_page.assert_status(200);
    let before = snapshot(stack.redis());

    let refused = browser.submit(&login_page, &login_page.form_with_action_path("/login"));
    refused.assert_status(502);
    let message = refused
        .error_message()
        .unwrap_or_else(|| panic!("no error message: {}", refused.describe()));
    assert!(
        message.contains("requires pushed authorization requests"),
        "{message:?}"
    );
    assert!(
        refused.set_cookie("oidc_login").is_none(),
        "no login cookie: {}",
        refused.describe()
    );
    assert_eq!(stack.login_cookie(&browser), None);
    // The component caches discovery; that is all it may have written.
    assert_snapshot_eq(
        &without_prefixes(&before, &["cache:"]),
        &without_prefixes(&snapshot(stack.redis()), &["cache:"]),
        "a login refused before the push",
    );
    browser
        .get(&stack.url("/user"))
        .assert_redirect(303, &stack.url("/"));

    assert_eq!(
        stack.idp.par_lines(),
        Vec::<String>::new(),
        "nothing pushed"
    );
    assert_no_key_material("the page", &refused.body);
    assert_no_key_material("the host's log", &stack.host.log());
    assert_no_key_material("the IdP's log", &stack.idp.log());
}
