//! Pushed authorization requests (RFC 9126): the PAR endpoint authenticates the
//! client as the token endpoint does, checks the pushed parameters and keeps them
//! under a fresh one-time `request_uri`; the authorization endpoint then takes
//! `client_id` and that `request_uri` instead of the parameters.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Endpoint, HttpRequest, HttpResponse, State, authenticate, dpop, error};

/// What every `request_uri` the fake issues starts with (RFC 9126 section 2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a pushed request can be used.
const LIFETIME: Duration = Duration::from_secs(60);

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

/// The PAR endpoint.
pub(super) fn push(st: &mut State, issuer: &str, request: &HttpRequest) -> HttpResponse {
    if request.method != "POST" {
        st.problems
            .push(format!("PAR endpoint called with {}", request.method));
        return error(405, "invalid_request");
    }
    let form = request.form();
    let auth_method = match authenticate(st, issuer, request, &form) {
        Ok(method) => method,
        Err((why, refused)) => {
            st.problems
                .push(format!("pushed authorization request {why}"));
            return refused;
        }
    };
    let mut problems = check_params(st, &form);
    // A proof here is allowed (RFC 9449 section 10.1); checked if sent, and then its
    // key must be the dpop_jkt.
    let htu = format!("{issuer}{}", Endpoint::Par.path());
    let mut dpop_problems = Vec::new();
    let check = st.dpop.check(
        Endpoint::Par,
        request,
        &htu,
        dpop::DpopNonce::None,
        None,
        &mut dpop_problems,
    );
    st.problems.append(&mut dpop_problems);
    match check {
        dpop::Check::Absent => {}
        dpop::Check::Valid { jkt } => {
            if form.get("dpop_jkt").is_some_and(|j| *j != jkt) {
                problems.push("dpop_jkt differs from the key of its DPoP proof".into());
            }
        }
        dpop::Check::Invalid | dpop::Check::NonceNeeded(_) => {
            return error(400, "invalid_dpop_proof");
        }
    }
    if !problems.is_empty() {
        let description = problems.join(", ");
        for p in problems {
            st.problems
                .push(format!("pushed authorization request: {p}"));
        }
        return HttpResponse::json(
            400,
            &json!({"error": "invalid_request", "error_description": description}),
        )
        .with_header("cache-control", "no-store");
    }
    let mut params = form;
    params.remove("client_secret");
    params.remove("client_assertion");
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", super::random());
    st.pushed.insert(
        request_uri.clone(),
        Pushed {
            params: params.clone(),
            expires: Instant::now() + LIFETIME,
        },
    );
    st.pushed_requests.push(PushedRequest {
        params,
        auth_method,
        request_uri: request_uri.clone(),
    });
    HttpResponse::json(
        201,
        &json!({"request_uri": request_uri, "expires_in": LIFETIME.as_secs()}),
    )
    .with_header("cache-control", "no-store")
}

/// The pushed parameters a client must send (RFC 9126 section 2.1 with the
/// authorization request's own: OpenID Connect, PKCE S256, state, nonce).
fn check_params(st: &State, form: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    let b = &st.behaviour;
    let has = |name: &str| form.get(name).is_some_and(|v| !v.is_empty());
    if form.get("response_type").map(String::as_str) != Some("code") {
        problems.push("response_type is not `code`".to_string());
    }
    if form.get("client_id") != Some(&b.client_id) {
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
    if b.dpop && !has("dpop_jkt") {
        problems.push("no dpop_jkt though DPoP is required".into());
    }
    problems
}

/// The parameters of an authorization request: the pushed ones for a `request_uri`
/// (used once), else the query as it is; or the refusal.
pub(super) fn resolve(
    st: &mut State,
    query: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, HttpResponse> {
    let Some(request_uri) = query.get("request_uri") else {
        if st.behaviour.require_par {
            st.problems
                .push("an authorization request not pushed though PAR is required".into());
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
        st.problems.push(format!(
            "a pushed authorization request sent {extra:?} beside client_id and request_uri"
        ));
    }
    let pushed = st
        .pushed
        .remove(request_uri)
        .filter(|p| p.expires > Instant::now());
    let Some(pushed) = pushed else {
        st.problems
            .push("an unknown, used or expired request_uri".into());
        return Err(HttpResponse::new(400, "text/plain", "invalid_request_uri"));
    };
    if query.get("client_id") != pushed.params.get("client_id") {
        st.problems
            .push("the authorization request's client_id is not the pushed one".into());
        return Err(HttpResponse::new(400, "text/plain", "client_id mismatch"));
    }
    Ok(pushed.params)
}
