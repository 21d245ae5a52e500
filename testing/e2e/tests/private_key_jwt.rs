//! `private_key_jwt` client authentication (RFC 7523, OpenID Connect Core 9)
//! against the real IdP: client1 is registered at oidc-provider with
//! `token_endpoint_auth_method: private_key_jwt`, no secret, and a `jwks_uri`
//! pointing at the component's `/jwks.json`. Login, userinfo, refresh and
//! logout work, on the local store and on three replicas sharing Redis; every
//! token request authenticates with an assertion alone;
//! `/jwks.json` shows exactly the public members of the key; nothing private
//! reaches a log.
//!
//! Against the fake IdP, which checks each assertion as RFC 7523 says (signature
//! by the registered key, `iss` = `sub` = client id, `aud` = issuer, a minute at
//! most, a `jti` never seen): code and refresh each carry a fresh one; one the
//! IdP refuses gives a clear 502 page, no session, and no key material anywhere.

use e2e::Browser;
use e2e::app_stack::{AppStack, StoreKind};
use e2e::idp::IdpOptions;
use e2e::replicas::{ReplicaOptions, Replicas, front_url};
use e2e::rig::{Rig, RigOptions};
use e2e::{Idp, LoginOptions, Redis, free_port};
use serde_json::Value;
use test_support::client_keys::{P256_D, P256_JWK, P256_PEM, P256_THUMBPRINT, P256_X, P256_Y};

const SCOPE: &str = "openid profile email offline_access";

/// An app and IdP whose client authenticates with `private_key_jwt` only.
fn stack(store: StoreKind) -> AppStack {
    AppStack::start_with(
        store,
        |o| {
            let base = o.redirect_uris[0].trim_end_matches("/callback").to_owned();
            IdpOptions {
                token_auth_method: Some("private_key_jwt".into()),
                client_jwks_uri: Some(format!("{base}/jwks.json")),
                ..o
            }
        },
        |h| {
            h.without_variable("client_secret")
                .variable("token_endpoint_auth_method", "private_key_jwt")
                .variable("client_private_key", P256_PEM)
        },
    )
}

/// The PEM's base64 lines: none may appear anywhere but the variable.
fn key_material() -> Vec<&'static str> {
    let mut parts: Vec<&str> = P256_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    parts.push(P256_D);
    parts
}

#[test]
fn jwks_json_serves_exactly_the_public_key() {
    let stack = stack(StoreKind::Memory);
    let response = Browser::new().get(&stack.url("/jwks.json"));
    response.assert_status(200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let doc = response.json();
    let keys = doc["keys"].as_array().expect("a JWK set");
    assert_eq!(keys.len(), 1, "{doc}");
    let key = keys[0].as_object().expect("a JWK");
    let mut fields: Vec<&str> = key.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["alg", "crv", "kid", "kty", "use", "x", "y"],
        "no `d`, nothing else"
    );
    for (field, value) in [
        ("kty", "EC"),
        ("crv", "P-256"),
        ("x", P256_X),
        ("y", P256_Y),
        ("kid", P256_THUMBPRINT),
        ("use", "sig"),
        ("alg", "ES256"),
    ] {
        assert_eq!(key[field], Value::from(value), "{field}");
    }
    for secret in key_material() {
        assert!(
            !response.body.contains(secret),
            "the private key leaked into /jwks.json"
        );
    }
}

#[test]
fn login_userinfo_refresh_and_logout_with_private_key_jwt() {
    let stack = stack(StoreKind::Memory);
    let mut browser = Browser::new();

    let signed = stack.sign_in(&mut browser, "alice.pkjwt", Some(SCOPE));
    e2e::app::assert_full_user_page(&signed.user_page, "alice.pkjwt");

    let after = e2e::app::refresh(&mut browser, &signed.user_page, stack.base());
    e2e::app::sign_out_completely(&mut browser, &after, &stack.idp, stack.base());

    // Code and refresh: each with an assertion, never a secret. (No revocation
    // here: RFC 7009 wants an https endpoint and this IdP is on http, so the
    // component skips it; the unit flow tests see its assertion.)
    let auth = stack.idp.client_auth_lines();
    let ok = "basic=no client_secret=no client_assertion=yes -> 200";
    assert_eq!(
        auth,
        [format!("token: {ok}"), format!("token: {ok}")],
        "the IdP's log of client authentication"
    );

    let logs = format!("{}\n{}", stack.host.log(), stack.idp.log());
    for secret in key_material() {
        assert!(!logs.contains(secret), "key material in a log");
    }
}

/// Three replicas sharing Redis behind one front: whichever replica exchanges the
/// code or refreshes signs with the same key, and whichever serves `/jwks.json` to
/// the IdP publishes it under the same `kid`.
#[test]
fn v3_private_key_jwt_works_across_three_replicas_sharing_redis() {
    let front_port = free_port();
    let front = front_url(front_port);
    let idp = Idp::start(IdpOptions {
        token_auth_method: Some("private_key_jwt".into()),
        client_jwks_uri: Some(format!("{front}/jwks.json")),
        ..IdpOptions::for_client(&front)
    });
    let redis = Redis::start();
    let mut opts = ReplicaOptions::new(3, front_port)
        .runtime_config(e2e::runtime_config::redis_default_store(&redis.url()));
    opts.variables = vec![
        (
            "token_endpoint_auth_method".into(),
            "private_key_jwt".into(),
        ),
        ("client_private_key".into(), P256_PEM.into()),
    ];
    let set = Replicas::start(&idp, opts);
    let mut browser = Browser::new();
    let signed = e2e::app::sign_in(
        &mut browser,
        &set.front_url(),
        &idp,
        &LoginOptions::new("bob.replicas"),
        Some(SCOPE),
    );
    let after = e2e::app::refresh(&mut browser, &signed.user_page, &set.front_url());
    e2e::app::sign_out_completely(&mut browser, &after, &idp, &set.front_url());

    let mut served = set.pods_served();
    served.sort();
    served.dedup();
    assert_eq!(served.len(), 3, "every replica served: {served:?}");
    let ok = "basic=no client_secret=no client_assertion=yes -> 200";
    assert_eq!(
        idp.client_auth_lines(),
        [format!("token: {ok}"), format!("token: {ok}")]
    );
    for host in set.hosts() {
        let log = host.log();
        for secret in key_material() {
            assert!(!log.contains(secret), "key material in a replica's log");
        }
    }
}

// ------------------------------------------------- against the fake IdP

/// A rig whose component signs with the test key and whose fake IdP takes
/// `private_key_jwt` only. The component still has a client secret: it must
/// not send it.
fn rig() -> Rig {
    Rig::start_with(
        RigOptions::default()
            .behaviour(|b| b.auth_methods = Some(vec!["private_key_jwt".into()]))
            .variable("token_endpoint_auth_method", "private_key_jwt")
            .variable("client_private_key", P256_JWK),
    )
}

#[test]
fn the_fake_idp_accepts_a_fresh_assertion_on_code_and_refresh() {
    let mut rig = rig();
    // Registered as an IdP does: from the component's /jwks.json.
    let published = rig.browser.get(&rig.url("/jwks.json")).json()["keys"][0].clone();
    rig.idp
        .configure(|b| b.client_assertion_key = Some(published));
    let page = rig.login();
    let refreshed = rig
        .browser
        .submit(&page, &page.form_with_action_path("/refresh"));
    refreshed.assert_redirect(303, &rig.url("/user"));
    assert_eq!(
        rig.idp.problems(),
        Vec::<String>::new(),
        "protocol violations"
    );
    assert_eq!(
        rig.idp.auth_methods_used(),
        ["private_key_jwt", "private_key_jwt"]
    );
    let claims = rig.idp.client_assertions();
    assert_eq!(claims.len(), 2);
    for c in &claims {
        assert_eq!(c["aud"], rig.idp.issuer());
        assert_eq!(
            (&c["iss"], &c["sub"]),
            (&Value::from("client1"), &Value::from("client1"))
        );
    }
    assert_ne!(
        claims[0]["jti"], claims[1]["jti"],
        "a fresh jti per request"
    );
}

#[test]
fn an_assertion_the_idp_rejects_gives_a_clear_page_and_stores_nothing() {
    let mut rig = rig();
    // The IdP holds another key under this key's kid: a rotated key it never fetched.
    rig.idp.configure(|b| {
        b.client_assertion_key = Some(test_support::ec_other().public_jwk(P256_THUMBPRINT))
    });
    let callback = rig.login_callback();
    rig.assert_refused(
        &callback,
        502,
        "the token endpoint refused the client's credentials (invalid_client)",
    );
    assert!(
        rig.idp
            .problems()
            .iter()
            .any(|p| p.starts_with("client assertion refused: InvalidSignature")),
        "{:?}",
        rig.idp.problems()
    );
    let logs = rig.host.log();
    assert!(logs.contains("invalid_client"), "the log says why");
    for secret in key_material() {
        assert!(!callback.body.contains(secret), "key material on the page");
        assert!(!logs.contains(secret), "key material in the log");
    }
}
