//! The userinfo endpoint; its `sub` must equal the ID token's (Core 1.0, 5.3.2).
//! With DPoP the token goes as `Authorization: DPoP` with a proof that names
//! it (`ath`), and a nonce challenge gets one retry (RFC 9449, sections 7 and 9).

use super::OidcError;
use super::dpop::{self, ProofFor};
use super::token::Caller;
use crate::es256::Es256Key;
use crate::ports::{HttpError, HttpResponse};
use serde_json::{Map, Value};

pub fn fetch(
    caller: &Caller,
    endpoint: &str,
    access_token: &str,
    expected_sub: &str,
    dpop: Option<&Es256Key>,
) -> Result<Map<String, Value>, OidcError> {
    let mut response = send(caller, endpoint, access_token, dpop, None)?;
    if let Some(key) = dpop
        && response.status() == 401
        && asks_for_nonce(&response)
        && let Some(nonce) = dpop::server_nonce(response.headers())
    {
        response = send(caller, endpoint, access_token, Some(key), Some(&nonce))?;
    }
    if response.status() != 200 {
        return Err(OidcError::BadResponse(format!(
            "userinfo answered HTTP {}",
            response.status().as_u16()
        )));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/jwt") {
        return Err(OidcError::BadResponse(
            "signed userinfo responses are not supported".into(),
        ));
    }
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(response.body()) else {
        return Err(OidcError::BadResponse(
            "userinfo is not a JSON object".into(),
        ));
    };
    match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if sub == expected_sub => Ok(claims),
        _ => Err(OidcError::InvalidUserinfo(
            "its `sub` differs from the ID token's".into(),
        )),
    }
}

/// One userinfo request, with a fresh proof when there is a key.
fn send(
    caller: &Caller,
    endpoint: &str,
    access_token: &str,
    dpop: Option<&Es256Key>,
    nonce: Option<&str>,
) -> Result<HttpResponse, OidcError> {
    let scheme = if dpop.is_some() { "DPoP" } else { "Bearer" };
    let mut request = http::Request::get(endpoint)
        .header("accept", "application/json")
        .header("authorization", format!("{scheme} {access_token}"));
    if let Some(key) = dpop {
        let what = ProofFor {
            method: "GET",
            url: endpoint,
            nonce,
            access_token: Some(access_token),
        };
        request = request.header("dpop", dpop::proof(key, &what, caller.clock, caller.rng));
    }
    let request = request
        .body(Vec::new())
        .map_err(|_| OidcError::BadResponse("invalid userinfo request".into()))?;
    caller
        .http
        .send(request)
        .map_err(|e: HttpError| OidcError::Transport(e))
}

/// `WWW-Authenticate: DPoP error="use_dpop_nonce"` (RFC 9449, section 9).
fn asks_for_nonce(response: &HttpResponse) -> bool {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.trim_start().starts_with("DPoP") && v.contains("use_dpop_nonce"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CountingRandom, FakeHttp, FixedClock, json_response};
    use serde_json::json;

    const URL: &str = "https://idp.example/userinfo";

    fn with(http: &FakeHttp, f: impl FnOnce(&Caller)) {
        let (clock, rng) = (FixedClock::at(1_000), CountingRandom::default());
        f(&Caller { http, clock: &clock, rng: &rng });
    }

    #[test]
    fn sends_bearer_and_checks_sub() {
        let http = FakeHttp::new(|req| {
            assert_eq!(req.headers()["authorization"], "Bearer at-1");
            assert!(req.headers().get("dpop").is_none());
            json_response(200, &json!({"sub": "alice", "name": "Alice"}))
        });
        with(&http, |caller| {
            let claims = fetch(caller, URL, "at-1", "alice", None).unwrap();
            assert_eq!(claims["name"], "Alice");
            assert!(matches!(
                fetch(caller, URL, "at-1", "bob", None),
                Err(OidcError::InvalidUserinfo(_))
            ));
        });
    }

    /// The claims of the proof a request carries.
    fn proof_claims(req: &crate::ports::HttpRequest) -> Value {
        use base64::Engine;
        let proof = req.headers()["dpop"].to_str().unwrap();
        let payload = proof.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn with_dpop_a_nonce_challenge_is_met_once() {
        let key = Es256Key::generate(&CountingRandom::default());
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = calls.clone();
        let challenge = |nonce: &str| {
            let mut r = json_response(401, &json!({})).unwrap();
            r.headers_mut().insert(
                "www-authenticate",
                r#"DPoP error="use_dpop_nonce", error_description="nonce""#.parse().unwrap(),
            );
            r.headers_mut().insert("dpop-nonce", nonce.parse().unwrap());
            Ok(r)
        };
        let http = FakeHttp::new(move |req| {
            seen.set(seen.get() + 1);
            assert_eq!(req.headers()["authorization"], "DPoP at-1");
            let claims = proof_claims(req);
            assert_eq!((claims["htm"].as_str(), claims["htu"].as_str()), (Some("GET"), Some(URL)));
            assert!(claims["ath"].is_string());
            match claims.get("nonce").and_then(Value::as_str) {
                Some("n-1") => json_response(200, &json!({"sub": "alice"})),
                _ => challenge("n-1"),
            }
        });
        with(&http, |caller| {
            assert!(fetch(caller, URL, "at-1", "alice", Some(&key)).is_ok());
        });
        assert_eq!(calls.get(), 2, "one challenge, one retry");

        // A server that challenges again is refused after one retry.
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = calls.clone();
        let http = FakeHttp::new(move |_| {
            seen.set(seen.get() + 1);
            challenge(&format!("n-{}", seen.get()))
        });
        with(&http, |caller| {
            match fetch(caller, URL, "at-1", "alice", Some(&key)) {
                Err(OidcError::BadResponse(why)) => assert_eq!(why, "userinfo answered HTTP 401"),
                other => panic!("{other:?}"),
            }
        });
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn garbage_is_bad_response() {
        for resp in [
            json_response(200, &json!("x")),
            json_response(401, &json!({})),
            json_response(200, &json!({"name": "no sub"})),
        ] {
            let http = FakeHttp::new(move |_| resp.clone());
            with(&http, |caller| assert!(fetch(caller, URL, "at", "alice", None).is_err()));
        }
    }
}
