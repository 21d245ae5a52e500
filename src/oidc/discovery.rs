//! OpenID Provider discovery, cached in the key-value store for a bounded time.
//!
//! Discovery whose `issuer` is not exactly the configured issuer is refused
//! (OpenID Connect Discovery 1.0, section 4.3), and the endpoints the component
//! calls server-side must sit on the configured IdP origin.

use super::cache::{Record, get_json, set_json};
use super::{OidcError, fetch_json};
use crate::config::{Config, TokenAuthMethod};
use crate::ports::KeyValue;
use crate::ports::{Clock, HttpClient};
use serde::{Deserialize, Serialize};
use url::Url;

/// The IdP's metadata (OpenID Connect Discovery 1.0), as far as we use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    /// Must equal the configured issuer.
    pub issuer: String,
    /// Where the browser logs in.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens become tokens.
    pub token_endpoint: String,
    /// The IdP's signing keys.
    pub jwks_uri: String,
    /// Claims about the user, cross-checked at login.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// RP-initiated logout.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// RFC 7009: where refresh tokens are revoked at logout.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// How the IdP accepts our client secret.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// PKCE methods; `S256` must be among them when listed.
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Whether the IdP sends back-channel logout tokens.
    #[serde(default)]
    pub backchannel_logout_supported: Option<bool>,
    /// RFC 9207: the IdP promises an `iss` parameter on every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// RFC 9126: where authorization parameters are pushed.
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// RFC 9126: the IdP takes no authorization request that was not pushed.
    #[serde(default)]
    pub require_pushed_authorization_requests: Option<bool>,
    /// RFC 9449: the proof algorithms the IdP accepts; ES256 must be among
    /// them, when listed, for `dpop = on`.
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
}

impl ProviderMetadata {
    /// The operator's method when the IdP offers it (or does not say);
    /// without one, client_secret_basic when offered (the spec's default when
    /// the list is absent), else client_secret_post.
    pub fn client_auth(
        &self,
        chosen: Option<TokenAuthMethod>,
    ) -> Result<TokenAuthMethod, OidcError> {
        let offered = self.token_endpoint_auth_methods_supported.as_deref();
        let offers = |m: TokenAuthMethod| offered.is_none_or(|o| o.iter().any(|n| n == m.name()));
        match chosen {
            Some(m) if offers(m) => Ok(m),
            Some(m) => Err(OidcError::BadResponse(format!(
                "the token endpoint does not offer {} (token_endpoint_auth_method)",
                m.name()
            ))),
            None if offered.is_none() || offers(TokenAuthMethod::SecretBasic) => {
                Ok(TokenAuthMethod::SecretBasic)
            }
            None if offers(TokenAuthMethod::SecretPost) => Ok(TokenAuthMethod::SecretPost),
            None => Err(OidcError::BadResponse(
                "the token endpoint supports neither client_secret_basic nor client_secret_post"
                    .into(),
            )),
        }
    }
}

/// Parses and checks a discovery document against the configuration.
pub fn parse(doc: serde_json::Value, cfg: &Config) -> Result<ProviderMetadata, OidcError> {
    let meta: ProviderMetadata = serde_json::from_value(doc)
        .map_err(|_| OidcError::BadResponse("discovery lacks required fields".into()))?;
    if meta.issuer != cfg.issuer {
        return Err(OidcError::BadResponse(format!(
            "discovery names issuer `{}`, not the configured `{}`",
            crate::truncate::truncate(&meta.issuer, 120),
            cfg.issuer
        )));
    }
    let browser_scheme_ok = |u: &Url| {
        u.scheme() == "https" || (u.scheme() == "http" && cfg.issuer.starts_with("http://"))
    };
    for (name, value) in [
        ("authorization_endpoint", Some(&meta.authorization_endpoint)),
        ("end_session_endpoint", meta.end_session_endpoint.as_ref()),
    ] {
        if let Some(v) = value {
            let url = Url::parse(v)
                .map_err(|_| OidcError::BadResponse(format!("{name} is not a URL")))?;
            if !browser_scheme_ok(&url) || url.fragment().is_some() {
                return Err(OidcError::BadResponse(format!(
                    "{name} is not an acceptable URL"
                )));
            }
        }
    }
    for (name, value) in [
        ("token_endpoint", Some(&meta.token_endpoint)),
        ("jwks_uri", Some(&meta.jwks_uri)),
        ("userinfo_endpoint", meta.userinfo_endpoint.as_ref()),
        ("revocation_endpoint", meta.revocation_endpoint.as_ref()),
        (
            "pushed_authorization_request_endpoint",
            meta.pushed_authorization_request_endpoint.as_ref(),
        ),
    ] {
        if let Some(v) = value {
            let url = Url::parse(v)
                .map_err(|_| OidcError::BadResponse(format!("{name} is not a URL")))?;
            if url.origin().ascii_serialization() != cfg.idp_origin || url.fragment().is_some() {
                return Err(OidcError::BadResponse(format!(
                    "{name} is not on the configured oidc_idp_origin"
                )));
            }
        }
    }
    if let Some(methods) = &meta.code_challenge_methods_supported
        && !methods.iter().any(|m| m == "S256")
    {
        return Err(OidcError::BadResponse(
            "the IdP does not support PKCE S256".into(),
        ));
    }
    if cfg.dpop
        && let Some(algs) = &meta.dpop_signing_alg_values_supported
        && !algs.iter().any(|a| a == "ES256")
    {
        return Err(OidcError::BadResponse(
            "the IdP does not accept ES256 DPoP proofs (dpop_signing_alg_values_supported)".into(),
        ));
    }
    meta.client_auth(cfg.client_auth.chosen())?;
    Ok(meta)
}

#[derive(Serialize, Deserialize)]
struct Cached {
    fetched_at: i64,
    metadata: ProviderMetadata,
}

/// The issuer's `/.well-known/openid-configuration`.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Returns the provider metadata, from the cache while it is fresh.
pub fn load(
    kv: &dyn KeyValue,
    http: &dyn HttpClient,
    clock: &dyn Clock,
    cfg: &Config,
) -> Result<ProviderMetadata, OidcError> {
    let now = clock.now();
    if let Record::Found(c) = get_json::<Cached>(kv, crate::keys::DISCOVERY)? {
        let age = now - c.fetched_at;
        if (0..cfg.discovery_ttl_secs).contains(&age) && c.metadata.issuer == cfg.issuer {
            return Ok(c.metadata);
        }
    }
    let doc = fetch_json(http, &discovery_url(&cfg.issuer), "discovery")?;
    let metadata = parse(doc, cfg)?;
    set_json(
        kv,
        crate::keys::DISCOVERY,
        &Cached {
            fetched_at: now,
            metadata: metadata.clone(),
        },
    )?;
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryStore;
    use crate::testing::config;
    use crate::testing::{FakeHttp, FixedClock, json_response};
    use serde_json::json;

    pub fn doc() -> serde_json::Value {
        json!({
            "issuer": "https://idp.example/realms/demo",
            "authorization_endpoint": "https://idp.example/realms/demo/auth",
            "token_endpoint": "https://idp.example/realms/demo/token",
            "jwks_uri": "https://idp.example/realms/demo/jwks",
            "userinfo_endpoint": "https://idp.example/realms/demo/userinfo",
            "end_session_endpoint": "https://idp.example/realms/demo/logout",
            "code_challenge_methods_supported": ["S256"],
        })
    }

    #[test]
    fn parses_a_good_document() {
        let m = parse(doc(), &config()).unwrap();
        assert_eq!(m.token_endpoint, "https://idp.example/realms/demo/token");
        assert_eq!(m.client_auth(None).unwrap(), TokenAuthMethod::SecretBasic);
    }

    fn rejected(mutate: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut d = doc();
        mutate(&mut d);
        match parse(d, &config()) {
            Err(OidcError::BadResponse(why)) => why,
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    #[test]
    fn refuses_issuer_mismatch() {
        for issuer in [
            "https://evil.example/realms/demo",
            "https://idp.example/realms/demo/",
        ] {
            assert_eq!(
                rejected(|d| d["issuer"] = json!(issuer)),
                format!(
                    "discovery names issuer `{issuer}`, not the configured `https://idp.example/realms/demo`"
                )
            );
        }
    }

    #[test]
    fn refuses_missing_or_foreign_endpoints() {
        type Case = (&'static str, fn(&mut serde_json::Value));
        let cases: [Case; 7] = [
            ("discovery lacks required fields", |d| {
                d.as_object_mut().unwrap().remove("token_endpoint");
            }),
            ("token_endpoint is not on the configured oidc_idp_origin", |d| {
                d["token_endpoint"] = json!("https://evil.example/token")
            }),
            ("jwks_uri is not a URL", |d| d["jwks_uri"] = json!("not a url")),
            ("authorization_endpoint is not an acceptable URL", |d| {
                d["authorization_endpoint"] = json!("javascript:alert(1)")
            }),
            ("authorization_endpoint is not an acceptable URL", |d| {
                d["authorization_endpoint"] = json!("http://idp.example/auth")
            }),
            ("the IdP does not support PKCE S256", |d| {
                d["code_challenge_methods_supported"] = json!(["plain"])
            }),
            (
                "the token endpoint supports neither client_secret_basic nor client_secret_post",
                |d| d["token_endpoint_auth_methods_supported"] = json!(["private_key_jwt"]),
            ),
        ];
        for (reason, mutate) in cases {
            assert_eq!(rejected(mutate), reason);
        }
    }

    #[test]
    fn picks_client_secret_post_when_basic_is_absent() {
        let mut d = doc();
        d["token_endpoint_auth_methods_supported"] = json!(["client_secret_post"]);
        assert_eq!(
            parse(d, &config()).unwrap().client_auth(None).unwrap(),
            TokenAuthMethod::SecretPost
        );
    }

    #[test]
    fn a_chosen_method_must_be_offered_when_the_idp_lists_methods() {
        use TokenAuthMethod::*;
        let mut m = parse(doc(), &config()).unwrap();
        // No list: the operator's choice stands.
        assert_eq!(m.client_auth(Some(PrivateKeyJwt)).unwrap(), PrivateKeyJwt);
        m.token_endpoint_auth_methods_supported =
            Some(vec!["client_secret_basic".into(), "private_key_jwt".into()]);
        assert_eq!(m.client_auth(Some(PrivateKeyJwt)).unwrap(), PrivateKeyJwt);
        assert_eq!(m.client_auth(None).unwrap(), SecretBasic);
        assert_eq!(
            m.client_auth(Some(SecretPost)).unwrap_err(),
            OidcError::BadResponse(
                "the token endpoint does not offer client_secret_post (token_endpoint_auth_method)"
                    .into()
            )
        );
    }

    #[test]
    fn caches_for_the_configured_time() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let http = FakeHttp::new(|req| {
            assert_eq!(
                req.uri(),
                "https://idp.example/realms/demo/.well-known/openid-configuration"
            );
            json_response(200, &doc())
        });
        let cfg = config();
        load(&kv, &http, &clock, &cfg).unwrap();
        load(&kv, &http, &clock, &cfg).unwrap();
        assert_eq!(http.calls_to("openid-configuration"), 1);
        clock.advance(cfg.discovery_ttl_secs);
        load(&kv, &http, &clock, &cfg).unwrap();
        assert_eq!(http.calls_to("openid-configuration"), 2);
    }

    #[test]
    fn garbage_and_errors_are_bad_gateway_and_not_cached() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        for (resp, reason) in [
            (
                Ok(http::Response::builder()
                    .status(200)
                    .body(b"<html>".to_vec())
                    .unwrap()),
                "discovery is not a JSON object",
            ),
            (
                json_response(500, &json!({})),
                "discovery answered HTTP 500",
            ),
            (
                json_response(200, &json!([1, 2])),
                "discovery is not a JSON object",
            ),
            (
                json_response(200, &json!({"issuer": 5})),
                "discovery lacks required fields",
            ),
        ] {
            let http = FakeHttp::new(move |_| resp.clone());
            assert_eq!(
                load(&kv, &http, &clock, &config()),
                Err(OidcError::BadResponse(reason.into()))
            );
        }
        assert!(kv.snapshot().is_empty());
    }

    #[test]
    fn corrupt_cache_is_refetched() {
        let kv = MemoryStore::new();
        kv.set(crate::keys::DISCOVERY, b"garbage").unwrap();
        let http = FakeHttp::new(|_| json_response(200, &doc()));
        load(&kv, &http, &FixedClock::at(5), &config()).unwrap();
        assert_eq!(http.calls_to("openid-configuration"), 1);
    }
}
