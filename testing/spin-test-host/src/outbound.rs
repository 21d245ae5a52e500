//! `allowed_outbound_hosts`: parsed and matched like Spin, and enforced on
//! every outgoing `wasi:http` request, so a component that works here does
//! not fail on Spin for calling a host its manifest does not allow.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hyper::http;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::variables::AppVariables;

/// One `scheme://host[:port]` entry; `None` / `Any` stand for `*`.
#[derive(Debug, PartialEq)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, PartialEq)]
enum HostPattern {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    Subdomain(String),
    Exact(String),
    /// `self`: Spin's service chaining to the app itself (not supported here,
    /// so it matches nothing, as it matches no absolute URL in Spin either).
    ToSelf,
}

#[derive(Debug, PartialEq)]
enum PortPattern {
    Any,
    Port(u16),
    /// `a..b`, end excluded as in Spin.
    Range(u16, u16),
}

/// Spin's default ports for schemes it knows.
fn well_known_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "redis" => 6379,
        "postgres" => 5432,
        "mysql" => 3306,
        "mqtt" => 1883,
        _ => return None,
    })
}

impl AllowedHost {
    /// Parses one resolved entry with Spin's rules: a scheme is required, a
    /// missing port means the scheme's default, and a path is refused.
    fn parse(entry: &str) -> Result<Self> {
        let entry = entry.trim();
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("{entry:?} has no scheme: use <scheme>://<host>[:<port>] ('*' allowed in each)");
        };
        let (host, port_and_path) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match port_and_path.split_once('/') {
            Some((_, path)) if !path.is_empty() => {
                bail!("{entry:?} has a path, which is not allowed")
            }
            Some((port, _)) => port,
            None => port_and_path,
        };
        let scheme = match scheme {
            "*" => None,
            s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic()) => Some(s.to_owned()),
            s => bail!("{entry:?}: invalid scheme {s:?}"),
        };
        let host = HostPattern::parse(host).with_context(|| format!("in {entry:?}"))?;
        let port = match port {
            "*" => PortPattern::Any,
            "" => match scheme.as_deref().and_then(well_known_port) {
                Some(p) => PortPattern::Port(p),
                None => bail!("{entry:?} needs a port: its scheme has no default port"),
            },
            p => match p.split_once("..") {
                Some((a, b)) => PortPattern::Range(parse_port(a)?, parse_port(b)?),
                None => PortPattern::Port(parse_port(p)?),
            },
        };
        Ok(Self { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let port = port.or_else(|| well_known_port(scheme));
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Port(p) => port == Some(p),
            PortPattern::Range(a, b) => port.is_some_and(|p| (a..b).contains(&p)),
        };
        scheme_ok && port_ok && self.host.allows(host)
    }
}

fn parse_port(text: &str) -> Result<u16> {
    text.parse()
        .with_context(|| format!("port {text:?} is not a number"))
}

impl HostPattern {
    fn parse(host: &str) -> Result<Self> {
        let host = host.trim();
        if host == "*" {
            return Ok(Self::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(Self::ToSelf);
        }
        if host.split('/').nth(1).is_some_and(|path| !path.is_empty()) {
            bail!("hosts must not contain paths");
        }
        let host = host.trim_end_matches('/').to_ascii_lowercase();
        if host.is_empty() {
            bail!("empty host");
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                bail!("wildcards are allowed only as prefixes");
            }
            return Ok(Self::Subdomain(format!(".{domain}")));
        }
        if host.contains('*') {
            bail!("wildcards are allowed only as subdomains");
        }
        Ok(Self::Exact(host))
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self {
            Self::Any => true,
            Self::Subdomain(suffix) => host.ends_with(suffix.as_str()),
            Self::Exact(h) => *h == host,
            Self::ToSelf => false,
        }
    }
}

/// A component's resolved `allowed_outbound_hosts`.
#[derive(Debug, Default)]
pub struct AllowedHosts {
    hosts: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Resolves each entry as a template, then parses it.
    pub fn resolve(entries: &[String], vars: &AppVariables) -> Result<Self> {
        if entries.iter().any(|e| e == "insecure:allow-all") {
            bail!("'insecure:allow-all' is not allowed; use '*://*:*' to allow everything");
        }
        let hosts = entries
            .iter()
            .map(|entry| {
                let resolved = vars.render(entry)?;
                AllowedHost::parse(&resolved)
                    .with_context(|| format!("allowed_outbound_hosts entry {entry:?}"))
            })
            .collect::<Result<_>>()?;
        Ok(Self { hosts })
    }

    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        self.hosts.iter().any(|h| h.allows(scheme, host, port))
    }

    /// Whether an outgoing request's URI may be sent.
    fn allows_uri(&self, uri: &http::Uri) -> bool {
        match (uri.scheme_str(), uri.host()) {
            (Some(scheme), Some(host)) => self.allows(scheme, host, uri.port_u16()),
            _ => false,
        }
    }
}

/// The `wasi:http` hooks of one request's store: deny what the manifest does
/// not allow, otherwise send with wasmtime-wasi-http's default client, which
/// honours the guest's connect / first-byte / between-bytes timeouts.
pub struct OutboundHooks {
    pub allowed: Arc<AllowedHosts>,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        if !self.allowed.allows_uri(request.uri()) {
            // Scheme and authority only: a path or query may carry secrets.
            let uri = request.uri();
            eprintln!(
                "outbound request denied: {}://{} is not in allowed_outbound_hosts",
                uri.scheme_str().unwrap_or("?"),
                uri.authority().map(|a| a.as_str()).unwrap_or("?"),
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::manifest::VariableDecl;

    fn host(entry: &str) -> AllowedHost {
        AllowedHost::parse(entry).unwrap()
    }

    #[test]
    fn parses_like_spin() {
        assert_eq!(
            host("https://kc.example.com"),
            AllowedHost {
                scheme: Some("https".into()),
                host: HostPattern::Exact("kc.example.com".into()),
                port: PortPattern::Port(443),
            }
        );
        assert_eq!(host("http://localhost:8080/").port, PortPattern::Port(8080));
        assert_eq!(host("*://*:*").scheme, None);
        assert_eq!(host("*://*:*").host, HostPattern::Any);
        assert_eq!(
            host("https://*.example.com").host,
            HostPattern::Subdomain(".example.com".into())
        );
        assert_eq!(
            host("http://[::1]:9000").host,
            HostPattern::Exact("[::1]".into())
        );
        assert_eq!(
            host("http://h:8000..8100").port,
            PortPattern::Range(8000, 8100)
        );
    }

    #[test]
    fn rejects_bad_entries() {
        for bad in [
            "https://example.com/path",
            "https://example.com:443/path",
            "example.com",
            "*",
            "ftp://example.com",
            "https://ex*ample.com",
            "https://*.ex*.com",
            "https://example.com:http",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_scheme_host_and_port() {
        let h = host("https://kc.example.com");
        assert!(h.allows("https", "kc.example.com", None));
        assert!(h.allows("https", "KC.example.com", Some(443)));
        assert!(!h.allows("http", "kc.example.com", None));
        assert!(!h.allows("https", "kc.example.com", Some(8443)));
        assert!(!h.allows("https", "evil.com", None));
        assert!(!h.allows("https", "xkc.example.com", None));

        let sub = host("http://*.example.com:*");
        assert!(sub.allows("http", "a.b.example.com", Some(1234)));
        assert!(!sub.allows("http", "example.com", Some(80)));

        let range = host("http://127.0.0.1:8000..8002");
        assert!(range.allows("http", "127.0.0.1", Some(8001)));
        assert!(!range.allows("http", "127.0.0.1", Some(8002)));

        assert!(!host("http://self").allows("http", "self", None));
    }

    #[test]
    fn templated_entry_is_resolved_then_parsed() {
        let mut decls = BTreeMap::new();
        decls.insert(
            "idp_origin".to_string(),
            VariableDecl {
                required: true,
                ..Default::default()
            },
        );
        let vars = AppVariables::resolve(&decls, |_| Some("http://127.0.0.1:8181".into())).unwrap();
        let allowed = AllowedHosts::resolve(&["{{ idp_origin }}".into()], &vars).unwrap();
        assert!(allowed.allows("http", "127.0.0.1", Some(8181)));
        assert!(!allowed.allows("http", "127.0.0.1", Some(8182)));
        assert!(!allowed.allows("https", "127.0.0.1", Some(8181)));

        let vars = AppVariables::resolve(&decls, |_| Some("http://idp/realms/x".into())).unwrap();
        let err = AllowedHosts::resolve(&["{{ idp_origin }}".into()], &vars).unwrap_err();
        assert!(format!("{err:#}").contains("path"), "{err:#}");
    }

    #[test]
    fn no_entries_allow_nothing() {
        let allowed = AllowedHosts::default();
        assert!(!allowed.allows("https", "example.com", None));
        assert!(
            AllowedHosts::resolve(
                &["insecure:allow-all".into()],
                &AppVariables::resolve(&BTreeMap::new(), |_| None).unwrap()
            )
            .is_err()
        );
    }

    /// The hook refuses a denied request before any connection, and passes an
    /// allowed one to the real client (checked against a local listener).
    #[tokio::test]
    async fn hook_denies_or_sends() {
        use http_body_util::{BodyExt, Empty};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                .await;
        });

        let allowed = AllowedHosts {
            hosts: vec![host(&format!("http://127.0.0.1:{port}"))],
        };
        let mut hooks = OutboundHooks {
            allowed: Arc::new(allowed),
        };
        let request = |uri: String| {
            let body: WasiBody = Empty::new().map_err(|never| match never {}).boxed_unsync();
            http::Request::get(uri).body(body).unwrap()
        };
        let no_io = || -> Box<dyn Future<Output = Result<(), HttpError>> + Send> {
            Box::new(async { Ok(()) })
        };

        let denied = Box::into_pin(hooks.send_request(
            request(format!("http://127.0.0.1:{}/x", port.wrapping_add(1))),
            None,
            no_io(),
        ))
        .await;
        assert!(matches!(denied, Err(HttpError::HttpRequestDenied)));

        let sent = Box::into_pin(hooks.send_request(
            request(format!("http://127.0.0.1:{port}/x")),
            None,
            no_io(),
        ))
        .await;
        let (response, _io) = sent.unwrap_or_else(|e| panic!("allowed request failed: {e}"));
        assert_eq!(response.status(), 204);
    }
}
