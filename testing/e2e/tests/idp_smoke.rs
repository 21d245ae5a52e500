//! The test IdP and the harness's drivers, without the component: this test plays the
//! confidential client itself (authorization code + PKCE S256, client_secret_basic),
//! refreshes, and logs out through the IdP's end-session page.

use e2e::oidc::{Pkce, jwt_claims, random_token};
use e2e::{Browser, Consent, Idp, IdpOptions, LoginOptions, free_port};
use url::Url;

/// A client base URL nothing listens on: the drivers stop at the redirect to it.
fn unused_client_base() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

fn authorization_request(
    idp: &Idp,
    redirect_uri: &str,
    scope: &str,
    pkce: &Pkce,
    state: &str,
    nonce: &str,
) -> Url {
    let mut url = Url::parse(&idp.endpoint("authorization_endpoint")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", idp.client_id())
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scope)
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("prompt", "consent")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    url
}

/// A fake response redirecting to `url`, as the component's POST /login would be.
fn redirect_to(url: &Url, from: &str) -> e2e::Response {
    e2e::Response {
        method: "POST".into(),
        url: Url::parse(from).unwrap(),
        status: 303,
        headers: vec![("location".into(), url.to_string())],
        body: String::new(),
        posted: None,
    }
}

#[test]
fn idp_code_flow_refresh_and_logout() {
    let base = unused_client_base();
    let idp = Idp::start(IdpOptions::for_client(&base));
    let redirect_uri = format!("{base}/callback");
    let post_logout_uri = format!("{base}/");

    // Discovery looks like Keycloak's layout and offers what the component relies on.
    let discovery = idp.discovery();
    assert_eq!(discovery["issuer"], idp.issuer());
    assert!(
        idp.issuer().ends_with("/realms/demo"),
        "issuer {}",
        idp.issuer()
    );
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "userinfo_endpoint",
    ] {
        let value = discovery[endpoint]
            .as_str()
            .unwrap_or_else(|| panic!("no {endpoint}"));
        assert!(
            value.starts_with(idp.issuer()),
            "{endpoint} {value} is under the issuer"
        );
    }
    let jwks = Browser::new()
        .get(discovery["jwks_uri"].as_str().unwrap())
        .json();
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert!(
        algs.contains(&"RS256") && algs.contains(&"ES256"),
        "JWKS algs {algs:?}"
    );

    // Authorization request with PKCE, state and nonce; the driver logs in and consents.
    let pkce = Pkce::new();
    let state = random_token(16);
    let nonce = random_token(16);
    let auth = authorization_request(
        &idp,
        &redirect_uri,
        "openid profile offline_access",
        &pkce,
        &state,
        &nonce,
    );
    let mut browser = Browser::new();
    let (back, trace) = idp.login_with(
        &mut browser,
        &redirect_to(&auth, &format!("{base}/login")),
        &LoginOptions::new("alice"),
    );
    assert!(
        trace.login_form && trace.consent_form,
        "login and consent pages were shown: {trace:?}"
    );
    let callback = back.assert_redirect(303, &redirect_uri);
    assert_eq!(callback.path(), "/callback");
    assert_eq!(
        back.location_param("state").as_deref(),
        Some(state.as_str())
    );
    assert_eq!(back.location_param("iss").as_deref(), Some(idp.issuer()));
    let code = back.location_param("code").expect("an authorization code");

    // A wrong code verifier is refused (PKCE is enforced for this confidential client).
    let wrong = idp.redeem_code(&code, &redirect_uri, &Pkce::new().verifier);
    assert_eq!(wrong.status, 400, "{}", wrong.describe());
    assert_eq!(wrong.json()["error"], "invalid_grant");

    // The code was consumed by the failed attempt (oidc-provider consumes codes on any
    // use), so sign in again: the IdP session is reused, consent is asked again because
    // of prompt=consent.
    let pkce = Pkce::new();
    let auth = authorization_request(
        &idp,
        &redirect_uri,
        "openid profile offline_access",
        &pkce,
        &state,
        &nonce,
    );
    let (back, trace) = idp.login_with(
        &mut browser,
        &redirect_to(&auth, &format!("{base}/login")),
        &LoginOptions::new("alice"),
    );
    assert!(!trace.login_form, "the IdP session was reused: {trace:?}");
    assert!(
        trace.consent_form,
        "prompt=consent shows the consent page: {trace:?}"
    );
    let code = back.location_param("code").expect("an authorization code");

    let tokens = idp.redeem_code(&code, &redirect_uri, &pkce.verifier);
    tokens.assert_status(200);
    let tokens = tokens.json();
    let id_token = tokens["id_token"].as_str().expect("an id_token");
    let access_token = tokens["access_token"].as_str().expect("an access_token");
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .expect("a refresh_token (offline_access)");
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(
        tokens["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "offline_access"),
        "scope {}",
        tokens["scope"]
    );

    let claims = jwt_claims(id_token);
    assert_eq!(claims["iss"], idp.issuer());
    assert_eq!(claims["aud"], "client1");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["nonce"], nonce.as_str());
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["name"], "Alice");
    assert!(
        claims.get("email").is_none(),
        "no email without the email scope"
    );
    assert_eq!(e2e::oidc::decode_jwt(id_token).0["alg"], "RS256");

    // The access token works at userinfo.
    let userinfo_url = Url::parse(discovery["userinfo_endpoint"].as_str().unwrap()).unwrap();
    let bearer = format!("Bearer {access_token}");
    let userinfo = Browser::new().request(
        "GET",
        &userinfo_url,
        &[("authorization", &bearer), ("accept", "application/json")],
        None,
    );
    userinfo.assert_status(200);
    assert_eq!(userinfo.json()["sub"], "alice");

    // Refresh grant.
    let refreshed = idp.token_request(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ]);
    refreshed.assert_status(200);
    let refreshed = refreshed.json();
    let new_access = refreshed["access_token"]
        .as_str()
        .expect("a new access_token");
    assert_ne!(new_access, access_token);
    let new_id_token = refreshed["id_token"].as_str().expect("a new id_token");
    assert_eq!(jwt_claims(new_id_token)["sub"], "alice");
    let live_refresh = refreshed["refresh_token"]
        .as_str()
        .unwrap_or(refresh_token)
        .to_string();

    // A wrong client secret is refused.
    let bad = {
        let url = Url::parse(&idp.endpoint("token_endpoint")).unwrap();
        let auth = e2e::oidc::basic_auth("client1", "wrong-secret");
        let body = e2e::browser::form_urlencode(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", live_refresh.as_str()),
        ]);
        Browser::new().request(
            "POST",
            &url,
            &[("authorization", &auth), ("accept", "application/json")],
            Some(("application/x-www-form-urlencoded", body.into_bytes())),
        )
    };
    assert_eq!(bad.status, 401, "{}", bad.describe());
    assert_eq!(bad.json()["error"], "invalid_client");

    // RP-initiated logout through the confirmation page ends at the post-logout URI.
    let mut end_session = Url::parse(discovery["end_session_endpoint"].as_str().unwrap()).unwrap();
    let logout_state = random_token(8);
    end_session
        .query_pairs_mut()
        .append_pair("id_token_hint", new_id_token)
        .append_pair("post_logout_redirect_uri", &post_logout_uri)
        .append_pair("state", &logout_state);
    let done = idp.logout(
        &mut browser,
        &redirect_to(&end_session, &format!("{base}/logout")),
    );
    let location = done.assert_redirect(303, &post_logout_uri);
    assert_eq!(location.path(), "/");
    assert_eq!(
        done.location_param("state").as_deref(),
        Some(logout_state.as_str())
    );

    // An offline_access grant outlives the IdP session (oidc-provider marks it
    // "persistsLogout"): the refresh token still works after RP-initiated logout, until
    // the client revokes it.
    let after = idp.token_request(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &live_refresh),
    ]);
    after.assert_status(200);
    let live_refresh = after.json()["refresh_token"]
        .as_str()
        .unwrap_or(&live_refresh)
        .to_string();
    let revocation = Url::parse(
        discovery["revocation_endpoint"]
            .as_str()
            .expect("a revocation endpoint"),
    )
    .unwrap();
    let auth = e2e::oidc::basic_auth("client1", idp.client_secret());
    let body = e2e::browser::form_urlencode(&[
        ("token", live_refresh.as_str()),
        ("token_type_hint", "refresh_token"),
    ]);
    Browser::new()
        .request(
            "POST",
            &revocation,
            &[("authorization", &auth), ("accept", "application/json")],
            Some(("application/x-www-form-urlencoded", body.into_bytes())),
        )
        .assert_status(200);
    let revoked = idp.token_request(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &live_refresh),
    ]);
    assert_eq!(revoked.status, 400, "{}", revoked.describe());
    assert_eq!(revoked.json()["error"], "invalid_grant");

    // The IdP session is gone: the next authorization shows the login form again.
    let pkce = Pkce::new();
    let auth = authorization_request(&idp, &redirect_uri, "openid email", &pkce, &state, &nonce);
    let (back, trace) = idp.login_with(
        &mut browser,
        &redirect_to(&auth, &format!("{base}/login")),
        &LoginOptions::new("bob.smith"),
    );
    assert!(trace.login_form, "signed out at the IdP: {trace:?}");
    let code = back.location_param("code").unwrap();
    let tokens = idp.redeem_code(&code, &redirect_uri, &pkce.verifier);
    tokens.assert_status(200);
    let tokens = tokens.json();
    assert!(
        tokens.get("refresh_token").is_none(),
        "no refresh token without offline_access: {tokens}"
    );
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "bob.smith");
    assert_eq!(claims["email"], "bob.smith@example.test");
    assert!(
        claims.get("name").is_none(),
        "no profile claims without the profile scope"
    );
}

#[test]
fn idp_consent_denied_and_unregistered_redirect() {
    let base = unused_client_base();
    let idp = Idp::start(IdpOptions::for_client(&base));
    let redirect_uri = format!("{base}/callback");
    let pkce = Pkce::new();
    let state = random_token(16);
    let auth = authorization_request(&idp, &redirect_uri, "openid profile", &pkce, &state, "n");
    let mut browser = Browser::new();
    let opts = LoginOptions {
        consent: Consent::Deny,
        ..LoginOptions::new("carol")
    };
    let (back, _) = idp.login_with(
        &mut browser,
        &redirect_to(&auth, &format!("{base}/login")),
        &opts,
    );
    back.assert_redirect(303, &redirect_uri);
    assert_eq!(
        back.location_param("error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        back.location_param("state").as_deref(),
        Some(state.as_str())
    );

    // An unregistered redirect_uri gets the IdP's error page, not a redirect.
    let auth = authorization_request(
        &idp,
        "http://127.0.0.1:1/elsewhere",
        "openid",
        &pkce,
        &state,
        "n",
    );
    let page = browser.get(auth.as_str());
    assert_eq!(page.status, 400, "{}", page.describe());
    assert!(page.body.contains("redirect_uri"), "{}", page.describe());

    // Without PKCE the request is refused too (redirected back with an error).
    let mut no_pkce = Url::parse(&idp.endpoint("authorization_endpoint")).unwrap();
    no_pkce
        .query_pairs_mut()
        .append_pair("client_id", "client1")
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "openid")
        .append_pair("state", &state);
    let refused = browser.get(no_pkce.as_str());
    refused.assert_redirect(303, &redirect_uri);
    assert_eq!(
        refused.location_param("error").as_deref(),
        Some("invalid_request")
    );
}

#[test]
fn idp_restart_keeps_issuer_and_rotates_keys() {
    let base = unused_client_base();
    let mut idp = Idp::start(IdpOptions::for_client(&base));
    let issuer = idp.issuer().to_string();
    let kids = |idp: &Idp| -> Vec<String> {
        let jwks = Browser::new().get(&idp.endpoint("jwks_uri")).json();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    let before = kids(&idp);
    idp.start_again();
    assert_eq!(idp.issuer(), issuer);
    let after = kids(&idp);
    assert!(
        before.iter().all(|k| !after.contains(k)),
        "fresh keys after a restart: {before:?} {after:?}"
    );
}

#[test]
fn idp_backchannel_logout_reaches_loopback() {
    let receiver = e2e::EchoServer::start("rp-backchannel");
    let base = unused_client_base();
    let idp = Idp::start(IdpOptions {
        backchannel_logout_uri: Some(format!("{}/backchannel-logout", receiver.base_url())),
        ..IdpOptions::for_client(&base)
    });
    let redirect_uri = format!("{base}/callback");
    let discovery = idp.discovery();
    assert_eq!(discovery["backchannel_logout_supported"], true);

    let pkce = Pkce::new();
    let auth = authorization_request(&idp, &redirect_uri, "openid", &pkce, "s", "n");
    let mut browser = Browser::new();
    let back = idp.login(
        &mut browser,
        &redirect_to(&auth, &format!("{base}/login")),
        "dave",
    );
    let code = back.location_param("code").unwrap();
    let tokens = idp.redeem_code(&code, &redirect_uri, &pkce.verifier);
    tokens.assert_status(200);
    let id_token = tokens.json()["id_token"].as_str().unwrap().to_string();
    let sid = jwt_claims(&id_token)["sid"]
        .as_str()
        .expect("a sid claim (backchannel_logout_session_required)")
        .to_string();

    let mut end_session = Url::parse(discovery["end_session_endpoint"].as_str().unwrap()).unwrap();
    end_session
        .query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", &format!("{base}/"));
    let done = idp.logout(
        &mut browser,
        &redirect_to(&end_session, &format!("{base}/logout")),
    );
    done.assert_redirect(303, &format!("{base}/"));

    // The IdP awaits the back-channel call before it redirects, so it has arrived.
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].target, "/backchannel-logout");
    let token = url::form_urlencoded::parse(requests[0].body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("a logout_token");
    let claims = jwt_claims(&token);
    assert_eq!(claims["sub"], "dave");
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["aud"], "client1");
    assert!(
        claims["events"]
            .get("http://schemas.openid.net/event/backchannel-logout")
            .is_some(),
        "{claims}"
    );
}

#[test]
fn idp_start_that_never_gets_ready_is_retried_once() {
    let temp = e2e::paths::TempDir::new("idp-stall");
    let marker = temp.path().join("stalled-once");
    let base = unused_client_base();
    let idp = Idp::start(IdpOptions {
        startup_timeout: std::time::Duration::from_secs(15),
        env: vec![(
            "IDP_STALL_FIRST_START".to_string(),
            marker.display().to_string(),
        )],
        ..IdpOptions::for_client(&base)
    });
    assert!(marker.exists(), "the first start stalled");
    let discovery = idp.discovery();
    assert_eq!(discovery["issuer"], idp.issuer(), "the second start serves");

    let logs = e2e::paths::logs_dir();
    let first = std::fs::read_to_string(logs.join("idp.stderr.log")).unwrap();
    let second = std::fs::read_to_string(logs.join("idp-2.stderr.log")).unwrap();
    assert!(first.contains("stalling on purpose"), "{first}");
    assert!(
        first.contains("SIGTERM"),
        "the stalled start was stopped: {first}"
    );
    assert!(second.contains("provider configured"), "{second}");
    assert!(!second.contains("stalling"), "{second}");
}
