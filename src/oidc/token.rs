//! The token endpoint (code exchange and refresh) and revocation, through the
//! `oauth2` crate over our own HTTP port, authenticating as configured: with
//! the client secret as discovery allows, or with a fresh `private_key_jwt`
//! assertion on every request (`oauth2` has no such method, so the assertion
//! rides as extra form parameters next to the `client_id` it sends).

use super::OidcError;
use super::discovery::ProviderMetadata;
use super::transaction::{LoginTransaction, VerifiedCallback};
use crate::config::{ClientAuth, Config, TokenAuthMethod};
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

/// The platform a token-endpoint call uses: the IdP, and for an assertion the
/// time and randomness.
pub struct Caller<'a> {
    pub http: &'a dyn HttpClient,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Random,
}

/// The URL that sends the browser to the IdP for this login transaction.
pub fn authorization_url(
    cfg: &Config,
    meta: &ProviderMetadata,
    txn: &LoginTransaction,
) -> Result<String, OidcError> {
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
    Ok(request.url().0.to_string())
}

/// Sends a token, refresh or revocation request. `oauth2` reads the first
/// JSON value of the answer and ignores any bytes after it; an answer that is
/// not exactly one JSON value is malformed, so its body is replaced by one
/// that `oauth2` reports as a parse error (never a success).
fn send_with<'a>(
    http: &'a dyn HttpClient,
) -> impl Fn(HttpRequest) -> Result<HttpResponse, HttpError> + 'a {
    move |request| {
        let mut response = http.send(request)?;
        let body = response.body();
        if !body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
            *response.body_mut() = b"not one JSON value".to_vec();
        }
        Ok(response)
    }
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

fn into_token_set(r: OidcTokenResponse) -> Result<TokenSet, TokenError> {
    if *r.token_type() != BasicTokenType::Bearer {
        return Err(TokenError::Failed(OidcError::BadResponse(
            "the token type is not Bearer".into(),
        )));
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
pub fn exchange_code(
    caller: &Caller,
    cfg: &Config,
    meta: &ProviderMetadata,
    callback: &VerifiedCallback,
) -> Result<TokenSet, TokenError> {
    let client = client(cfg, meta)?;
    let mut request = client
        .exchange_code(AuthorizationCode::new(callback.code.expose().to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(
            callback.txn.pkce_verifier.expose().to_owned(),
        ));
    for (name, value) in assertion_params(cfg, caller.clock, caller.rng)? {
        request = request.add_extra_param(name, value);
    }
    let response = request
        .request(&send_with(caller.http))
        .map_err(map_error)?;
    into_token_set(response)
}

pub fn refresh(
    caller: &Caller,
    cfg: &Config,
    meta: &ProviderMetadata,
    refresh_token: &RefreshToken,
) -> Result<TokenSet, TokenError> {
    let token = oauth2::RefreshToken::new(refresh_token.expose().to_owned());
    let client = client(cfg, meta)?;
    let mut request = client.exchange_refresh_token(&token);
    for (name, value) in assertion_params(cfg, caller.clock, caller.rng)? {
        request = request.add_extra_param(name, value);
    }
    let response = request
        .request(&send_with(caller.http))
        .map_err(map_error)?;
    into_token_set(response)
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
