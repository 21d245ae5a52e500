//! Settings, read from Spin variables and checked once per request.
//!
//! A missing or invalid setting is reported with the variable's name, so an
//! operator sees at once what to fix; the secret's value is never echoed.

use crate::client_key::{ClientPrivateKey, ConfiguredKey};
use crate::ports::Variables;
use crate::secret::ClientSecret;
use url::Url;

/// A setting that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The Spin variable to fix.
    pub variable: &'static str,
    /// What is wrong with it (never its value).
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "configuration variable `{}` {}; set it like `spin up --variable {}={}`",
            self.variable,
            self.problem,
            self.variable,
            example(self.variable)
        )
    }
}

/// A value that shows what each variable wants (the README's table has more).
fn example(variable: &str) -> &'static str {
    match variable {
        "client_id" => "client1",
        "client_secret" => "<the secret from the IdP's client credentials>",
        "token_endpoint_auth_method" => "private_key_jwt",
        "client_private_key" => "\"$(cat client-key.pem)\"",
        "oidc_issuer_url" => "https://keycloak.example.com/realms/demo",
        "oidc_idp_origin" => "https://keycloak.example.com",
        "client_base_url" => "http://127.0.0.1:3000",
        "client_title" => "'Confidential Client'",
        "pod_name" => "replica-1",
        "default_scope" => "'openid profile'",
        "session_idle_timeout" => "1800",
        "session_absolute_timeout" => "28800",
        "discovery_cache_ttl" => "300",
        "idp_timeout" => "10",
        "pushed_authorization_requests" => "always",
        "dpop" => "on",
        _ => "<value>",
    }
}

/// A way of authenticating at the token endpoint (OpenID Connect Core 9),
/// named as discovery's `token_endpoint_auth_methods_supported` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuthMethod {
    /// The client secret in HTTP Basic.
    SecretBasic,
    /// The client secret in the form.
    SecretPost,
    /// A JWT signed with the client's private key (RFC 7523).
    PrivateKeyJwt,
}

impl TokenAuthMethod {
    /// The method's registered name.
    pub fn name(self) -> &'static str {
        match self {
            TokenAuthMethod::SecretBasic => "client_secret_basic",
            TokenAuthMethod::SecretPost => "client_secret_post",
            TokenAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// The client's credential and how it is sent.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// The client secret; `fixed` is a secret method from
    /// `token_endpoint_auth_method`, or `None` to go by discovery.
    Secret {
        /// Our password at the IdP.
        secret: ClientSecret,
        /// `client_secret_basic` or `client_secret_post`, when chosen.
        fixed: Option<TokenAuthMethod>,
    },
    /// `private_key_jwt`: a fresh assertion signed with this key per request.
    /// Only cheaply checked here; see [`ClientAuth::signing_key`].
    PrivateKeyJwt(ConfiguredKey),
}

impl ClientAuth {
    /// The method the operator chose, if any (discovery must offer it).
    pub fn chosen(&self) -> Option<TokenAuthMethod> {
        match self {
            ClientAuth::Secret { fixed, .. } => *fixed,
            ClientAuth::PrivateKeyJwt(_) => Some(TokenAuthMethod::PrivateKeyJwt),
        }
    }

    /// The configured key, with `private_key_jwt`, as loaded (not parsed).
    pub fn private_key(&self) -> Option<&ConfiguredKey> {
        match self {
            ClientAuth::PrivateKeyJwt(key) => Some(key),
            ClientAuth::Secret { .. } => None,
        }
    }

    /// The key that signs assertions and whose public half `/jwks.json`
    /// serves, with `private_key_jwt`: fully parsed on the first call (a
    /// P-256 scalar multiplication, so never on the hot path), and a key
    /// that fails that parse is an error naming `client_private_key`.
    pub fn signing_key(&self) -> Option<Result<&ClientPrivateKey, ConfigError>> {
        self.private_key()
            .map(|key| key.key().map_err(|problem| invalid(PRIVATE_KEY, problem)))
    }
}

/// When `POST /login` pushes its parameters to the IdP (RFC 9126) instead of
/// sending them through the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushedAuthorization {
    /// When discovery names a `pushed_authorization_request_endpoint`.
    Auto,
    /// Always; an IdP without the endpoint is an error.
    Always,
    /// Never (an IdP that requires it is an error).
    Never,
}

/// The checked settings: what the whole component reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our client id at the IdP.
    pub client_id: String,
    /// How we prove who we are at the IdP's token endpoint.
    pub client_auth: ClientAuth,
    /// The issuer identifier exactly as configured (and as discovery must echo it).
    pub issuer: String,
    /// `scheme://host[:port]` that outbound calls are confined to.
    pub idp_origin: String,
    /// External base URL without a trailing slash.
    pub base_url: String,
    /// The title every page shows.
    pub client_title: String,
    /// Which replica answered, shown on every page.
    pub pod_name: String,
    /// The scope a login asks for unless the form says otherwise.
    pub default_scope: String,
    /// A session ends this long after its last recorded activity.
    pub session_idle_secs: i64,
    /// A session ends this long after login, whatever happens.
    pub session_absolute_secs: i64,
    /// How long the IdP's metadata and keys are cached.
    pub discovery_ttl_secs: i64,
    /// How long one call to the IdP may take (1 to 300 s).
    pub idp_timeout_secs: u64,
    /// `pushed_authorization_requests`: whether logins use PAR.
    pub pushed_authorization: PushedAuthorization,
    /// `dpop`: whether tokens are bound to a per-session key (RFC 9449).
    pub dpop: bool,
}

impl Config {
    /// Reads and checks every setting; the first problem found is the error.
    pub fn load(vars: &dyn Variables) -> Result<Config, ConfigError> {
        let client_id = required(vars, "client_id")?;
        check_printable("client_id", &client_id, 256)?;
        let client_auth = client_auth(vars)?;

        let issuer = required(vars, "oidc_issuer_url")?;
        let issuer_url = parse_http_url("oidc_issuer_url", &issuer)?;
        let idp_origin = required(vars, "oidc_idp_origin")?;
        let origin_url = parse_http_url("oidc_idp_origin", &idp_origin)?;
        if origin_url.path() != "/" {
            return Err(invalid(
                "oidc_idp_origin",
                "must be scheme://host[:port] without a path",
            ));
        }
        if origin_url.origin() != issuer_url.origin() {
            return Err(invalid(
                "oidc_idp_origin",
                "is not the origin of oidc_issuer_url",
            ));
        }

        let base = required(vars, "client_base_url")?;
        parse_http_url("client_base_url", &base)?;
        let base_url = base.trim_end_matches('/').to_owned();

        let client_title = optional(vars, "client_title", "Confidential Client")?;
        check_printable("client_title", &client_title, 200)?;
        let pod_name = optional(vars, "pod_name", "local")?;
        check_printable("pod_name", &pod_name, 253)?;
        let default_scope = optional(vars, "default_scope", "openid profile")?;
        crate::oidc::scope::normalize(&default_scope).map_err(|e| invalid("default_scope", &e))?;

        Ok(Config {
            client_id,
            client_auth,
            issuer: issuer.trim().to_owned(),
            idp_origin: origin_url.origin().ascii_serialization(),
            base_url,
            client_title,
            pod_name,
            default_scope,
            session_idle_secs: seconds(vars, "session_idle_timeout", 1800)?,
            session_absolute_secs: seconds(vars, "session_absolute_timeout", 28800)?,
            discovery_ttl_secs: seconds(vars, "discovery_cache_ttl", 300)?,
            idp_timeout_secs: idp_timeout(vars)?,
            pushed_authorization: choice(
                vars,
                "pushed_authorization_requests",
                &[
                    ("auto", PushedAuthorization::Auto),
                    ("always", PushedAuthorization::Always),
                    ("never", PushedAuthorization::Never),
                ],
                "must be auto, always or never",
            )?
            .unwrap_or(PushedAuthorization::Auto),
            dpop: choice(
                vars,
                "dpop",
                &[("on", true), ("off", false)],
                "must be on or off",
            )?
            .unwrap_or(false),
        })
    }

    /// Where the IdP sends the browser back after login.
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.base_url)
    }

    /// Where the IdP sends the browser after logging out there.
    pub fn post_logout_redirect_uri(&self) -> String {
        format!("{}/", self.base_url)
    }

    /// Cookies get `Secure` and the `__Host-` prefix when the app is served over https.
    pub fn https(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// The origin browsers send in `Origin` for our own forms.
    pub fn base_origin(&self) -> String {
        Url::parse(&self.base_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }
}

const PRIVATE_KEY: &str = "client_private_key";

/// `token_endpoint_auth_method` with the credential it needs: `client_secret`
/// for the secret methods (and when unset), `client_private_key` for
/// `private_key_jwt`; a key without that method is a mistake worth naming.
fn client_auth(vars: &dyn Variables) -> Result<ClientAuth, ConfigError> {
    const METHOD: &str = "token_endpoint_auth_method";
    const KEY: &str = PRIVATE_KEY;
    let method = match lookup(vars, METHOD)?.as_deref().map(str::trim) {
        None => None,
        Some("client_secret_basic") => Some(TokenAuthMethod::SecretBasic),
        Some("client_secret_post") => Some(TokenAuthMethod::SecretPost),
        Some("private_key_jwt") => Some(TokenAuthMethod::PrivateKeyJwt),
        Some(_) => {
            return Err(invalid(
                METHOD,
                "must be client_secret_basic, client_secret_post or private_key_jwt",
            ));
        }
    };
    let key = lookup(vars, KEY)?;
    if method == Some(TokenAuthMethod::PrivateKeyJwt) {
        let key = key.ok_or(ConfigError {
            variable: KEY,
            problem: "is not set (token_endpoint_auth_method is private_key_jwt)".into(),
        })?;
        if key.len() > 8192 {
            return Err(invalid(KEY, "is longer than 8192 bytes"));
        }
        // Cheap: loaded on every request, so the public key is not derived here.
        let key = ConfiguredKey::check(&key).map_err(|problem| invalid(KEY, &problem))?;
        return Ok(ClientAuth::PrivateKeyJwt(key));
    }
    if key.is_some() {
        return Err(invalid(
            METHOD,
            "is not private_key_jwt, yet client_private_key is set",
        ));
    }
    let secret = ClientSecret::new(required(vars, "client_secret")?);
    if secret.expose().len() > 1024 {
        return Err(invalid("client_secret", "is longer than 1024 bytes"));
    }
    Ok(ClientAuth::Secret {
        secret,
        fixed: method,
    })
}

/// One of a few named values (surrounding spaces ignored); unset is `None`.
fn choice<T: Copy>(
    vars: &dyn Variables,
    name: &'static str,
    values: &[(&str, T)],
    problem: &str,
) -> Result<Option<T>, ConfigError> {
    let Some(value) = lookup(vars, name)? else {
        return Ok(None);
    };
    match values.iter().find(|(n, _)| *n == value.trim()) {
        Some((_, v)) => Ok(Some(*v)),
        None => Err(invalid(name, problem)),
    }
}

fn lookup(vars: &dyn Variables, name: &'static str) -> Result<Option<String>, ConfigError> {
    match vars.get(name) {
        Ok(Some(v)) if !v.trim().is_empty() => Ok(Some(v)),
        Ok(_) => Ok(None),
        Err(e) => Err(invalid(name, &format!("could not be read ({e})"))),
    }
}

fn required(vars: &dyn Variables, name: &'static str) -> Result<String, ConfigError> {
    lookup(vars, name)?.ok_or(ConfigError {
        variable: name,
        problem: "is not set".into(),
    })
}

fn optional(
    vars: &dyn Variables,
    name: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    Ok(lookup(vars, name)?.unwrap_or_else(|| default.to_owned()))
}

fn seconds(vars: &dyn Variables, name: &'static str, default: i64) -> Result<i64, ConfigError> {
    match lookup(vars, name)? {
        None => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (1..=31_536_000).contains(&n) => Ok(n),
            _ => Err(invalid(
                name,
                "must be a whole number of seconds between 1 and 31536000",
            )),
        },
    }
}

/// The IdP timeout when `idp_timeout` is not set.
pub const DEFAULT_IDP_TIMEOUT_SECS: u64 = 10;
/// The longest IdP timeout accepted: a request waits at most twice this (the
/// token call and a key fetch), and a refresh holds its session's lock as long.
const MAX_IDP_TIMEOUT_SECS: u64 = 300;

/// `idp_timeout`: whole seconds, 1 to 300.
fn idp_timeout(vars: &dyn Variables) -> Result<u64, ConfigError> {
    match lookup(vars, "idp_timeout")? {
        None => Ok(DEFAULT_IDP_TIMEOUT_SECS),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if (1..=MAX_IDP_TIMEOUT_SECS).contains(&n) => Ok(n),
            _ => Err(invalid(
                "idp_timeout",
                "must be a whole number of seconds between 1 and 300",
            )),
        },
    }
}

fn invalid(variable: &'static str, problem: &str) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.to_owned(),
    }
}

fn check_printable(name: &'static str, value: &str, max: usize) -> Result<(), ConfigError> {
    if value.len() > max {
        return Err(invalid(name, &format!("is longer than {max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(name, "contains control characters"));
    }
    Ok(())
}

fn parse_http_url(name: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim()).map_err(|e| match e {
        // The component is built without Unicode host tables (Cargo.toml).
        url::ParseError::IdnaError => invalid(
            name,
            "has a non-ASCII host name; write it in its ASCII (xn--) form",
        ),
        _ => invalid(name, "is not an absolute URL"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(name, "must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(
            name,
            "must not contain credentials, a query or a fragment",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{config, vars};

    #[test]
    fn loads_with_defaults() {
        let c = config();
        assert_eq!(c.base_url, "https://app.example");
        assert_eq!(c.redirect_uri(), "https://app.example/callback");
        assert_eq!(c.post_logout_redirect_uri(), "https://app.example/");
        assert_eq!(c.client_title, "Confidential Client");
        assert_eq!(c.pod_name, "local");
        assert_eq!(c.default_scope, "openid profile");
        assert!(c.https());
        assert_eq!(c.base_origin(), "https://app.example");
        assert_eq!(c.idp_origin, "https://idp.example");
    }

    #[test]
    fn par_and_dpop_default_to_auto_and_off_and_name_bad_values() {
        let c = config();
        assert_eq!(c.pushed_authorization, PushedAuthorization::Auto);
        assert!(!c.dpop);
        let with = |name: &str, value: &str| {
            let mut v = vars();
            v.0.insert(name.into(), value.into());
            Config::load(&v)
        };
        assert_eq!(
            with("pushed_authorization_requests", " never ")
                .unwrap()
                .pushed_authorization,
            PushedAuthorization::Never
        );
        assert_eq!(
            with("pushed_authorization_requests", "always")
                .unwrap()
                .pushed_authorization,
            PushedAuthorization::Always
        );
        assert!(with("dpop", "on").unwrap().dpop);
        assert!(!with("dpop", "off").unwrap().dpop);
        for (name, value, problem) in [
            (
                "pushed_authorization_requests",
                "yes",
                "must be auto, always or never",
            ),
            ("dpop", "true", "must be on or off"),
        ] {
            let e = with(name, value).unwrap_err();
            assert_eq!((e.variable, e.problem.as_str()), (name, problem));
        }
    }

    #[test]
    fn a_non_ascii_host_asks_for_its_ascii_form() {
        let with_issuer = |url: &str| {
            let mut v = vars();
            v.0.insert("oidc_issuer_url".into(), url.into());
            let origin = url.split("/realms").next().unwrap();
            v.0.insert("oidc_idp_origin".into(), origin.into());
            Config::load(&v)
        };
        let e = with_issuer("https://bücher.example/realms/x").unwrap_err();
        assert_eq!(e.variable, "oidc_issuer_url");
        assert_eq!(
            e.problem,
            "has a non-ASCII host name; write it in its ASCII (xn--) form"
        );
        assert!(with_issuer("https://xn--bcher-kva.example/realms/x").is_ok());
    }

    #[test]
    fn missing_required_names_the_variable() {
        for name in [
            "client_id",
            "client_secret",
            "oidc_issuer_url",
            "oidc_idp_origin",
            "client_base_url",
        ] {
            let mut v = vars();
            v.0.remove(name);
            let err = Config::load(&v).unwrap_err();
            assert_eq!(err.variable, name);
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn rejects_invalid_values() {
        let cases = [
            ("oidc_issuer_url", "not a url"),
            ("oidc_issuer_url", "ftp://idp.example"),
            ("client_base_url", "https://app.example/?x=1"),
            ("oidc_idp_origin", "https://other.example"),
            ("oidc_idp_origin", "https://idp.example/realms"),
            ("session_idle_timeout", "-5"),
            ("session_absolute_timeout", "abc"),
            ("idp_timeout", "0"),
            ("idp_timeout", "301"),
            ("idp_timeout", "600"),
            ("idp_timeout", "ten"),
            ("default_scope", "profile email"),
            ("pod_name", "a\nb"),
        ];
        for (name, value) in cases {
            let mut v = vars();
            v.0.insert(name.to_owned(), value.to_owned());
            let err = Config::load(&v).unwrap_err();
            assert_eq!(err.variable, name, "{name}={value}");
        }
    }

    #[test]
    fn idp_timeout_defaults_to_10_and_accepts_1_to_300() {
        assert_eq!(config().idp_timeout_secs, 10);
        for (value, secs) in [("1", 1), ("300", 300), (" 45 ", 45)] {
            let mut v = vars();
            v.0.insert("idp_timeout".into(), value.into());
            assert_eq!(Config::load(&v).unwrap().idp_timeout_secs, secs, "{value}");
        }
        let mut v = vars();
        v.0.insert("idp_timeout".into(), "600".into());
        let err = Config::load(&v).unwrap_err().to_string();
        assert!(
            err.contains("idp_timeout") && err.contains("between 1 and 300"),
            "{err}"
        );
    }

    #[test]
    fn the_token_endpoint_auth_method_picks_the_credential() {
        assert!(matches!(
            config().client_auth,
            ClientAuth::Secret { fixed: None, .. }
        ));
        let mut v = vars();
        v.0.insert(
            "token_endpoint_auth_method".into(),
            "client_secret_post".into(),
        );
        assert_eq!(
            Config::load(&v).unwrap().client_auth.chosen(),
            Some(TokenAuthMethod::SecretPost)
        );
        v.0.insert(
            "token_endpoint_auth_method".into(),
            "private_key_jwt".into(),
        );
        v.0.insert(
            "client_private_key".into(),
            test_support::client_keys::P256_JWK.into(),
        );
        v.0.remove("client_secret");
        let c = Config::load(&v).unwrap();
        assert_eq!(c.client_auth.chosen(), Some(TokenAuthMethod::PrivateKeyJwt));
        assert!(c.client_auth.private_key().is_some());
        assert_eq!(
            c.client_auth.signing_key().unwrap().unwrap().kid(),
            test_support::client_keys::P256_THUMBPRINT
        );

        v.0.insert(
            "token_endpoint_auth_method".into(),
            "client_secret_jwt".into(),
        );
        let err = Config::load(&v).unwrap_err();
        assert_eq!(err.variable, "token_endpoint_auth_method");
        assert!(
            err.to_string()
                .contains("--variable token_endpoint_auth_method=private_key_jwt")
        );
    }

    #[test]
    fn a_key_error_names_client_private_key_and_never_echoes_it() {
        let mut v = vars();
        v.0.insert(
            "token_endpoint_auth_method".into(),
            "private_key_jwt".into(),
        );
        v.0.insert(
            "client_private_key".into(),
            test_support::client_keys::P384_JWK.into(),
        );
        let err = Config::load(&v).unwrap_err();
        assert_eq!(err.variable, "client_private_key");
        let shown = err.to_string();
        assert!(
            shown.contains("P-384") && !shown.contains("\"d\""),
            "{shown}"
        );
        v.0.insert("client_private_key".into(), "k".repeat(9000));
        assert!(!Config::load(&v).unwrap_err().to_string().contains("kkkk"));
    }

    #[test]
    fn loading_checks_the_key_cheaply_and_parses_it_only_when_used() {
        use test_support::client_keys::{P256_JWK, P256_PEM, P256_Y};
        let mut v = vars();
        v.0.remove("client_secret");
        v.0.insert(
            "token_endpoint_auth_method".into(),
            "private_key_jwt".into(),
        );
        for key in [P256_PEM, P256_JWK] {
            v.0.insert("client_private_key".into(), key.into());
            let c = Config::load(&v).unwrap();
            let configured = c.client_auth.private_key().unwrap();
            assert!(!configured.is_parsed(), "no public key derived at load");
            assert!(c.client_auth.signing_key().unwrap().is_ok());
            assert!(configured.is_parsed());
        }
        // A JWK whose x does not belong to its d passes the cheap check and
        // fails where the key is used, naming the variable.
        let mut jwk: serde_json::Value = serde_json::from_str(P256_JWK).unwrap();
        jwk["x"] = serde_json::json!(P256_Y);
        v.0.insert("client_private_key".into(), jwk.to_string());
        let c = Config::load(&v).unwrap();
        let err = c.client_auth.signing_key().unwrap().unwrap_err();
        assert_eq!(err.variable, "client_private_key");
        assert!(
            err.to_string()
                .contains("is a JWK whose `x` and `y` do not belong to its `d`"),
            "{err}"
        );
        assert!(!format!("{c:?}").contains("\"d\""));
    }

    #[test]
    fn error_never_contains_the_secret() {
        let mut v = vars();
        v.0.insert("client_secret".into(), "x".repeat(2000));
        let err = Config::load(&v).unwrap_err();
        assert!(!err.to_string().contains("xxxx"));
    }

    #[test]
    fn http_base_means_no_secure_cookies() {
        let mut v = vars();
        v.0.insert("client_base_url".into(), "http://127.0.0.1:3000".into());
        assert!(!Config::load(&v).unwrap().https());
    }
}
