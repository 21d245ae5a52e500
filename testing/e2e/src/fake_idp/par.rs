//! Pushed authorization requests (RFC 9126): the checks of the pushed parameters,
//! and the one-time `request_uri` each accepted request is kept under until the
//! authorization endpoint takes `client_id` and that `request_uri` instead of the
//! parameters.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::fresh::random;
use super::http::HttpResponse;

/// What every `request_uri` the fake issues starts with (RFC 9126 section 2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a pushed request can be used.
pub(super) const LIFETIME: Duration = Duration::from_secs(60);

/// A request the PAR endpoint accepted.
#[derive(Debug, Clone)]
pub struct PushedRequest {
    /// The form fields, without `client_secret` and `client_assertion`.
    pub params: BTreeMap<String, String>,
    /// How the client authenticated (`client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt`).
    pub auth_method: String,
    /// The `request_uri` it was stored under.
    pub request_uri: String,
}

/// A pushed request waiting for the authorization request.
#[derive(Debug, Clone)]
pub(super) struct Pushed {
    params: BTreeMap<String, String>,
    expires: Instant,
}

/// What is wrong with the pushed parameters `form` of the client `client_id` (RFC
/// 9126 section 2.1 with the authorization request's own: OpenID Connect, PKCE
/// S256, state, nonce); `dpop_required` wants a `dpop_jkt`, and `proof_jkt`, the key
/// of the request's DPoP proof, must be the `dpop_jkt` sent.
pub(super) fn check_params(
    form: &BTreeMap<String, String>,
    client_id: &str,
    dpop_required: bool,
    proof_jkt: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let has = |name: &str| form.get(name).is_some_and(|v| !v.is_empty());
    if form.get("response_type").map(String::as_str) != Some("code") {
        problems.push("response_type is not `code`".to_string());
    }
    if form.get("client_id").map(String::as_str) != Some(client_id) {
        problems.push("client_id is not the authenticated client's".into());
    }
    for name in ["redirect_uri", "state", "nonce", "code_challenge"] {
        if !has(name) {
            problems.push(format!("no {name}"));
        }
    }
    if form.get("code_challenge_method").map(String::as_str) != Some("S256") {
        problems.push("code_challenge_method is not S256".into());
    }
    if !form
        .get("scope")
        .is_some_and(|s| s.split(' ').any(|s| s == "openid"))
    {
        problems.push("the scope lacks openid".into());
    }
    if form.contains_key("request_uri") {
        problems.push("a request_uri among the pushed parameters".into());
    }
    if dpop_required && !has("dpop_jkt") {
        problems.push("no dpop_jkt though DPoP is required".into());
    }
    if let Some(jkt) = proof_jkt
        && form.get("dpop_jkt").is_some_and(|j| j != jkt)
    {
        problems.push("dpop_jkt differs from the key of its DPoP proof".into());
    }
    problems
}

/// Keeps the accepted parameters `form`, without the client's credentials, in
/// `pushed` under a fresh `request_uri` for [`LIFETIME`]; the record of it.
pub(super) fn store(
    pushed: &mut HashMap<String, Pushed>,
    mut form: BTreeMap<String, String>,
    auth_method: String,
) -> PushedRequest {
    form.remove("client_secret");
    form.remove("client_assertion");
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", random());
    pushed.insert(
        request_uri.clone(),
        Pushed {
            params: form.clone(),
            expires: Instant::now() + LIFETIME,
        },
    );
    PushedRequest {
        params: form,
        auth_method,
        request_uri,
    }
}

/// The parameters of an authorization request: the pushed ones for a `request_uri`
/// (taken out of `pushed`: used once), else the query as it is unless
/// `require_par`; or the refusal. The client's violations go to `problems`.
pub(super) fn resolve(
    pushed: &mut HashMap<String, Pushed>,
    require_par: bool,
    query: BTreeMap<String, String>,
    problems: &mut Vec<String>,
) -> Result<BTreeMap<String, String>, HttpResponse> {
    let Some(request_uri) = query.get("request_uri") else {
        if require_par {
            problems.push("an authorization request not pushed though PAR is required".into());
            return Err(HttpResponse::new(
                400,
                "text/plain",
                "pushed authorization requests are required",
            ));
        }
        return Ok(query);
    };
    let extra: Vec<&str> = query
        .keys()
        .map(String::as_str)
        .filter(|k| !matches!(*k, "client_id" | "request_uri"))
        .collect();
    if !extra.is_empty() {
        problems.push(format!(
            "a pushed authorization request sent {extra:?} beside client_id and request_uri"
        ));
    }
    let found = pushed
        .remove(request_uri)
        .filter(|p| p.expires > Instant::now());
    let Some(found) = found else {
        problems.push("an unknown, used or expired request_uri".into());
        return Err(HttpResponse::new(400, "text/plain", "invalid_request_uri"));
    };
    if query.get("client_id") != found.params.get("client_id") {
        problems.push("the authorization request's client_id is not the pushed one".into());
        return Err(HttpResponse::new(400, "text/plain", "client_id mismatch"));
    }
    Ok(found.params)
}
