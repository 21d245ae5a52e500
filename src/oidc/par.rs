//! Pushed authorization requests (RFC 9126): `POST /login` sends the
//! authorization parameters to the IdP server to server, authenticated like
//! a token request, and the browser carries only `client_id` and the
//! `request_uri` the IdP handed back. Nothing in the browser's URL can then
//! be read or changed on the way, and the IdP knows the request came from us.

use super::OidcError;
use super::discovery::ProviderMetadata;
use super::token::{self, Caller};
use super::transaction::LoginTransaction;
use crate::config::{Config, PushedAuthorization};
use crate::ports::HttpRequest;
use serde_json::Value;

/// The PAR endpoint to use for this login, or `None` for a plain redirect:
/// the setting against what discovery offers and demands.
pub fn endpoint<'m>(
    cfg: &Config,
    meta: &'m ProviderMetadata,
) -> Result<Option<&'m str>, OidcError> {
    let offered = meta.pushed_authorization_request_endpoint.as_deref();
    let required = meta.require_pushed_authorization_requests == Some(true);
    match (cfg.pushed_authorization, offered) {
        (PushedAuthorization::Never, _) if required => Err(OidcError::BadResponse(
            "the IdP requires pushed authorization requests \
             (require_pushed_authorization_requests), which pushed_authorization_requests = never turns off"
                .into(),
        )),
        (PushedAuthorization::Never, _) => Ok(None),
        (_, Some(endpoint)) => Ok(Some(endpoint)),
        (PushedAuthorization::Always, None) => Err(OidcError::BadResponse(
            "discovery names no pushed_authorization_request_endpoint, \
             which pushed_authorization_requests = always needs"
                .into(),
        )),
        (PushedAuthorization::Auto, None) if required => Err(OidcError::BadResponse(
            "the IdP requires pushed authorization requests but names no endpoint for them".into(),
        )),
        (PushedAuthorization::Auto, None) => Ok(None),
    }
}

/// The longest `request_uri` taken from an IdP (it goes into a browser URL).
const MAX_REQUEST_URI: usize = 2048;

/// Pushes this login's parameters to `endpoint`; the answer is the URL that
/// sends the browser to the IdP with `client_id` and `request_uri` only.
/// Nothing is stored here, so a refusal leaves no trace.
pub fn push(
    caller: &Caller,
    cfg: &Config,
    meta: &ProviderMetadata,
    endpoint: &str,
    txn: &LoginTransaction,
) -> Result<String, OidcError> {
    let params = token::authorization_request(cfg, meta, txn)?;
    let credentials = token::client_credentials(cfg, meta, caller.clock, caller.rng)?;
    let mut form = url::form_urlencoded::Serializer::new(params.query().unwrap_or("").to_owned());
    for (name, value) in &credentials.form {
        form.append_pair(name, value);
    }
    let mut request = http::Request::post(endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json");
    if let Some(value) = credentials.authorization {
        request = request.header("authorization", value);
    }
    let request: HttpRequest = request
        .body(form.finish().into_bytes())
        .map_err(|_| OidcError::BadResponse("invalid pushed authorization request".into()))?;
    let response = caller.http.send(request).map_err(OidcError::Transport)?;
    let body: Option<Value> = serde_json::from_slice(response.body()).ok();
    if !matches!(response.status().as_u16(), 200 | 201) {
        let code = body
            .as_ref()
            .and_then(|b| b.get("error"))
            .and_then(Value::as_str)
            .map(|e| crate::truncate::truncate(e, 40))
            .unwrap_or_else(|| format!("HTTP {}", response.status().as_u16()));
        return Err(OidcError::BadResponse(format!(
            "the pushed authorization request was refused ({code})"
        )));
    }
    let request_uri = body.as_ref().and_then(usable_request_uri).ok_or_else(|| {
        OidcError::BadResponse("the pushed authorization response is malformed".into())
    })?;
    let mut url = url::Url::parse(&meta.authorization_endpoint)
        .map_err(|_| OidcError::BadResponse("authorization_endpoint is not a URL".into()))?;
    url.query_pairs_mut()
        .append_pair("client_id", &cfg.client_id)
        .append_pair("request_uri", request_uri);
    Ok(url.to_string())
}

/// RFC 9126 section 2.2: a `request_uri` (here: printable ASCII without
/// spaces, bounded, as it goes into a URL) and a positive `expires_in`.
fn usable_request_uri(body: &Value) -> Option<&str> {
    let uri = body.get("request_uri")?.as_str()?;
    let fine = !uri.is_empty()
        && uri.len() <= MAX_REQUEST_URI
        && uri.bytes().all(|b| b.is_ascii_graphic());
    let expires = body.get("expires_in")?.as_u64()?;
    (fine && expires > 0).then_some(uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::transaction;
    use crate::testing::{CountingRandom, FakeHttp, FixedClock, config, json_response, vars};
    use serde_json::json;
    use std::collections::HashMap;

    const PAR: &str = "https://idp.example/par";

    fn meta(offered: bool, required: Option<bool>) -> ProviderMetadata {
        let mut doc = test_support::discovery("https://idp.example/realms/demo");
        if offered {
            doc["pushed_authorization_request_endpoint"] = json!(PAR);
        }
        if let Some(r) = required {
            doc["require_pushed_authorization_requests"] = json!(r);
        }
        serde_json::from_value(doc).unwrap()
    }

    fn with_setting(value: &str) -> Config {
        let mut v = vars();
        v.0.insert("pushed_authorization_requests".into(), value.into());
        Config::load(&v).unwrap()
    }

    #[test]
    fn the_setting_meets_what_discovery_offers_and_demands() {
        let cases = [
            ("auto", true, None, Ok(Some(PAR))),
            ("auto", false, None, Ok(None)),
            ("auto", false, Some(true), Err("names no endpoint")),
            ("always", true, None, Ok(Some(PAR))),
            ("always", false, None, Err("pushed_authorization_requests = always needs")),
            ("never", true, None, Ok(None)),
            ("never", true, Some(false), Ok(None)),
            ("never", true, Some(true), Err("pushed_authorization_requests = never turns off")),
        ];
        for (setting, offered, required, expected) in cases {
            let cfg = with_setting(setting);
            let meta = meta(offered, required);
            let got = endpoint(&cfg, &meta);
            match (got, expected) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{setting} {offered} {required:?}"),
                (Err(OidcError::BadResponse(why)), Err(part)) => {
                    assert!(why.contains(part), "{setting}: {why}")
                }
                (got, _) => panic!("{setting} {offered} {required:?}: {got:?}"),
            }
        }
    }

    fn form(body: &[u8]) -> HashMap<String, String> {
        url::form_urlencoded::parse(body).into_owned().collect()
    }

    #[test]
    fn pushes_the_parameters_and_sends_the_browser_with_the_request_uri_only() {
        let cfg = config();
        let meta = meta(true, None);
        let rng = CountingRandom::default();
        let clock = FixedClock::at(1_000);
        let (_, txn) = transaction::new(&rng, &clock, "openid offline_access".into(), false);
        let sent = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = sent.clone();
        let http = FakeHttp::new(move |req| {
            assert_eq!(req.uri(), PAR);
            assert_eq!(req.method(), "POST");
            // client_secret_basic: "client1:s3cret".
            assert_eq!(req.headers()["authorization"], "Basic Y2xpZW50MTpzM2NyZXQ=");
            seen.borrow_mut().push(req.body().clone());
            json_response(201, &json!({"request_uri": "urn:ietf:params:oauth:request_uri:x y", "expires_in": 60}))
        });
        let caller = Caller { http: &http, clock: &clock, rng: &rng };
        // A space in the request_uri is refused; the pushed form is checked below.
        assert!(push(&caller, &cfg, &meta, PAR, &txn).is_err());
        let pushed = form(&sent.borrow()[0]);
        for (name, value) in [
            ("response_type", "code"),
            ("client_id", "client1"),
            ("redirect_uri", "https://app.example/callback"),
            ("scope", "openid offline_access"),
            ("state", txn.state.expose()),
            ("nonce", txn.nonce.expose()),
            ("code_challenge_method", "S256"),
            ("prompt", "consent"),
        ] {
            assert_eq!(pushed.get(name).map(String::as_str), Some(value), "{name}");
        }
        assert!(pushed.contains_key("code_challenge"));
        assert!(!pushed.contains_key("client_secret"), "the secret went in the header");

        let http = FakeHttp::new(|_| {
            json_response(201, &json!({"request_uri": "urn:ietf:params:oauth:request_uri:abc", "expires_in": 60}))
        });
        let caller = Caller { http: &http, clock: &clock, rng: &rng };
        let url = url::Url::parse(&push(&caller, &cfg, &meta, PAR, &txn).unwrap()).unwrap();
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            query,
            [
                ("client_id".into(), "client1".into()),
                ("request_uri".into(), "urn:ietf:params:oauth:request_uri:abc".into())
            ]
        );
        assert_eq!(url.path(), "/realms/demo/auth");
    }

    #[test]
    fn a_refusal_or_a_malformed_answer_is_a_clear_error() {
        let cfg = config();
        let meta = meta(true, None);
        let rng = CountingRandom::default();
        let clock = FixedClock::at(1_000);
        let (_, txn) = transaction::new(&rng, &clock, "openid".into(), false);
        let cases = [
            (json_response(400, &json!({"error": "invalid_request"})), "refused (invalid_request)"),
            (json_response(503, &json!("down")), "refused (HTTP 503)"),
            (json_response(201, &json!({"expires_in": 60})), "malformed"),
            (json_response(201, &json!({"request_uri": "", "expires_in": 60})), "malformed"),
            (json_response(201, &json!({"request_uri": 7, "expires_in": 60})), "malformed"),
            (json_response(201, &json!({"request_uri": "u".repeat(2049), "expires_in": 60})), "malformed"),
            (json_response(201, &json!({"request_uri": "urn:x"})), "malformed"),
            (json_response(201, &json!({"request_uri": "urn:x", "expires_in": 0})), "malformed"),
            (json_response(201, &json!({"request_uri": "urn:x", "expires_in": -5})), "malformed"),
            (json_response(201, &json!([1])), "malformed"),
        ];
        for (answer, expected) in cases {
            let http = FakeHttp::new(move |_| answer.clone());
            let caller = Caller { http: &http, clock: &clock, rng: &rng };
            match push(&caller, &cfg, &meta, PAR, &txn) {
                Err(OidcError::BadResponse(why)) => assert!(why.contains(expected), "{why}"),
                other => panic!("{expected}: {other:?}"),
            }
        }
    }
}
