//! The token endpoint (code exchange and refresh) and revocation, through the
//! `oauth2` crate over our own HTTP port, authenticating as configured: with
//! the client secret as discovery allows, or with a fresh `private_key_jwt`
//! assertion on every request (`oauth2` has no such method, so the assertion
//! rides as extra form parameters next to the `client_id` it sends). With
//! DPoP, each request carries a fresh proof of the session's key (`dpop`),
//! and a server that asks for a nonce gets one retry with it.

use super::OidcError;
use super::discovery::ProviderMetadata;
use super::dpop::{self, ProofFor};
use super::transaction::{LoginTransaction, VerifiedCallback};
use crate::config::{ClientAuth, Config, TokenAuthMethod};
use crate::es256::Es256Key;
use crate::ports::{Clock, HttpClient, HttpError, HttpRequest, HttpResponse, Random};
use crate::secret::{AccessToken, RefreshToken};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, RevocationUrl, Scope, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// The OpenID Connect addition to the OAuth token response.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type OidcTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OidcClient<HasAuth> = oauth2::Client<
    BasicErrorResponse,
    OidcTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuth,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What the token endpoint returned, before the ID token is validated.
pub struct TokenSet {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub id_token: Option<String>,
    pub expires_in: Option<i64>,
    pub scope: Option<String>,
}

#[derive(Debug)]
pub enum TokenError {
    /// `invalid_grant`: the code or refresh token is no longer good.
    InvalidGrant,
    Failed(OidcError),
}

impl From<OidcError> for TokenError {
    fn from(e: OidcError) -> Self {
        TokenError::Failed(e)
    }
}

fn client(cfg: &Config, meta: &ProviderMetadata) -> Result<OidcClient<EndpointNotSet>, OidcError> {
    let client = oauth2::Client::new(ClientId::new(cfg.client_id.clone()))
        .set_token_uri(
            TokenUrl::new(meta.token_endpoint.clone())
                .map_err(|_| OidcError::BadResponse("token_endpoint is not a URL".into()))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(cfg.redirect_uri())
                .map_err(|_| OidcError::BadResponse("bad redirect URI".into()))?,
        );
    let method = meta.client_auth(cfg.client_auth.chosen())?;
    Ok(match &cfg.client_auth {
        ClientAuth::Secret { secret, .. } => client
            .set_client_secret(ClientSecret::new(secret.expose().to_owned()))
            .set_auth_type(if method == TokenAuthMethod::SecretPost {
                AuthType::RequestBody
            } else {
                AuthType::BasicAuth
            }),
        // No secret: `oauth2` puts `client_id` in the form, beside the assertion.
        ClientAuth::PrivateKeyJwt(_) => client.set_auth_type(AuthType::RequestBody),
    })
}

/// RFC 7523 section 2.2's `client_assertion_type`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The form parameters of one fresh client assertion, with `private_key_jwt`;
/// none with a client secret. Its audience is the issuer identifier. The key
/// is parsed here, on first use in the request, and a key that does not
/// parse is the configuration's error.
fn assertion_params(
    cfg: &Config,
    clock: &dyn Clock,
    rng: &dyn Random,
) -> Result<Vec<(&'static str, String)>, OidcError> {
    Ok(match cfg.client_auth.signing_key() {
        None => Vec::new(),
        Some(Err(e)) => return Err(OidcError::Config(e)),
        Some(Ok(key)) => vec![
            ("client_assertion_type", JWT_BEARER.to_owned()),
            (
                "client_assertion",
                key.assertion(&cfg.client_id, &cfg.issuer, clock.now(), rng),
            ),
        ],
    })
}

/// How a request that `oauth2` does not make (PAR) authenticates, the same
/// way as at the token endpoint: an `Authorization` header for
/// client_secret_basic (id and secret form-urlencoded, RFC 6749 section
/// 2.3.1, as `oauth2` does it), else form parameters.
pub fn client_credentials(
    cfg: &Config,
    meta: &ProviderMetadata,
    clock: &dyn Clock,
    rng: &dyn Random,
) -> Result<ClientCredentials, OidcError> {
    let method = meta.client_auth(cfg.client_auth.chosen())?;
    Ok(match (&cfg.client_auth, method) {
        (ClientAuth::Secret { secret, .. }, TokenAuthMethod::SecretBasic) => {
            use base64::Engine;
            let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", encode(&cfg.client_id), encode(secret.expose()));
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            ClientCredentials {
                authorization: Some(format!("Basic {basic}")),
                form: Vec::new(),
            }
        }
        (ClientAuth::Secret { secret, .. }, _) => ClientCredentials {
            authorization: None,
            form: vec![("client_secret", secret.expose().to_owned())],
        },
        (ClientAuth::PrivateKeyJwt(_), _) => ClientCredentials {
            authorization: None,
            form: assertion_params(cfg, clock, rng)?,
        },
    })
}

/// The client's credentials for one request: a header, form parameters, or both.
pub struct ClientCredentials {
    /// `Authorization` (client_secret_basic).
    pub authorization: Option<String>,
    /// Parameters to add to the form.
    pub form: Vec<(&'static str, String)>,
}

/// The platform a token-endpoint call uses: the IdP, and for an assertion the
/// time and randomness.
pub struct Caller<'a> {
    pub http: &'a dyn HttpClient,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Random,
}

/// The URL that sends the browser to the IdP with this login's parameters
/// in its query; with PAR the same query is the pushed form (`par`).
pub fn authorization_request(
    cfg: &Config,
    meta: &ProviderMetadata,
    txn: &LoginTransaction,
) -> Result<url::Url, OidcError> {
    let auth = AuthUrl::new(meta.authorization_endpoint.clone())
        .map_err(|_| OidcError::BadResponse("authorization_endpoint is not a URL".into()))?;
    let client = client(cfg, meta)?.set_auth_uri(auth);
    let state = txn.state.expose().to_owned();
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
        txn.pkce_verifier.expose().to_owned(),
    ));
    let mut request = client
        .authorize_url(move || CsrfToken::new(state))
        .add_scopes(txn.scope.split(' ').map(|s| Scope::new(s.to_owned())))
        .add_extra_param("nonce", txn.nonce.expose().to_owned())
        .set_pkce_challenge(challenge);
    // Without a consent prompt most IdPs (oidc-provider, Keycloak) ignore offline_access.
    if super::scope::contains(&txn.scope, "offline_access") {
        request = request.add_extra_param("prompt", "consent");
    }
    // RFC 9449 section 10: the code is bound to the session's key from the start.
    if let Some(binding) = &txn.dpop {
        request = request.add_extra_param("dpop_jkt", binding.jkt.clone());
    }
    Ok(request.url().0)
}

/// Sends a token, refresh or revocation request. `oauth2` reads the first
/// JSON value of the answer and ignores any bytes after it; an answer that is
/// not exactly one JSON value is malformed, so its body is replaced by one
/// that `oauth2` reports as a parse error (never a success).
fn send_with<'a>(
    http: &'a dyn HttpClient,
) -> impl Fn(HttpRequest) -> Result<HttpResponse, HttpError> + 'a {
    move |request| send_strict(http, request)
}

fn send_strict(http: &dyn HttpClient, request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let mut response = http.send(request)?;
    let body = response.body();
    if !body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        *response.body_mut() = b"not one JSON value".to_vec();
    }
    Ok(response)
}

/// What sends one token request for [`call_token_endpoint`].
type Sender<'s> = &'s dyn Fn(HttpRequest) -> Result<HttpResponse, HttpError>;
type Attempt = Result<OidcTokenResponse, RequestTokenError<HttpError, BasicErrorResponse>>;

/// Runs a code or refresh request: `attempt` builds it (with a fresh client
/// assertion each time; a key that does not parse is the configuration's
/// error) and sends it through the sender it is given. With
/// a DPoP key each attempt carries a fresh proof; a `use_dpop_nonce` answer
/// with a `DPoP-Nonce` gets one retry with that nonce (RFC 9449, section 8),
/// a second one is the IdP's error. The nonce is not kept: the next request
/// meets the challenge again, one round trip more, and nothing is written.
fn call_token_endpoint(
    caller: &Caller,
    meta: &ProviderMetadata,
    dpop: Option<&Es256Key>,
    attempt: impl Fn(Sender) -> Result<Attempt, OidcError>,
) -> Result<TokenSet, TokenError> {
    let Some(key) = dpop else {
        let send = send_with(caller.http);
        return into_token_set(attempt(&send)?.map_err(map_error)?, false);
    };
    let mut nonce: Option<String> = None;
    for retry in [false, true] {
        let what = ProofFor {
            method: "POST",
            url: &meta.token_endpoint,
            nonce: nonce.as_deref(),
            access_token: None,
        };
        let proof = dpop::proof(key, &what, caller.clock, caller.rng);
        let offered = RefCell::new(None);
        let send = |mut request: HttpRequest| {
            let value = http::HeaderValue::from_str(&proof)
                .map_err(|_| HttpError::Other("unsendable DPoP proof".into()))?;
            request.headers_mut().insert("dpop", value);
            let response = send_strict(caller.http, request)?;
            *offered.borrow_mut() = dpop::server_nonce(response.headers());
            Ok(response)
        };
        match attempt(&send)? {
            Err(RequestTokenError::ServerResponse(r)) if r.error().as_ref() == "use_dpop_nonce" => {
                match offered.into_inner() {
                    Some(fresh) if !retry => nonce = Some(fresh),
                    _ => break,
                }
            }
            other => return into_token_set(other.map_err(map_error)?, true),
        }
    }
    Err(TokenError::Failed(OidcError::BadResponse(
        "the token endpoint asked for a DPoP nonce again after the retry (use_dpop_nonce)".into(),
    )))
}

fn map_error(e: RequestTokenError<HttpError, BasicErrorResponse>) -> TokenError {
    match e {
        RequestTokenError::ServerResponse(r)
            if *r.error() == BasicErrorResponseType::InvalidGrant =>
        {
            TokenError::InvalidGrant
        }
        // The operator's to fix (secret, key or registration), so say so.
        RequestTokenError::ServerResponse(r)
            if *r.error() == BasicErrorResponseType::InvalidClient =>
        {
            TokenError::Failed(OidcError::BadResponse(
                "the token endpoint refused the client's credentials (invalid_client)".into(),
            ))
        }
        RequestTokenError::ServerResponse(r) => {
            TokenError::Failed(OidcError::BadResponse(format!(
                "the token endpoint refused: {}",
                crate::truncate::truncate(r.error().as_ref(), 40)
            )))
        }
        RequestTokenError::Request(e) => TokenError::Failed(OidcError::Transport(e)),
        RequestTokenError::Parse(..) => TokenError::Failed(OidcError::BadResponse(
            "the token response is malformed".into(),
        )),
        RequestTokenError::Other(_) => TokenError::Failed(OidcError::BadResponse(
            "unexpected token endpoint response".into(),
        )),
    }
}

/// The tokens, if their type is what was asked for: `DPoP` when a proof
/// went with the request (RFC 9449, section 5), else `Bearer`. A `Bearer`
/// answer to a DPoP request is an IdP that did not bind the token.
fn into_token_set(r: OidcTokenResponse, dpop: bool) -> Result<TokenSet, TokenError> {
    let type_ok = match r.token_type() {
        BasicTokenType::Extension(t) => dpop && t.eq_ignore_ascii_case("DPoP"),
        t => !dpop && *t == BasicTokenType::Bearer,
    };
    if !type_ok {
        let wanted = if dpop { "DPoP" } else { "Bearer" };
        return Err(TokenError::Failed(OidcError::BadResponse(format!(
            "the token type is not {wanted}"
        ))));
    }
    Ok(TokenSet {
        access_token: AccessToken::new(r.access_token().secret().clone()),
        refresh_token: r
            .refresh_token()
            .map(|t| RefreshToken::new(t.secret().clone())),
        id_token: r.extra_fields().id_token.clone(),
        expires_in: r
            .expires_in()
            .map(|d| d.as_secs().min(i64::MAX as u64) as i64),
        scope: r
            .scopes()
            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
    })
}

/// Exchanges the authorization code; only a verified callback can do this.
/// With `dpop`, the tokens are bound to that key.
pub fn exchange_code(
    caller: &Caller,
    cfg: &Config,
    meta: &ProviderMetadata,
    callback: &VerifiedCallback,
    dpop: Option<&Es256Key>,
) -> Result<TokenSet, TokenError> {
    let client = client(cfg, meta)?;
    call_token_endpoint(caller, meta, dpop, |send| {
        let mut request = client
            .exchange_code(AuthorizationCode::new(callback.code.expose().to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(
                callback.txn.pkce_verifier.expose().to_owned(),
            ));
        for (name, value) in assertion_params(cfg, caller.clock, caller.rng)? {
            request = request.add_extra_param(name, value);
        }
        Ok(request.request(&send))
    })
}

pub fn refresh(
    caller: &Caller,
    cfg: &Config,
    meta: &ProviderMetadata,
    refresh_token: &RefreshToken,
    dpop: Option<&Es256Key>,
) -> Result<TokenSet, TokenError> {
    let token = oauth2::RefreshToken::new(refresh_token.expose().to_owned());
    let client = client(cfg, meta)?;
    call_token_endpoint(caller, meta, dpop, |send| {
        let mut request = client.exchange_refresh_token(&token);
        for (name, value) in assertion_params(cfg, caller.clock, caller.rng)? {
            request = request.add_extra_param(name, value);
        }
        Ok(request.request(&send))
    })
}

/// Revokes a refresh token (RFC 7009), so an offline grant does not outlive logout.
pub fn revoke(
    caller: &Caller,
    cfg: &Config,
    meta: &ProviderMetadata,
    endpoint: &str,
    refresh_token: &RefreshToken,
) -> Result<(), OidcError> {
    let url = RevocationUrl::new(endpoint.to_owned())
        .map_err(|_| OidcError::BadResponse("revocation_endpoint is not a URL".into()))?;
    let token = StandardRevocableToken::RefreshToken(oauth2::RefreshToken::new(
        refresh_token.expose().to_owned(),
    ));
    let client = client(cfg, meta)?.set_revocation_url(url);
    let mut request = client
        .revoke_token(token)
        .map_err(|_| OidcError::BadResponse("cannot revoke this token".into()))?;
    for (name, value) in assertion_params(cfg, caller.clock, caller.rng)? {
        request = request.add_extra_param(name, value);
    }
    request
        .request(&send_with(caller.http))
        .map_err(|e| match e {
            RequestTokenError::Request(e) => OidcError::Transport(e),
            _ => OidcError::BadResponse("the revocation endpoint refused".into()),
        })
}
