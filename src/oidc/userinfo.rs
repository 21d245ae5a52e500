//! The userinfo endpoint; its `sub` must equal the ID token's (Core 1.0, 5.3.2).

use super::OidcError;
use crate::ports::HttpClient;
use serde_json::{Map, Value};

pub fn fetch(
    http: &dyn HttpClient,
    endpoint: &str,
    access_token: &str,
    expected_sub: &str,
) -> Result<Map<String, Value>, OidcError> {
    let request = http::Request::get(endpoint)
        .header("accept", "application/json")
        .header("authorization", format!("Bearer {access_token}"))
        .body(Vec::new())
        .map_err(|_| OidcError::BadResponse("invalid userinfo request".into()))?;
    let response = http.send(request).map_err(OidcError::Transport)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeHttp, json_response};
    use serde_json::json;

    #[test]
    fn sends_bearer_and_checks_sub() {
        let http = FakeHttp::new(|req| {
            assert_eq!(req.headers()["authorization"], "Bearer at-1");
            json_response(200, &json!({"sub": "alice", "name": "Alice"}))
        });
        let claims = fetch(&http, "https://idp.example/userinfo", "at-1", "alice").unwrap();
        assert_eq!(claims["name"], "Alice");
        assert!(matches!(
            fetch(&http, "https://idp.example/userinfo", "at-1", "bob"),
            Err(OidcError::InvalidUserinfo(_))
        ));
    }

    #[test]
    fn garbage_is_bad_response() {
        for resp in [
            json_response(200, &json!("x")),
            json_response(401, &json!({})),
            json_response(200, &json!({"name": "no sub"})),
        ] {
            let http = FakeHttp::new(move |_| resp.clone());
            assert!(fetch(&http, "https://idp.example/userinfo", "at", "alice").is_err());
        }
    }
}
