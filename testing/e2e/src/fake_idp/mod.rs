//! A fake OpenID Provider that the tests control, to make the component face an IdP
//! that misbehaves (the real test IdP always behaves).
//!
//! It listens on a free loopback port; its issuer is `http://127.0.0.1:PORT/realms/fake`.
//! It serves discovery, the JWKS, an authorization endpoint that at once answers 303 back
//! to the `redirect_uri` with `code`, `state` and `iss` (recording the request's nonce,
//! PKCE challenge and scope), a token endpoint (authorization_code with PKCE checked
//! against the recorded challenge; refresh_token; client_secret_basic and/or
//! client_secret_post as discovery advertises, or `private_key_jwt` assertions checked
//! against [`Behaviour::client_assertion_key`]), userinfo and an end-session endpoint;
//! on demand a pushed authorization request endpoint (RFC 9126, [`Behaviour::par_endpoint`])
//! and DPoP-bound tokens (RFC 9449, [`Behaviour::dpop`]), whose proofs it checks.
//!
//! What it does is a [`Behaviour`], which a test may change at any time
//! ([`FakeIdp::configure`]): which key signs and which `kid` the header names, claims to
//! set or drop in ID tokens, userinfo, discovery and token responses, `alg: none` and HS256
//! forgeries, what the JWKS publishes, a wrong `iss` on the callback, and per-endpoint
//! [`Fault`]s (garbage, an error status, hanging, answering late, closing the connection).
//! It counts the requests per endpoint ([`FakeIdp::count`]) and notes every protocol
//! violation of the client it sees ([`FakeIdp::problems`]).

mod dpop;
mod endpoint;
mod fresh;
mod http;
pub mod keys;
mod par;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

pub use dpop::{DpopNonce, access_token_hash, jwk_thumbprint};
pub use endpoint::{Endpoint, ISSUER_PATH};
use fresh::{now, random};
pub use http::HttpRequest;
use http::{HttpResponse, Reply, error};
pub use keys::{KeyKind, SigningKey};
pub use par::{PushedRequest, REQUEST_URI_PREFIX};

use crate::host::HostOptions;

/// The client the fake knows by default.
pub const CLIENT_ID: &str = "client1";
/// Its secret.
pub const CLIENT_SECRET: &str = "fake-client-secret";
/// The kids of the two keys every fake starts with (both published).
pub const RSA_KID: &str = "rsa-1";
pub const EC_KID: &str = "ec-1";

/// How an endpoint misbehaves instead of answering properly.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answers this instead.
    Respond {
        status: u16,
        content_type: String,
        body: String,
    },
    /// Never answers (until the fake stops).
    Hang,
    /// Answers properly, but only after this long.
    Delay(Duration),
    /// Closes the connection without a word.
    Close,
}

impl Fault {
    /// 200 with an HTML page where JSON belongs.
    pub fn garbage() -> Fault {
        Fault::Respond {
            status: 200,
            content_type: "text/html".into(),
            body: "<html><body>Welcome to nginx!</body></html>".into(),
        }
    }

    /// 200 `application/json` that is not JSON.
    pub fn malformed_json() -> Fault {
        Fault::Respond {
            status: 200,
            content_type: "application/json".into(),
            body: "{\"issuer\": \"http://127.0.0.1/realms/fake\", \"keys\": [".into(),
        }
    }

    /// This JSON with this status.
    pub fn json(status: u16, value: Value) -> Fault {
        Fault::Respond {
            status,
            content_type: "application/json".into(),
            body: value.to_string(),
        }
    }
}

/// Claims (or members) to set and to remove in a JSON object the fake produces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimEdits {
    pub set: Map<String, Value>,
    pub remove: Vec<String>,
}

impl ClaimEdits {
    pub fn none() -> ClaimEdits {
        ClaimEdits::default()
    }

    pub fn set(mut self, name: &str, value: Value) -> ClaimEdits {
        self.set.insert(name.to_string(), value);
        self
    }

    pub fn remove(mut self, name: &str) -> ClaimEdits {
        self.remove.push(name.to_string());
        self
    }

    pub fn apply(&self, object: &mut Value) {
        let Some(map) = object.as_object_mut() else {
            return;
        };
        for name in &self.remove {
            map.remove(name);
        }
        for (k, v) in &self.set {
            map.insert(k.clone(), v.clone());
        }
    }
}

/// The `kid` the ID token's header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderKid {
    /// The signing key's own kid.
    Own,
    /// No `kid` header.
    Absent,
    /// This kid, whatever key signs.
    Named(String),
}

/// How ID tokens are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// With the fake's key `kid` (published in the JWKS or not).
    Key { kid: String, header_kid: HeaderKid },
    /// `alg: none`, empty signature; the header names the first published kid.
    AlgNone,
    /// HS256 with the client secret as HMAC key; the header names the first published kid.
    Hs256ClientSecret,
    /// HS256 with the SPKI PEM of the published RSA key `kid` as HMAC key (the
    /// key-confusion attack); the header names `kid`.
    Hs256RsaPublicKey { kid: String },
}

impl Signer {
    /// The fake's key `kid`, named in the header.
    pub fn key(kid: &str) -> Signer {
        Signer::Key {
            kid: kid.to_string(),
            header_kid: HeaderKid::Own,
        }
    }

    /// The fake's key `kid`, with the header naming `header_kid`.
    pub fn key_with_header(kid: &str, header_kid: HeaderKid) -> Signer {
        Signer::Key {
            kid: kid.to_string(),
            header_kid,
        }
    }
}

/// The `iss` parameter of the authorization response (RFC 9207).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackIss {
    /// The issuer.
    Correct,
    Absent,
    Value(String),
}

/// Everything the fake can be told to do.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub client_id: String,
    pub client_secret: String,
    /// `token_endpoint_auth_methods_supported`; None leaves it out of discovery (the
    /// spec's default, client_secret_basic). The token endpoint accepts exactly these.
    pub auth_methods: Option<Vec<String>>,
    /// The client's public JWK that `private_key_jwt` assertions are checked with (what
    /// a real IdP fetches from the client's `jwks_uri`); None refuses every assertion.
    pub client_assertion_key: Option<Value>,
    /// `authorization_response_iss_parameter_supported` in discovery.
    pub iss_parameter_supported: bool,
    pub callback_iss: CallbackIss,
    /// The user who logs in: `sub` of the ID tokens and userinfo.
    pub sub: String,
    pub signer: Signer,
    /// The kids of the keys the JWKS lists, in order.
    pub published: Vec<String>,
    /// Edits of the ID token from the code exchange.
    pub id_token: ClaimEdits,
    /// The ID token of a refresh: None sends none; otherwise these edits.
    pub refresh_id_token: Option<ClaimEdits>,
    pub issue_refresh_token: bool,
    pub userinfo: ClaimEdits,
    pub discovery: ClaimEdits,
    /// Edits of the token endpoint's JSON answer (both grants).
    pub token_response: ClaimEdits,
    pub faults: BTreeMap<Endpoint, Fault>,
    /// Access tokens are JWTs signed with the RSA key (`typ: at+jwt`, as
    /// Keycloak's are), not random strings. A DPoP-bound one has `cnf.jkt`.
    pub jwt_access_tokens: bool,
    /// Discovery names `pushed_authorization_request_endpoint` (the endpoint answers
    /// either way).
    pub par_endpoint: bool,
    /// Discovery says `require_pushed_authorization_requests: true`, and the
    /// authorization endpoint refuses a request that was not pushed.
    pub require_par: bool,
    /// DPoP is required: a token request without a valid proof is refused, the
    /// authorization request must carry `dpop_jkt`, and the tokens are DPoP-bound
    /// (`token_type: DPoP`; `token_response` can set `Bearer` all the same). A proof
    /// sent without this is checked and binds the tokens too.
    pub dpop: bool,
    /// When the token endpoint wants a DPoP nonce.
    pub dpop_nonce: DpopNonce,
    /// When userinfo wants a DPoP nonce (its own, as a resource server's).
    pub userinfo_dpop_nonce: DpopNonce,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            client_id: CLIENT_ID.to_string(),
            client_secret: CLIENT_SECRET.to_string(),
            auth_methods: Some(vec![
                "client_secret_basic".to_string(),
                "client_secret_post".to_string(),
            ]),
            client_assertion_key: None,
            iss_parameter_supported: true,
            callback_iss: CallbackIss::Correct,
            sub: "alice".to_string(),
            signer: Signer::key(RSA_KID),
            published: vec![RSA_KID.to_string(), EC_KID.to_string()],
            id_token: ClaimEdits::none(),
            refresh_id_token: Some(ClaimEdits::none()),
            issue_refresh_token: true,
            userinfo: ClaimEdits::none(),
            discovery: ClaimEdits::none(),
            token_response: ClaimEdits::none(),
            faults: BTreeMap::new(),
            jwt_access_tokens: false,
            par_endpoint: false,
            require_par: false,
            dpop: false,
            dpop_nonce: DpopNonce::None,
            userinfo_dpop_nonce: DpopNonce::None,
        }
    }
}

/// What the authorization endpoint recorded for a code.
#[derive(Debug, Clone)]
struct Grant {
    redirect_uri: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    scope: String,
    sub: String,
    /// The `dpop_jkt` of the authorization request; for a refresh token, the
    /// thumbprint of the key its tokens are bound to.
    dpop_jkt: Option<String>,
}

/// What an access token stands for.
#[derive(Debug, Clone)]
struct AccessToken {
    sub: String,
    /// The thumbprint of the DPoP key it is bound to.
    jkt: Option<String>,
}

struct State {
    behaviour: Behaviour,
    keys: BTreeMap<String, Arc<SigningKey>>,
    codes: HashMap<String, Grant>,
    refresh_tokens: HashMap<String, Grant>,
    access_tokens: HashMap<String, AccessToken>,
    /// Pushed requests by request_uri, until used.
    pushed: HashMap<String, par::Pushed>,
    pushed_requests: Vec<PushedRequest>,
    dpop: dpop::DpopState,
    counts: BTreeMap<Endpoint, usize>,
    requests: Vec<(Endpoint, HttpRequest)>,
    auth_methods_used: Vec<String>,
    /// The claims of every client assertion accepted, in order.
    client_assertions: Vec<Value>,
    problems: Vec<String>,
    issued_id_tokens: usize,
}

/// A running fake IdP. Stops when dropped.
pub struct FakeIdp {
    server: http::Server,
    issuer: String,
    state: Arc<Mutex<State>>,
}

impl FakeIdp {
    /// Starts a fake that behaves, with a fresh RSA key `rsa-1` (signing) and P-256 key
    /// `ec-1`, both published.
    pub fn start() -> FakeIdp {
        FakeIdp::start_with(Behaviour::default())
    }

    pub fn start_with(behaviour: Behaviour) -> FakeIdp {
        let mut keys = BTreeMap::new();
        for (kind, kid) in [(KeyKind::Rsa, RSA_KID), (KeyKind::Ec, EC_KID)] {
            keys.insert(kid.to_string(), Arc::new(SigningKey::generate(kind, kid)));
        }
        let state = Arc::new(Mutex::new(State {
            behaviour,
            keys,
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            pushed: HashMap::new(),
            pushed_requests: Vec::new(),
            dpop: dpop::DpopState::default(),
            counts: BTreeMap::new(),
            requests: Vec::new(),
            auth_methods_used: Vec::new(),
            client_assertions: Vec::new(),
            problems: Vec::new(),
            issued_id_tokens: 0,
        }));
        // The issuer depends on the port: bind first, then let the handler learn it.
        let issuer_cell: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
        let handler_state = Arc::clone(&state);
        let handler_issuer = Arc::clone(&issuer_cell);
        let server = http::Server::start(
            0,
            Arc::new(move |request: &HttpRequest| {
                let issuer = handler_issuer.lock().unwrap().clone();
                handle(&handler_state, &issuer, request)
            }),
        );
        let issuer = format!("http://127.0.0.1:{}{ISSUER_PATH}", server.port());
        *issuer_cell.lock().unwrap() = issuer.clone();
        FakeIdp {
            server,
            issuer,
            state,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://127.0.0.1:PORT/realms/fake`
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The absolute URL of `endpoint`.
    pub fn url(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.issuer, endpoint.path())
    }

    /// Host options for a component using this fake, reachable at `client_base_url`.
    pub fn host_options(&self, client_base_url: &str) -> HostOptions {
        let b = self.behaviour();
        HostOptions::default()
            .variable("client_id", &b.client_id)
            .variable("client_secret", &b.client_secret)
            .variable("oidc_issuer_url", &self.issuer)
            .variable("oidc_idp_origin", &self.origin())
            .variable("client_base_url", client_base_url.trim_end_matches('/'))
    }

    /// Changes what the fake does from the next request on.
    pub fn configure(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.state().behaviour);
    }

    /// A copy of the current behaviour.
    pub fn behaviour(&self) -> Behaviour {
        self.state().behaviour.clone()
    }

    /// Generates a key named `kid` (not published until [`FakeIdp::publish`]).
    pub fn add_key(&self, kind: KeyKind, kid: &str) {
        let key = Arc::new(SigningKey::generate(kind, kid));
        self.state().keys.insert(kid.to_string(), key);
    }

    /// Makes the JWKS list exactly these keys.
    pub fn publish(&self, kids: &[&str]) {
        let mut state = self.state();
        for kid in kids {
            assert!(state.keys.contains_key(*kid), "the fake has no key {kid}");
        }
        state.behaviour.published = kids.iter().map(|k| k.to_string()).collect();
    }

    /// Key rotation: a new key `kid` of `kind` signs from now on and is the only one the
    /// JWKS lists (the old keys are gone from it).
    pub fn rotate_to(&self, kind: KeyKind, kid: &str) {
        self.add_key(kind, kid);
        self.publish(&[kid]);
        self.configure(|b| b.signer = Signer::key(kid));
    }

    /// Sets (or with None clears) the fault of `endpoint`.
    pub fn fault(&self, endpoint: Endpoint, fault: Option<Fault>) {
        self.configure(|b| match fault {
            Some(f) => {
                b.faults.insert(endpoint, f);
            }
            None => {
                b.faults.remove(&endpoint);
            }
        });
    }

    /// How many requests `endpoint` got.
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.state().counts.get(&endpoint).copied().unwrap_or(0)
    }

    pub fn counts(&self) -> BTreeMap<Endpoint, usize> {
        self.state().counts.clone()
    }

    /// The requests `endpoint` got, oldest first.
    pub fn requests(&self, endpoint: Endpoint) -> Vec<HttpRequest> {
        self.state()
            .requests
            .iter()
            .filter(|(e, _)| *e == endpoint)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The query parameters of the last authorization request.
    pub fn last_authorization(&self) -> Option<BTreeMap<String, String>> {
        self.requests(Endpoint::Authorization)
            .last()
            .map(HttpRequest::query_params)
    }

    /// The client authentication method of each token request, oldest first
    /// (`client_secret_basic`, `client_secret_post` or `none`).
    pub fn auth_methods_used(&self) -> Vec<String> {
        self.state().auth_methods_used.clone()
    }

    /// The claims of every `private_key_jwt` assertion the token endpoint accepted.
    pub fn client_assertions(&self) -> Vec<Value> {
        self.state().client_assertions.clone()
    }

    /// The protocol violations of the client the fake noticed.
    pub fn problems(&self) -> Vec<String> {
        self.state().problems.clone()
    }

    /// The requests the PAR endpoint accepted, oldest first.
    pub fn pushed_requests(&self) -> Vec<PushedRequest> {
        self.state().pushed_requests.clone()
    }

    /// Every DPoP proof `endpoint` received, decoded as (header, claims), oldest
    /// first (valid or not).
    pub fn dpop_proofs(&self, endpoint: Endpoint) -> Vec<(Value, Value)> {
        self.state()
            .dpop
            .proofs
            .iter()
            .filter(|(e, _, _)| *e == endpoint)
            .map(|(_, h, c)| (h.clone(), c.clone()))
            .collect()
    }

    /// Every DPoP nonce the fake handed out (token endpoint and userinfo), oldest first.
    pub fn dpop_nonces_issued(&self) -> Vec<String> {
        self.state().dpop.issued_nonces.clone()
    }

    /// How many ID tokens the token endpoint handed out.
    pub fn issued_id_tokens(&self) -> usize {
        self.state().issued_id_tokens
    }

    /// Forgets the recorded requests (keeps the counts); for long runs.
    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// Stops listening: the port refuses connections, open ones are closed.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

fn handle(state: &Mutex<State>, issuer: &str, request: &HttpRequest) -> Reply {
    let endpoint = Endpoint::of_path(&request.path);
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    *st.counts.entry(endpoint).or_default() += 1;
    let mut recorded = request.clone();
    if recorded.body.len() > 4096 {
        recorded.body.truncate(4096);
    }
    st.requests.push((endpoint, recorded));
    let fault = st.behaviour.faults.get(&endpoint).cloned();
    match fault {
        Some(Fault::Respond {
            status,
            content_type,
            body,
        }) => return Reply::Respond(HttpResponse::new(status, &content_type, body)),
        Some(Fault::Hang) => return Reply::Hang,
        Some(Fault::Close) => return Reply::Close,
        Some(Fault::Delay(_)) | None => {}
    }
    let response = match endpoint {
        Endpoint::Discovery => discovery(&st, issuer),
        Endpoint::Jwks => jwks(&st),
        Endpoint::Authorization => authorize(&mut st, issuer, request),
        Endpoint::Token => token(&mut st, issuer, request),
        Endpoint::Userinfo => userinfo(&mut st, issuer, request),
        Endpoint::EndSession => end_session(request),
        Endpoint::Par => pushed_authorization_request(&mut st, issuer, request),
        Endpoint::Other => HttpResponse::new(404, "text/plain", "not found"),
    };
    match fault {
        Some(Fault::Delay(wait)) => Reply::Delayed(wait, response),
        _ => Reply::Respond(response),
    }
}

fn discovery(st: &State, issuer: &str) -> HttpResponse {
    let b = &st.behaviour;
    let url = |e: Endpoint| format!("{issuer}{}", e.path());
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": url(Endpoint::Authorization),
        "token_endpoint": url(Endpoint::Token),
        "jwks_uri": url(Endpoint::Jwks),
        "userinfo_endpoint": url(Endpoint::Userinfo),
        "end_session_endpoint": url(Endpoint::EndSession),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
    });
    if let Some(methods) = &b.auth_methods {
        doc["token_endpoint_auth_methods_supported"] = json!(methods);
    }
    if b.iss_parameter_supported {
        doc["authorization_response_iss_parameter_supported"] = json!(true);
    }
    if b.par_endpoint {
        doc["pushed_authorization_request_endpoint"] = json!(url(Endpoint::Par));
    }
    if b.require_par {
        doc["require_pushed_authorization_requests"] = json!(true);
    }
    if b.dpop {
        doc["dpop_signing_alg_values_supported"] = json!(["ES256"]);
    }
    b.discovery.apply(&mut doc);
    HttpResponse::json(200, &doc)
}

fn jwks(st: &State) -> HttpResponse {
    let keys: Vec<Value> = st
        .behaviour
        .published
        .iter()
        .filter_map(|kid| st.keys.get(kid))
        .map(|k| k.public_jwk())
        .collect();
    HttpResponse::json(200, &json!({ "keys": keys }))
}

/// The PAR endpoint (RFC 9126): authenticates the client as the token endpoint
/// does, checks the pushed parameters and keeps them under a fresh one-time
/// `request_uri`.
fn pushed_authorization_request(
    st: &mut State,
    issuer: &str,
    request: &HttpRequest,
) -> HttpResponse {
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
    // A proof here is allowed (RFC 9449 section 10.1); checked if sent, and then its
    // key must be the dpop_jkt.
    let htu = format!("{issuer}{}", Endpoint::Par.path());
    let mut dpop_problems = Vec::new();
    let check = st.dpop.check(
        Endpoint::Par,
        request,
        &htu,
        DpopNonce::None,
        None,
        &mut dpop_problems,
    );
    st.problems.append(&mut dpop_problems);
    let proof_jkt = match check {
        dpop::Check::Absent => None,
        dpop::Check::Valid { jkt } => Some(jkt),
        dpop::Check::Invalid | dpop::Check::NonceNeeded(_) => {
            return error(400, "invalid_dpop_proof");
        }
    };
    let problems = par::check_params(
        &form,
        &st.behaviour.client_id,
        st.behaviour.dpop,
        proof_jkt.as_deref(),
    );
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
    let pushed = par::store(&mut st.pushed, form, auth_method);
    let answer = HttpResponse::json(
        201,
        &json!({"request_uri": pushed.request_uri, "expires_in": par::LIFETIME.as_secs()}),
    )
    .with_header("cache-control", "no-store");
    st.pushed_requests.push(pushed);
    answer
}

fn authorize(st: &mut State, issuer: &str, request: &HttpRequest) -> HttpResponse {
    let resolved = par::resolve(
        &mut st.pushed,
        st.behaviour.require_par,
        request.query_params(),
        &mut st.problems,
    );
    let p = match resolved {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let Some(redirect_uri) = p.get("redirect_uri").cloned() else {
        st.problems
            .push("authorization request without redirect_uri".into());
        return HttpResponse::new(400, "text/plain", "redirect_uri is required");
    };
    if p.get("client_id") != Some(&st.behaviour.client_id) {
        st.problems
            .push("authorization request for an unknown client_id".into());
        return HttpResponse::new(400, "text/plain", "unknown client_id");
    }
    let state = p.get("state").cloned();
    let mut problems = Vec::new();
    if p.get("response_type").map(String::as_str) != Some("code") {
        problems.push("response_type is not `code`");
    }
    if p.get("code_challenge_method").map(String::as_str) != Some("S256") {
        problems.push("code_challenge_method is not S256");
    }
    if !p.contains_key("code_challenge") {
        problems.push("no PKCE code_challenge");
    }
    if !p
        .get("scope")
        .is_some_and(|s| s.split(' ').any(|s| s == "openid"))
    {
        problems.push("the scope lacks openid");
    }
    if state.is_none() {
        problems.push("no state");
    }
    if !p.contains_key("nonce") {
        problems.push("no nonce");
    }
    if st.behaviour.dpop && !p.contains_key("dpop_jkt") {
        problems.push("no dpop_jkt though DPoP is required");
    }
    let mut location = url::Url::parse(&redirect_uri).expect("redirect_uri is a URL");
    {
        let mut q = location.query_pairs_mut();
        if problems.is_empty() {
            let code = random();
            st.codes.insert(
                code.clone(),
                Grant {
                    redirect_uri: redirect_uri.clone(),
                    nonce: p.get("nonce").cloned(),
                    code_challenge: p.get("code_challenge").cloned(),
                    scope: p.get("scope").cloned().unwrap_or_default(),
                    sub: st.behaviour.sub.clone(),
                    dpop_jkt: p.get("dpop_jkt").cloned(),
                },
            );
            q.append_pair("code", &code);
        } else {
            q.append_pair("error", "invalid_request");
            q.append_pair("error_description", &problems.join(", "));
        }
        if let Some(state) = &state {
            q.append_pair("state", state);
        }
        match &st.behaviour.callback_iss {
            CallbackIss::Correct => {
                q.append_pair("iss", issuer);
            }
            CallbackIss::Absent => {}
            CallbackIss::Value(v) => {
                q.append_pair("iss", v);
            }
        }
    }
    for p in problems {
        st.problems.push(format!("authorization request: {p}"));
    }
    HttpResponse::redirect(303, location.as_str())
}

/// The client authentication of a token request: (method, client_id, secret); a
/// client assertion is `private_key_jwt`, checked by [`check_assertion`].
fn client_auth(
    request: &HttpRequest,
    form: &BTreeMap<String, String>,
) -> (String, Option<(String, String)>) {
    if form.contains_key("client_assertion") || form.contains_key("client_assertion_type") {
        return ("private_key_jwt".into(), None);
    }
    if let Some(basic) = request
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
    {
        let decoded = STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let pair = decoded.and_then(|d| {
            let (id, secret) = d.split_once(':')?;
            let dec = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((dec(id)?, dec(secret)?))
        });
        return ("client_secret_basic".into(), pair);
    }
    match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => (
            "client_secret_post".into(),
            Some((id.clone(), secret.clone())),
        ),
        _ => ("none".into(), None),
    }
}

/// Checks the client authentication of a token or pushed authorization request as
/// discovery advertises it; the method used, or why it failed and the answer.
fn authenticate(
    st: &mut State,
    issuer: &str,
    request: &HttpRequest,
    form: &BTreeMap<String, String>,
) -> Result<String, (String, HttpResponse)> {
    let (method, credentials) = client_auth(request, form);
    let accepted = st
        .behaviour
        .auth_methods
        .clone()
        .unwrap_or_else(|| vec!["client_secret_basic".to_string()]);
    if !accepted.contains(&method) {
        return Err((
            format!("authenticated with {method}, not one of {accepted:?}"),
            error(401, "invalid_client"),
        ));
    }
    let expected = (
        st.behaviour.client_id.clone(),
        st.behaviour.client_secret.clone(),
    );
    if method == "private_key_jwt" {
        if let Err(why) = check_assertion(st, issuer, request, form) {
            return Err((
                format!("client assertion refused: {why}"),
                error(401, "invalid_client"),
            ));
        }
    } else if credentials != Some(expected) {
        return Err((
            "with wrong client credentials".into(),
            error(401, "invalid_client"),
        ));
    }
    Ok(method)
}

fn token(st: &mut State, issuer: &str, request: &HttpRequest) -> HttpResponse {
    if request.method != "POST" {
        st.problems
            .push(format!("token endpoint called with {}", request.method));
        return error(405, "invalid_request");
    }
    let form = request.form();
    st.auth_methods_used.push(client_auth(request, &form).0);
    if let Err((why, refused)) = authenticate(st, issuer, request, &form) {
        // The messages tests look for: "client assertion refused: ..." as it is.
        st.problems.push(match why.starts_with("client assertion") {
            true => why,
            false => format!("token request {why}"),
        });
        return refused;
    }
    let jkt = match token_dpop(st, issuer, request) {
        Ok(jkt) => jkt,
        Err(refused) => return refused,
    };
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(grant) = form.get("code").and_then(|c| st.codes.remove(c)) else {
                st.problems
                    .push("unknown or reused authorization code".into());
                return error(400, "invalid_grant");
            };
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                st.problems
                    .push("token request's redirect_uri differs".into());
                return error(400, "invalid_grant");
            }
            let verified = match (form.get("code_verifier"), &grant.code_challenge) {
                (Some(v), Some(c)) => crate::oidc::s256(v) == *c,
                _ => false,
            };
            if !verified {
                st.problems
                    .push("PKCE code_verifier does not match the challenge".into());
                return error(400, "invalid_grant");
            }
            if let Some(wanted) = &grant.dpop_jkt
                && jkt.as_ref() != Some(wanted)
            {
                st.problems.push(format!(
                    "the DPoP proof's key {jkt:?} is not the dpop_jkt {wanted} of the authorization request"
                ));
                return error(400, "invalid_dpop_proof");
            }
            let edits = st.behaviour.id_token.clone();
            issue_tokens(st, issuer, &grant, Some(&edits), true, jkt)
        }
        Some("refresh_token") => {
            let Some(grant) = form
                .get("refresh_token")
                .and_then(|t| st.refresh_tokens.get(t))
                .cloned()
            else {
                return error(400, "invalid_grant");
            };
            if let Some(bound) = &grant.dpop_jkt
                && jkt.as_ref() != Some(bound)
            {
                st.problems.push(format!(
                    "the refresh's DPoP proof key {jkt:?} is not the session's key {bound}"
                ));
                return error(400, "invalid_dpop_proof");
            }
            let edits = st.behaviour.refresh_id_token.clone();
            issue_tokens(st, issuer, &grant, edits.as_ref(), false, jkt)
        }
        _ => error(400, "unsupported_grant_type"),
    }
}

/// The DPoP proof of a token request: the thumbprint of its key (None: no proof,
/// and none required), or the refusal (`invalid_dpop_proof`, or a `use_dpop_nonce`
/// challenge with a `DPoP-Nonce` header).
fn token_dpop(
    st: &mut State,
    issuer: &str,
    request: &HttpRequest,
) -> Result<Option<String>, HttpResponse> {
    let htu = format!("{issuer}{}", Endpoint::Token.path());
    let policy = st.behaviour.dpop_nonce;
    let mut problems = Vec::new();
    let check = st
        .dpop
        .check(Endpoint::Token, request, &htu, policy, None, &mut problems);
    st.problems.append(&mut problems);
    match check {
        dpop::Check::Valid { jkt } => Ok(Some(jkt)),
        dpop::Check::Absent if !st.behaviour.dpop => Ok(None),
        dpop::Check::Absent => {
            st.problems
                .push("token request without a DPoP proof though DPoP is required".into());
            Err(error(400, "invalid_dpop_proof"))
        }
        dpop::Check::Invalid => Err(error(400, "invalid_dpop_proof")),
        dpop::Check::NonceNeeded(nonce) => Err(HttpResponse::json(
            400,
            &json!({
                "error": "use_dpop_nonce",
                "error_description": "Authorization server requires nonce in DPoP proof",
            }),
        )
        .with_header("cache-control", "no-store")
        .with_header("dpop-nonce", &nonce)),
    }
}

/// RFC 7523 section 3 and OpenID Connect Core 9, as an IdP checks them: the
/// assertion type; no other credentials beside it; an ES256 signature by the
/// registered key, named by its `kid`; `iss` = `sub` = the client id; `aud` the
/// issuer; unexpired, and good for at most a minute; a `jti` never seen before.
fn check_assertion(
    st: &mut State,
    issuer: &str,
    request: &HttpRequest,
    form: &BTreeMap<String, String>,
) -> Result<(), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
    let client_id = st.behaviour.client_id.clone();
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return Err("client_assertion_type is not jwt-bearer".into());
    }
    if request.header("authorization").is_some() || form.contains_key("client_secret") {
        return Err("other credentials sent beside the assertion".into());
    }
    if form.get("client_id").is_some_and(|id| *id != client_id) {
        return Err("client_id differs from the assertion's".into());
    }
    let assertion = form.get("client_assertion").ok_or("no client_assertion")?;
    let registered = st
        .behaviour
        .client_assertion_key
        .clone()
        .ok_or("no client key registered")?;
    let jwk: Jwk =
        serde_json::from_value(registered).map_err(|e| format!("bad registered key: {e}"))?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| format!("header: {e}"))?;
    if header.alg != Algorithm::ES256 || header.kid != jwk.common.key_id {
        return Err(format!(
            "alg {:?} / kid {:?} is not the registered key's",
            header.alg, header.kid
        ));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("registered key: {e}"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[issuer]);
    validation.set_issuer(&[&client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|e| format!("{e}"))?
        .claims;
    if claims["sub"] != json!(client_id) {
        return Err("sub is not the client id".into());
    }
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    if !matches!((iat, exp), (Some(iat), Some(exp)) if exp - iat <= 60 && (iat - now()).abs() <= 60)
    {
        return Err("not issued now for at most a minute".into());
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or("no jti")?;
    if st.client_assertions.iter().any(|c| c["jti"] == json!(jti)) {
        return Err("a jti seen before (a replayed assertion)".into());
    }
    st.client_assertions.push(claims);
    Ok(())
}

fn issue_tokens(
    st: &mut State,
    issuer: &str,
    grant: &Grant,
    id_token_edits: Option<&ClaimEdits>,
    first: bool,
    jkt: Option<String>,
) -> HttpResponse {
    let access_token = match st.behaviour.jwt_access_tokens {
        false => random(),
        true => jwt_access_token(st, issuer, grant, jkt.as_deref()),
    };
    st.access_tokens.insert(
        access_token.clone(),
        AccessToken {
            sub: grant.sub.clone(),
            jkt: jkt.clone(),
        },
    );
    let mut body = json!({
        "access_token": access_token,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": 300,
        "scope": grant.scope,
    });
    if let Some(edits) = id_token_edits {
        let now = now();
        let mut claims = json!({
            "iss": issuer,
            "sub": grant.sub,
            "aud": st.behaviour.client_id,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "sid": "fake-sid-1",
            "preferred_username": grant.sub,
        });
        if let (true, Some(nonce)) = (first, &grant.nonce) {
            claims["nonce"] = json!(nonce);
        }
        edits.apply(&mut claims);
        match sign(st, &claims) {
            Ok(token) => {
                body["id_token"] = json!(token);
                st.issued_id_tokens += 1;
            }
            Err(e) => {
                st.problems.push(e.clone());
                return HttpResponse::new(500, "text/plain", e);
            }
        }
    }
    if first && st.behaviour.issue_refresh_token {
        let refresh = random();
        let bound = Grant {
            dpop_jkt: jkt,
            ..grant.clone()
        };
        st.refresh_tokens.insert(refresh.clone(), bound);
        body["refresh_token"] = json!(refresh);
    }
    st.behaviour.token_response.apply(&mut body);
    HttpResponse::json(200, &body).with_header("cache-control", "no-store")
}

/// An RFC 9068 access token, signed with the RSA key; bound to the DPoP key `jkt`
/// by `cnf.jkt` (RFC 9449 section 6.1).
fn jwt_access_token(st: &State, issuer: &str, grant: &Grant, jkt: Option<&str>) -> String {
    let now = now();
    let mut claims = json!({
        "iss": issuer,
        "sub": grant.sub,
        "aud": "account",
        "client_id": st.behaviour.client_id,
        "scope": grant.scope,
        "exp": now + 300,
        "iat": now,
        "jti": random(),
    });
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    st.keys[RSA_KID].sign(Some(RSA_KID), &claims)
}

/// Signs an ID token as the behaviour says (an error names a misconfigured test).
fn sign(st: &State, claims: &Value) -> Result<String, String> {
    let first_published = st.behaviour.published.first().cloned();
    match &st.behaviour.signer {
        Signer::Key { kid, header_kid } => {
            let key = st
                .keys
                .get(kid)
                .ok_or_else(|| format!("test setup: the fake has no key {kid}"))?;
            let header = match header_kid {
                HeaderKid::Own => Some(key.kid.clone()),
                HeaderKid::Absent => None,
                HeaderKid::Named(k) => Some(k.clone()),
            };
            Ok(key.sign(header.as_deref(), claims))
        }
        Signer::AlgNone => {
            let mut header = json!({"alg": "none", "typ": "JWT"});
            if let Some(kid) = first_published {
                header["kid"] = json!(kid);
            }
            Ok(keys::unsigned(&header, claims, b""))
        }
        Signer::Hs256ClientSecret => Ok(keys::hs256(
            claims,
            st.behaviour.client_secret.as_bytes(),
            first_published.as_deref(),
        )),
        Signer::Hs256RsaPublicKey { kid } => {
            let pem = st
                .keys
                .get(kid)
                .and_then(|k| k.public_pem())
                .ok_or_else(|| format!("test setup: the fake has no RSA key {kid}"))?;
            Ok(keys::hs256(claims, pem.as_bytes(), Some(kid)))
        }
    }
}

/// Userinfo, a resource server: a Bearer token, or a DPoP-bound one with the
/// `DPoP` scheme and a proof by its key for this request (RFC 9449 section 7).
fn userinfo(st: &mut State, issuer: &str, request: &HttpRequest) -> HttpResponse {
    let (scheme, token) = request
        .header("authorization")
        .and_then(|h| h.split_once(' '))
        .map(|(scheme, token)| (scheme.to_string(), token.trim().to_string()))
        .unwrap_or_default();
    let Some(access) = st.access_tokens.get(&token).cloned() else {
        return error(401, "invalid_token");
    };
    if let Some(bound) = &access.jkt {
        if let Err(refused) = userinfo_dpop(st, issuer, request, &scheme, &token, bound) {
            return refused;
        }
    } else if scheme != "Bearer" {
        st.problems.push(format!(
            "userinfo: a Bearer token sent with the {scheme} scheme"
        ));
        return error(401, "invalid_token");
    }
    let sub = access.sub;
    let mut claims = json!({
        "sub": sub,
        "preferred_username": sub,
        "email": format!("{sub}@example.test"),
    });
    st.behaviour.userinfo.apply(&mut claims);
    HttpResponse::json(200, &claims)
}

/// The DPoP side of a userinfo request with a token bound to the key `bound`.
fn userinfo_dpop(
    st: &mut State,
    issuer: &str,
    request: &HttpRequest,
    scheme: &str,
    token: &str,
    bound: &str,
) -> Result<(), HttpResponse> {
    let refuse = |code: &str| {
        HttpResponse::json(401, &json!({ "error": code }))
            .with_header("www-authenticate", &format!("DPoP error=\"{code}\""))
    };
    if !scheme.eq_ignore_ascii_case("DPoP") {
        st.problems.push(format!(
            "userinfo: a DPoP-bound token sent with the {scheme} scheme"
        ));
        return Err(refuse("invalid_token"));
    }
    let htu = format!("{issuer}{}", Endpoint::Userinfo.path());
    let policy = st.behaviour.userinfo_dpop_nonce;
    let mut problems = Vec::new();
    let check = st.dpop.check(
        Endpoint::Userinfo,
        request,
        &htu,
        policy,
        Some(token),
        &mut problems,
    );
    st.problems.append(&mut problems);
    match check {
        dpop::Check::Valid { jkt } if jkt == bound => Ok(()),
        dpop::Check::Valid { jkt } => {
            st.problems.push(format!(
                "userinfo: the DPoP proof's key {jkt} is not the token's {bound}"
            ));
            Err(refuse("invalid_token"))
        }
        dpop::Check::Absent => {
            st.problems
                .push("userinfo: a DPoP-bound token without a proof".into());
            Err(refuse("invalid_dpop_proof"))
        }
        dpop::Check::Invalid => Err(refuse("invalid_dpop_proof")),
        dpop::Check::NonceNeeded(nonce) => Err(HttpResponse::json(
            401,
            &json!({"error": "use_dpop_nonce"}),
        )
        .with_header(
            "www-authenticate",
            "DPoP error=\"use_dpop_nonce\", error_description=\"Resource server requires nonce in DPoP proof\"",
        )
        .with_header("dpop-nonce", &nonce)),
    }
}

fn end_session(request: &HttpRequest) -> HttpResponse {
    let p = request.query_params();
    match p.get("post_logout_redirect_uri") {
        Some(target) => {
            let mut location = match url::Url::parse(target) {
                Ok(u) => u,
                Err(_) => {
                    return HttpResponse::new(400, "text/plain", "bad post_logout_redirect_uri");
                }
            };
            if let Some(state) = p.get("state") {
                location.query_pairs_mut().append_pair("state", state);
            }
            HttpResponse::redirect(303, location.as_str())
        }
        None => HttpResponse::new(200, "text/html", "<html><body>Signed out.</body></html>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::{Browser, form_urlencode};
    use crate::oidc::{Pkce, basic_auth};
    use url::Url;

    const REDIRECT: &str = "http://app.test/callback";

    /// The authorization endpoint's redirect for a request with this PKCE and nonce.
    fn authorize(idp: &FakeIdp, browser: &mut Browser, pkce: &Pkce, nonce: &str) -> Url {
        let mut u = Url::parse(&idp.url(Endpoint::Authorization)).unwrap();
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid profile")
            .append_pair("state", "st-1")
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        browser.get(u.as_str()).assert_redirect(303, REDIRECT)
    }

    fn param(url: &Url, name: &str) -> Option<String> {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn token_request(
        idp: &FakeIdp,
        browser: &mut Browser,
        auth: &str,
        fields: &[(&str, &str)],
    ) -> crate::Response {
        let url = Url::parse(&idp.url(Endpoint::Token)).unwrap();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        let basic = basic_auth(CLIENT_ID, CLIENT_SECRET);
        let headers: Vec<(&str, &str)> = match auth {
            "basic" => vec![("authorization", basic.as_str())],
            _ => {
                all.push(("client_id", CLIENT_ID));
                all.push(("client_secret", CLIENT_SECRET));
                vec![]
            }
        };
        let body = form_urlencode(&all).into_bytes();
        browser.request(
            "POST",
            &url,
            &headers,
            Some(("application/x-www-form-urlencoded", body)),
        )
    }

    #[test]
    fn code_flow_with_pkce_gives_an_id_token_the_jwks_verifies() {
        let idp = FakeIdp::start();
        let mut browser = Browser::new();
        let discovery = browser.get(&idp.url(Endpoint::Discovery)).json();
        assert_eq!(discovery["issuer"], idp.issuer());
        assert_eq!(
            discovery["authorization_response_iss_parameter_supported"],
            true
        );

        let pkce = Pkce::new();
        let back = authorize(&idp, &mut browser, &pkce, "n-1");
        assert_eq!(param(&back, "state").as_deref(), Some("st-1"));
        assert_eq!(param(&back, "iss").as_deref(), Some(idp.issuer()));
        let code = param(&back, "code").unwrap();
        let code_grant = [
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
        ];
        let tokens = token_request(&idp, &mut browser, "basic", &code_grant);
        tokens.assert_status(200);
        let tokens = tokens.json();
        let id_token = tokens["id_token"].as_str().unwrap();

        let jwks = browser.get(&idp.url(Endpoint::Jwks)).json();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
        assert_eq!(jwk.common.key_id.as_deref(), Some(RSA_KID));
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[CLIENT_ID]);
        validation.set_issuer(&[idp.issuer()]);
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(
            (claims["sub"].as_str(), claims["nonce"].as_str()),
            (Some("alice"), Some("n-1"))
        );

        // The code is single-use; the refresh token works and brings a nonce-less ID token.
        let again = token_request(&idp, &mut browser, "basic", &code_grant);
        again.assert_status(400);
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let refreshed = token_request(
            &idp,
            &mut browser,
            "basic",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        );
        let refreshed_claims =
            crate::oidc::jwt_claims(refreshed.json()["id_token"].as_str().unwrap());
        assert!(refreshed_claims.get("nonce").is_none());

        let access = tokens["access_token"].as_str().unwrap();
        let bearer = format!("Bearer {access}");
        let info = browser.request(
            "GET",
            &Url::parse(&idp.url(Endpoint::Userinfo)).unwrap(),
            &[("authorization", &bearer)],
            None,
        );
        assert_eq!(info.json()["sub"], "alice");
        assert_eq!(idp.count(Endpoint::Token), 3);
        assert_eq!(idp.auth_methods_used(), ["client_secret_basic"; 3]);
        assert_eq!(idp.problems(), ["unknown or reused authorization code"]);
    }

    #[test]
    fn wrong_verifier_and_unadvertised_auth_method_are_refused_and_noted() {
        let idp = FakeIdp::start_with(Behaviour {
            auth_methods: Some(vec!["client_secret_post".into()]),
            ..Behaviour::default()
        });
        let mut browser = Browser::new();
        let pkce = Pkce::new();
        let code = param(&authorize(&idp, &mut browser, &pkce, "n"), "code").unwrap();
        let fields = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            (
                "code_verifier",
                "not-the-verifier-not-the-verifier-not-the-v",
            ),
        ];
        token_request(&idp, &mut browser, "basic", &fields).assert_status(401);
        let refused = token_request(&idp, &mut browser, "post", &fields);
        refused.assert_status(400);
        assert_eq!(refused.json()["error"], "invalid_grant");
        assert_eq!(idp.problems().len(), 2, "{:?}", idp.problems());
    }

    #[test]
    fn faults_answer_instead_and_stop_ends_a_hang() {
        let mut idp = FakeIdp::start();
        idp.fault(Endpoint::Discovery, Some(Fault::garbage()));
        let mut browser = Browser::new();
        let r = browser.get(&idp.url(Endpoint::Discovery));
        assert_eq!(
            (r.status, r.header("content-type")),
            (200, Some("text/html"))
        );

        idp.fault(Endpoint::Jwks, Some(Fault::Hang));
        let jwks = idp.url(Endpoint::Jwks);
        let waiting = std::thread::spawn(move || Browser::new().try_get(&jwks).is_err());
        crate::wait_until(Duration::from_secs(10), "the JWKS request arrived", || {
            (idp.count(Endpoint::Jwks) == 1).then_some(())
        })
        .unwrap();
        idp.stop();
        assert!(
            waiting.join().unwrap(),
            "the hanging request ends without an answer"
        );
        assert!(
            browser.try_get(&idp.url(Endpoint::Discovery)).is_err(),
            "the port is closed"
        );
    }

    #[test]
    fn a_pushed_request_is_used_once_through_its_request_uri() {
        let idp = FakeIdp::start_with(Behaviour {
            par_endpoint: true,
            ..Behaviour::default()
        });
        let mut browser = Browser::new();
        let discovery = browser.get(&idp.url(Endpoint::Discovery)).json();
        assert_eq!(
            discovery["pushed_authorization_request_endpoint"],
            idp.url(Endpoint::Par)
        );
        let pkce = Pkce::new();
        let fields = [
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ];
        let basic = basic_auth(CLIENT_ID, CLIENT_SECRET);
        let pushed = browser.request(
            "POST",
            &Url::parse(&idp.url(Endpoint::Par)).unwrap(),
            &[("authorization", basic.as_str())],
            Some((
                "application/x-www-form-urlencoded",
                form_urlencode(&fields).into_bytes(),
            )),
        );
        pushed.assert_status(201);
        let answer = pushed.json();
        let request_uri = answer["request_uri"].as_str().unwrap();
        assert!(request_uri.starts_with(REQUEST_URI_PREFIX), "{answer}");
        assert_eq!(answer["expires_in"], 60);

        let mut authorization = Url::parse(&idp.url(Endpoint::Authorization)).unwrap();
        authorization
            .query_pairs_mut()
            .append_pair("client_id", CLIENT_ID)
            .append_pair("request_uri", request_uri);
        let back = browser
            .get(authorization.as_str())
            .assert_redirect(303, REDIRECT);
        assert_eq!(param(&back, "state").as_deref(), Some("st-1"));
        assert!(param(&back, "code").is_some(), "{back}");
        assert_eq!(idp.problems(), Vec::<String>::new());

        browser.get(authorization.as_str()).assert_status(400);
        assert_eq!(idp.problems(), ["an unknown, used or expired request_uri"]);
        let recorded = idp.pushed_requests();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].auth_method, "client_secret_basic");
        assert_eq!(recorded[0].request_uri, request_uri);
    }

    #[test]
    fn claim_edits_set_and_remove() {
        let mut v = json!({"a": 1, "b": 2});
        ClaimEdits::none()
            .remove("a")
            .set("c", json!([1]))
            .set("b", json!("x"))
            .apply(&mut v);
        assert_eq!(v, json!({"b": "x", "c": [1]}));
        assert_eq!(
            Endpoint::of_path("/realms/fake/protocol/openid-connect/certs"),
            Endpoint::Jwks
        );
        assert_eq!(Endpoint::of_path("/realms/fake/nope"), Endpoint::Other);
    }
}
