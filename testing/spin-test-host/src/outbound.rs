//! Outbound `wasi:http` as Spin does it: `allowed_outbound_hosts` parsed and
//! matched with Spin's rules (schemes, hosts with wildcard subdomains, ports
//! with defaults and ranges, CIDR ranges), templates in it resolved for each
//! request rather than at start-up, and requests sent through one pooled
//! hyper-util client per app, which frames a body without `Content-Length`
//! with chunked transfer coding.
//!
//! The rules are reproduced from Spin 3.6 / 4.0:
//! - crates/outbound-networking-config/src/allowed_hosts.rs: the grammar of an
//!   entry, its errors, and how a URL is matched;
//! - crates/loader/src/local.rs (`load_component`): what `spin up` checks at
//!   start-up (literal entries, and templates whose variables all have
//!   defaults, resolved with those defaults);
//! - crates/factor-outbound-networking/src/lib.rs (`prepare`): templates are
//!   resolved again for every instance, i.e. every request, and a failure there
//!   denies that instance's requests instead of stopping the app;
//! - crates/factor-outbound-http/src/wasi.rs (`prepare_request`,
//!   `send_request`, `HttpClients`, `ConnectOptions`): the order of the checks,
//!   the pooled clients, connect / first-byte timeouts and error codes.
//!
//! This file uses nothing else from the crate, so the contract tests include
//! it as it is (`tests/spin_contract_outbound.rs`).

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::http::{self, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

// ---------------------------------------------------------------------------
// One `allowed_outbound_hosts` entry
// ---------------------------------------------------------------------------

/// One parsed entry: `<scheme>://<host>[:<port>]`, `*` allowed in each part.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedHost {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq)]
enum SchemePattern {
    Any,
    /// Compared as written: Spin does not lower-case it, so `HTTP://...`
    /// never matches a URL (whose scheme is always lower case).
    Exact(String),
}

#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    Any,
    /// `*.example.com`, kept as the suffix `.example.com`, exactly as written
    /// (not lower-cased); it matches domain names only, never the bare domain.
    Subdomain(String),
    /// `self` / `self.alt`: requests to the app itself (relative URLs).
    ToSelf,
    /// A name or an IP address, normalised like a URL host (lower case,
    /// IDNA, `[v6]`), so it is compared as a host rather than as text.
    Literal(url::Host),
    /// `a.b.c.d/n` or `v6/n`; host bits are cleared as in Spin.
    Cidr(Cidr),
}

#[derive(Debug, Clone, PartialEq)]
enum PortPattern {
    Any,
    Port(u16),
    /// `a..b`: `b` excluded.
    Range(Range<u16>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `address/prefix`, host bits truncated (Spin uses ip_network's
    /// `IpNetwork::from_str_truncate`): a bare address is not a CIDR.
    fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = text.split_once('/')?;
        let address: IpAddr = address.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let network = match address {
            IpAddr::V4(v4) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            _ => return None,
        };
        Some(Self { network, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

/// The default port Spin knows for a scheme; an entry without a port and
/// with any other scheme (including `*`) is refused.
fn default_port(scheme: &str) -> Option<u16> {
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
    /// Parses one (resolved) entry with Spin's grammar
    /// (crates/outbound-networking-config/src/allowed_hosts.rs,
    /// `AllowedHostConfig::parse`): the scheme is what precedes `://`; the
    /// port is what follows the *last* `:` (so `http://[::1]` is refused: its
    /// "port" would be `1]`); a single trailing `/` is allowed, a path is not.
    /// The port is checked first, then the scheme, then the host.
    pub fn parse(entry: &str) -> Result<Self> {
        let entry = entry.trim();
        let Some((scheme, rest)) = entry.split_once("://") else {
            if matches!(entry, "" | "*" | ":" | "?") {
                bail!(
                    "{entry:?} is not an allowed outbound host: write <scheme>://<host>[:<port>], \
                     each part may be '*' ('*://*:*' turns the sandbox off)"
                );
            }
            bail!("{entry:?} has no scheme (such as 'https://' or '*://')");
        };
        let (host, after_colon) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match after_colon.split_once('/') {
            Some((_, path)) if !path.is_empty() => {
                bail!("{entry:?} has a path; an allowed host may not")
            }
            Some((port, _)) => port,
            None => after_colon,
        };
        let port = PortPattern::parse(port, scheme)
            .with_context(|| format!("{entry:?}: bad port {port:?}"))?;
        let scheme = SchemePattern::parse(scheme)
            .with_context(|| format!("{entry:?}: bad scheme {scheme:?}"))?;
        let host =
            HostPattern::parse(host).with_context(|| format!("{entry:?}: bad host {host:?}"))?;
        Ok(Self { scheme, host, port })
    }

    fn allows(&self, url: &OutboundUrl) -> bool {
        self.scheme.allows(&url.scheme)
            && self.host.allows(&url.host)
            && self.port.allows(url.port, &url.scheme)
    }

    fn allows_relative(&self, schemes: &[&str]) -> bool {
        schemes.iter().any(|s| self.scheme.allows(s))
            && matches!(self.host, HostPattern::Any | HostPattern::ToSelf)
    }
}

impl SchemePattern {
    fn parse(scheme: &str) -> Result<Self> {
        if scheme == "*" {
            return Ok(Self::Any);
        }
        if scheme.starts_with('{') {
            bail!("lists of schemes are not supported");
        }
        // Unicode letters pass, as in Spin (`char::is_alphabetic`), and so
        // does an empty scheme (which then needs an explicit port).
        if !scheme.chars().all(char::is_alphabetic) {
            bail!("a scheme may only contain letters");
        }
        Ok(Self::Exact(scheme.to_owned()))
    }

    fn allows(&self, scheme: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(s) => s == scheme,
        }
    }
}

impl HostPattern {
    fn parse(host: &str) -> Result<Self> {
        let host = host.trim();
        match host {
            "*" => return Ok(Self::Any),
            "self" | "self.alt" => return Ok(Self::ToSelf),
            _ => {}
        }
        if host.starts_with('{') {
            if !host.ends_with('}') {
                bail!("unterminated '{{'");
            }
            bail!("lists of hosts are not supported");
        }
        if let Some(cidr) = Cidr::parse(host) {
            return Ok(Self::Cidr(cidr));
        }
        let host = host.trim_end_matches('/');
        if host.contains('/') {
            bail!("a host may not have a path");
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                bail!("'*' may only be the first label");
            }
            return Ok(Self::Subdomain(format!(".{domain}")));
        }
        if host.contains('*') {
            bail!("'*' may only stand for subdomains ('*.example.com')");
        }
        Ok(Self::Literal(url::Host::parse(host)?))
    }

    /// `host` is a URL's host as the `url` crate serialises it.
    fn allows(&self, host: &str) -> bool {
        let Ok(host) = url::Host::parse(host) else {
            return false;
        };
        match (self, host) {
            (Self::Any, _) => true,
            (Self::Subdomain(suffix), url::Host::Domain(domain)) => {
                domain.ends_with(suffix.as_str())
            }
            (Self::Literal(literal), host) => *literal == host,
            (Self::Cidr(cidr), url::Host::Ipv4(ip)) => cidr.contains(ip.into()),
            (Self::Cidr(cidr), url::Host::Ipv6(ip)) => cidr.contains(ip.into()),
            // Relative requests are checked with `allows_relative`.
            (Self::ToSelf | Self::Subdomain(_) | Self::Cidr(_), _) => false,
        }
    }
}

impl PortPattern {
    fn parse(port: &str, scheme: &str) -> Result<Self> {
        if port.is_empty() {
            let Some(default) = default_port(scheme) else {
                bail!("no port, and scheme {scheme:?} has no default port");
            };
            return Ok(Self::Port(default));
        }
        if port == "*" {
            return Ok(Self::Any);
        }
        if port.starts_with('{') {
            bail!("lists of ports are not supported");
        }
        if let Some((start, end)) = port.split_once("..") {
            let number = |text: &str| {
                text.parse::<u16>().map_err(|_| {
                    anyhow!("the range {port:?} has a bound that is not a port number")
                })
            };
            return Ok(Self::Range(number(start)?..number(end)?));
        }
        port.parse()
            .map(Self::Port)
            .map_err(|_| anyhow!("{port:?} is not a port number"))
    }

    /// A URL without a port is on its scheme's default port; one whose scheme
    /// has none matches only `*`.
    fn allows(&self, port: Option<u16>, scheme: &str) -> bool {
        let Some(port) = port.or_else(|| default_port(scheme)) else {
            return matches!(self, Self::Any);
        };
        match self {
            Self::Any => true,
            Self::Port(p) => *p == port,
            Self::Range(r) => r.contains(&port),
        }
    }
}

// ---------------------------------------------------------------------------
// The URL of an outgoing request, as Spin reads it for the check
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct OutboundUrl {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl OutboundUrl {
    /// Parses `url` with the `url` crate (so a default port reads as none,
    /// a host is lower-cased...); a userinfo part is percent-encoded first; if
    /// that fails or has no host, `{default_scheme}://` is put in front and
    /// it is tried again (Spin's `OutboundUrl::parse`).
    fn parse(url: &str, default_scheme: &str) -> Result<Self> {
        let url = encode_userinfo(url);
        let parsed = match url::Url::parse(&url) {
            Ok(parsed) if parsed.has_host() => parsed,
            first => match url::Url::parse(&format!("{default_scheme}://{url}")) {
                Ok(parsed) => parsed,
                Err(second) => return Err(first.err().map_or(second, |e| e).into()),
            },
        };
        Ok(Self {
            scheme: parsed.scheme().to_owned(),
            host: parsed
                .host_str()
                .with_context(|| format!("{url:?} has no host"))?
                .to_owned(),
            port: parsed.port(),
        })
    }

    fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Percent-encodes what precedes an `@` in the authority (every byte but
/// ASCII letters, digits and `-._~`), so a password with `#` or `/` in it
/// does not derail the parse.
fn encode_userinfo(url: &str) -> String {
    let Some(at) = url.find('@') else {
        return url.to_owned();
    };
    let start = url.find("://").map_or(0, |i| i + 3);
    let path = url[start..].find('/').map_or(usize::MAX, |i| i + start);
    if at >= path || at < start {
        return url.to_owned();
    }
    let mut out = String::with_capacity(url.len() + 8);
    out.push_str(&url[..start]);
    for b in url[start..at].bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str(&url[at..]);
    out
}

// ---------------------------------------------------------------------------
// Templates: `{{ name }}` in an entry
// ---------------------------------------------------------------------------

/// One piece of an entry: text, or the name inside `{{ }}`.
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Splits an entry the way Spin's templates do (crates/expressions/src/
/// template.rs): `{{` opens an expression up to the next `}}`; an unmatched
/// `{{` is an error; there are no escapes.
fn pieces(entry: &str) -> Result<Vec<Piece<'_>>> {
    let mut out = Vec::new();
    let mut rest = entry;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            let (name, tail) = after
                .split_once("}}")
                .with_context(|| format!("{entry:?}: '{{{{' without '}}}}'"))?;
            out.push(Piece::Var(name.trim()));
            rest = tail;
        } else {
            let end = rest.find("{{").unwrap_or(rest.len());
            out.push(Piece::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Ok(out)
}

/// Renders a template with `value`; `None` when some variable has no value.
fn render(pieces: &[Piece<'_>], value: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Var(name) => out.push_str(&value(name)?),
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// A component's `allowed_outbound_hosts`
// ---------------------------------------------------------------------------

/// Renders a template with the variables' current values (for each request).
pub type ResolveTemplate = Arc<dyn Fn(&str) -> Result<String> + Send + Sync>;

enum Entry {
    Literal(AllowedHost),
    Template(String),
}

/// A component's `allowed_outbound_hosts` as `spin up` holds it after
/// start-up: literal entries parsed, templates kept for each request.
pub struct AllowedHosts {
    entries: Vec<Entry>,
    resolve: ResolveTemplate,
}

impl Default for AllowedHosts {
    /// No entry: nothing allowed.
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            resolve: Arc::new(|t| Ok(t.to_owned())),
        }
    }
}

impl fmt::Debug for AllowedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllowedHosts")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl AllowedHosts {
    /// What `spin up` checks before it serves (crates/loader/src/local.rs,
    /// `load_component`, with `AllowedHostsConfig::validate`): the list
    /// `["insecure:allow-all"]` is refused; every entry must be a well-formed
    /// template; a literal entry must parse; a template whose variables all
    /// have defaults (`default_value`) must parse once rendered with those
    /// defaults. Any other template, such as one naming a required variable,
    /// is not checked until a request is made: a bad value then denies the
    /// request, it does not stop the app.
    pub fn load(
        entries: &[String],
        default_value: &dyn Fn(&str) -> Option<String>,
        resolve: ResolveTemplate,
    ) -> Result<Self> {
        let malformed = "`allowed_outbound_hosts` is malformed";
        if let [only] = entries
            && only == "insecure:allow-all"
        {
            bail!(
                "{malformed}: 'insecure:allow-all' is not allowed; \
                 '*://*:*' allows all outbound traffic"
            );
        }
        let mut parsed = Vec::with_capacity(entries.len());
        for entry in entries {
            let pieces = pieces(entry).context(malformed)?;
            if pieces.iter().all(|p| matches!(p, Piece::Text(_))) {
                parsed.push(Entry::Literal(
                    AllowedHost::parse(entry).context(malformed)?,
                ));
                continue;
            }
            if let Some(with_defaults) = render(&pieces, default_value) {
                AllowedHost::parse(&with_defaults)
                    .with_context(|| {
                        format!("{entry:?} with its variables' default values is not a valid host")
                    })
                    .context(malformed)?;
            }
            parsed.push(Entry::Template(entry.clone()));
        }
        Ok(Self {
            entries: parsed,
            resolve,
        })
    }

    /// The list for one instance (one request): templates rendered with the
    /// variables' values now, then parsed (crates/factor-outbound-networking/
    /// src/lib.rs, `prepare`). An error here denies every request of the
    /// instance.
    pub fn resolve(&self) -> Result<ResolvedHosts> {
        let mut hosts = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            hosts.push(match entry {
                Entry::Literal(host) => host.clone(),
                Entry::Template(template) => {
                    let value = (self.resolve)(template).with_context(|| {
                        format!("cannot resolve allowed_outbound_hosts entry {template:?}")
                    })?;
                    AllowedHost::parse(&value).with_context(|| {
                        format!("allowed_outbound_hosts entry {template:?} is not a valid host")
                    })?
                }
            });
        }
        Ok(ResolvedHosts(hosts))
    }
}

/// An instance's resolved `allowed_outbound_hosts`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedHosts(Vec<AllowedHost>);

impl ResolvedHosts {
    /// Whether a request to `url` may go out; `default_scheme` is put in
    /// front of a URL that has none.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn allows_url(&self, url: &str, default_scheme: &str) -> bool {
        match OutboundUrl::parse(url, default_scheme) {
            Ok(url) => self.0.iter().any(|h| h.allows(&url)),
            Err(_) => false,
        }
    }

    fn allows_relative(&self, schemes: &[&str]) -> bool {
        self.0.iter().any(|h| h.allows_relative(schemes))
    }
}

// ---------------------------------------------------------------------------
// Sending: pooled clients, shared by every request of the app
// ---------------------------------------------------------------------------

/// Spin's default for each of the guest's timeouts.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The app's clients (crates/factor-outbound-http/src/wasi.rs,
/// `HttpClients`): hyper-util's legacy client with its default pool (idle
/// connections kept 90 s, any number per host), one for plain HTTP and one
/// for HTTPS, created once and shared by every request and component, as
/// Spin's `[outbound_http] connection_pooling` defaults to on.
#[derive(Clone)]
pub struct OutboundHttp {
    http: Client<PlainConnector, WasiBody>,
    https: Client<TlsConnector, WasiBody>,
}

impl Default for OutboundHttp {
    fn default() -> Self {
        Self::new()
    }
}

impl OutboundHttp {
    pub fn new() -> Self {
        let builder = || Client::builder(TokioExecutor::new());
        Self {
            http: builder().build(PlainConnector),
            https: builder().build(TlsConnector::new()),
        }
    }

    /// Sends `request` (absolute URI) with the guest's options: the connect
    /// timeout bounds a new connection only (a pooled one is reused as is),
    /// the first-byte timeout bounds everything up to the response head, the
    /// between-bytes timeout each wait for the body.
    pub async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let timeout = |pick: fn(&RequestOptions) -> Option<Duration>| {
            options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
        };
        let connect_timeout = timeout(|o| o.connect_timeout);
        let first_byte_timeout = timeout(|o| o.first_byte_timeout);
        let between_bytes_timeout = timeout(|o| o.between_bytes_timeout);
        let use_tls = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);

        let response = CONNECT_TIMEOUT.scope(connect_timeout, async {
            if use_tls {
                self.https.request(request).await
            } else {
                self.http.request(request).await
            }
        });
        let response = tokio::time::timeout(first_byte_timeout, response)
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)?
            .map_err(client_error)?;
        Ok(response.map(|body| {
            BetweenBytes {
                body,
                timeout: between_bytes_timeout,
                sleep: None,
            }
            .boxed_unsync()
        }))
    }
}

tokio::task_local! {
    /// The connect timeout of the request being sent: the legacy client has
    /// no way to pass it to the connector, so Spin uses a task-local too.
    static CONNECT_TIMEOUT: Duration;
}

/// Why a new connection failed; becomes the guest's error code.
#[derive(Debug)]
enum ConnectFailure {
    /// The name did not resolve (or to no usable address).
    Dns(&'static str),
    Timeout,
    Refused,
    Tls,
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(why) => write!(f, "DNS error: {why}"),
            Self::Timeout => f.write_str("connection timeout"),
            Self::Refused => f.write_str("connection refused"),
            Self::Tls => f.write_str("TLS protocol error"),
        }
    }
}

impl StdError for ConnectFailure {}

impl ConnectFailure {
    fn to_http_error(&self) -> HttpError {
        match self {
            Self::Dns(why) => HttpError::DnsError {
                rcode: Some((*why).to_owned()),
                info_code: Some(0),
            },
            Self::Timeout => HttpError::ConnectionTimeout,
            Self::Refused => HttpError::ConnectionRefused,
            Self::Tls => HttpError::TlsProtocolError,
        }
    }
}

/// A connection failure keeps its code; anything else the client reports is
/// a protocol error (Spin's `hyper_legacy_request_error`).
fn client_error(err: hyper_util::client::legacy::Error) -> HttpError {
    match err
        .source()
        .and_then(|s| s.downcast_ref::<ConnectFailure>())
    {
        Some(failure) => failure.to_http_error(),
        None => {
            eprintln!("outbound request failed: {err}");
            HttpError::HttpProtocolError
        }
    }
}

/// Resolves the URI's host (all its addresses, tried in order) and connects
/// within the request's connect timeout (Spin's `ConnectOptions::connect_tcp`).
/// The host is passed to the resolver as the URI spells it, so an IPv6
/// literal (`[::1]`) does not resolve, as in Spin.
async fn connect_tcp(uri: &Uri, default_port: u16) -> Result<TcpStream, ConnectFailure> {
    let host = uri
        .host()
        .ok_or(ConnectFailure::Dns("address not available"))?;
    let port = uri.port_u16().unwrap_or(default_port);
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| ConnectFailure::Dns("address not available"))?
        .collect();
    let connect_timeout = CONNECT_TIMEOUT.try_with(|t| *t).unwrap_or(DEFAULT_TIMEOUT);
    match tokio::time::timeout(connect_timeout, TcpStream::connect(&*addrs)).await {
        Err(_) => Err(ConnectFailure::Timeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            Err(ConnectFailure::Dns("address not available"))
        }
        Ok(Err(_)) => Err(ConnectFailure::Refused),
        Ok(Ok(stream)) => Ok(stream),
    }
}

type ConnectFuture<T> = Pin<Box<dyn Future<Output = Result<T, ConnectFailure>> + Send>>;

#[derive(Clone)]
struct PlainConnector;

impl tower_service::Service<Uri> for PlainConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectFailure;
    type Future = ConnectFuture<Self::Response>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(async move { Ok(TokioIo::new(connect_tcp(&uri, 80).await?)) })
    }
}

/// HTTPS with the webpki roots (Spin also trusts the platform's roots, and
/// offers h2 by ALPN: see the README's table).
#[derive(Clone)]
struct TlsConnector(tokio_rustls::TlsConnector);

impl TlsConnector {
    fn new() -> Self {
        let roots = tokio_rustls::rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let mut config = tokio_rustls::rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }
}

impl tower_service::Service<Uri> for TlsConnector {
    type Response = TokioIo<TlsStream>;
    type Error = ConnectFailure;
    type Future = ConnectFuture<Self::Response>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.0.clone();
        Box::pin(async move {
            let tcp = connect_tcp(&uri, 443).await?;
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(
                uri.host().unwrap_or_default().to_owned(),
            )
            .map_err(|_| ConnectFailure::Dns("invalid dns name"))?;
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|_| ConnectFailure::Tls)?;
            Ok(TokioIo::new(TlsStream(tls)))
        })
    }
}

struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl Connection for TlsStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// The response body, failing with `connection-read-timeout` when no frame
/// comes within the between-bytes timeout.
struct BetweenBytes {
    body: Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for BetweenBytes {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(HttpError::from)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

// ---------------------------------------------------------------------------
// The `wasi:http` hooks of one request's store
// ---------------------------------------------------------------------------

/// One instance's outbound HTTP: the component's allowed hosts, resolved on
/// the instance's first request and kept for its others, and the app's
/// shared clients.
pub struct OutboundHooks {
    allowed: Arc<AllowedHosts>,
    client: OutboundHttp,
    resolved: Option<Result<Arc<ResolvedHosts>, ()>>,
}

type ResponseFuture = Box<
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

impl OutboundHooks {
    pub fn new(allowed: Arc<AllowedHosts>, client: OutboundHttp) -> Self {
        Self {
            allowed,
            client,
            resolved: None,
        }
    }

    /// The instance's resolved list; an error is logged once and denies
    /// every request of the instance.
    fn resolved(&mut self) -> Option<Arc<ResolvedHosts>> {
        let allowed = &self.allowed;
        self.resolved
            .get_or_insert_with(|| match allowed.resolve() {
                Ok(hosts) => Ok(Arc::new(hosts)),
                Err(e) => {
                    eprintln!("outbound requests denied: {e:#}");
                    Err(())
                }
            })
            .clone()
            .ok()
    }

    /// Spin's checks, in Spin's order (`prepare_request`): a request without
    /// a host, or to `self.alt`, is a request to the app itself; anything
    /// else is matched against the list, with `https` as the scheme of a
    /// URL that has none.
    fn check(&mut self, uri: &Uri) -> Result<(), HttpError> {
        let to_self = uri
            .authority()
            .is_none_or(|a| a.host().is_empty() || a.host() == "self.alt");
        let Some(allowed) = self.resolved() else {
            return Err(HttpError::HttpRequestDenied);
        };
        if to_self {
            if !allowed.allows_relative(&["http", "https"]) {
                eprintln!("outbound request denied: requests to the app itself are not allowed");
                return Err(HttpError::HttpRequestDenied);
            }
            // Spin sends these to its own listener; the test host does not
            // (see the README's table).
            eprintln!("outbound request to the app itself: not supported by the test host");
            return Err(HttpError::HttpRequestUriInvalid);
        }
        let text = uri.to_string();
        let url = match OutboundUrl::parse(&text, "https") {
            Ok(url) => url,
            Err(_) => {
                eprintln!("outbound request denied: its URL cannot be parsed");
                return Err(HttpError::HttpRequestDenied);
            }
        };
        if !allowed.0.iter().any(|h| h.allows(&url)) {
            // Scheme and authority only: a path or query may carry secrets.
            eprintln!(
                "outbound request denied: {}://{} is not in allowed_outbound_hosts",
                url.scheme,
                url.authority()
            );
            return Err(HttpError::HttpRequestDenied);
        }
        Ok(())
    }

    /// Checks and sends one request (what `send_request` returns, as a plain
    /// future, for the contract tests).
    pub fn send(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> impl Future<Output = Result<http::Response<WasiBody>, HttpError>> + Send + 'static {
        let checked = self.check(request.uri());
        // hyper-util writes `Host` from the URI (without a default port), as
        // in Spin, which removes the guest's.
        request.headers_mut().remove(http::header::HOST);
        let client = self.client.clone();
        async move {
            checked?;
            client.send(request, options).await
        }
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let response = self.send(request, options);
        Box::new(async move {
            let response = response.await?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(entry: &str) -> AllowedHost {
        AllowedHost::parse(entry).unwrap_or_else(|e| panic!("{entry}: {e:#}"))
    }

    fn allows(entry: &str, url: &str) -> bool {
        let url = OutboundUrl::parse(url, "https").unwrap();
        host(entry).allows(&url)
    }

    fn literal(h: &str) -> HostPattern {
        HostPattern::Literal(url::Host::parse(h).unwrap())
    }

    #[test]
    fn entries_parse_as_in_spin() {
        assert_eq!(
            host("https://kc.example.com"),
            AllowedHost {
                scheme: SchemePattern::Exact("https".into()),
                host: literal("kc.example.com"),
                port: PortPattern::Port(443),
            }
        );
        assert_eq!(host("http://localhost:8080/").port, PortPattern::Port(8080));
        assert_eq!(host("http://localhost/").port, PortPattern::Port(80));
        assert_eq!(host("  redis://cache  ").port, PortPattern::Port(6379));
        let all = host("*://*:*");
        assert_eq!(
            (all.scheme, all.host, all.port),
            (SchemePattern::Any, HostPattern::Any, PortPattern::Any)
        );
        assert_eq!(
            host("https://*.example.com").host,
            HostPattern::Subdomain(".example.com".into())
        );
        assert_eq!(host("http://[::1]:9000").host, literal("[::1]"));
        assert_eq!(
            host("http://KC.Example.COM").host,
            literal("kc.example.com")
        );
        assert_eq!(
            host("http://h:8000..8100").port,
            PortPattern::Range(8000..8100)
        );
        assert_eq!(host("http://self").host, HostPattern::ToSelf);
        assert_eq!(
            host("*://127.0.0.1/24:80").host,
            HostPattern::Cidr(Cidr {
                network: "127.0.0.0".parse().unwrap(),
                prefix: 24
            })
        );
        // A CIDR needs no port when the scheme has a default one.
        assert_eq!(host("http://10.0.0.0/8").port, PortPattern::Port(80));
        assert_eq!(
            host("*://ff00::/8:80").host,
            HostPattern::Cidr(Cidr {
                network: "ff00::".parse().unwrap(),
                prefix: 8
            })
        );
        // A bare address is a literal, not a /32.
        assert_eq!(host("http://192.168.1.1").host, literal("192.168.1.1"));
    }

    #[test]
    fn malformed_entries_are_refused_as_in_spin() {
        for bad in [
            "",
            "*",
            "example.com",
            "example.com:80",
            "localhost:3001",
            "insecure:allow-all",
            "https://example.com/path",
            "https://example.com:443/path",
            "http://*.example.com/a",
            // The last ':' is taken for the port.
            "http://[::1]",
            "*://127.0.0.0/24",
            "*://example.com",
            "ftp://example.com",
            "https://ex*ample.com",
            "https://*.ex*.com",
            "https://example.com:http",
            "https://example.com:1..x",
            "https://example.com:70000",
            "h2c+x://example.com:80",
            "{http,https}://example.com",
            "http://{a,b}:80",
            "http://example.com:{80,81}",
            "http://user@example.com",
            "http://",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn schemes_hosts_and_ports_match_as_in_spin() {
        let e = "https://kc.example.com";
        assert!(allows(e, "https://kc.example.com/realms/x?y"));
        assert!(allows(e, "https://KC.example.com:443/"));
        assert!(!allows(e, "http://kc.example.com/"));
        assert!(!allows(e, "https://kc.example.com:8443/"));
        assert!(!allows(e, "https://evil.com/"));
        assert!(!allows(e, "https://xkc.example.com/"));

        // A port in the entry must be the URL's port, default or explicit.
        assert!(!allows("http://example.com:80", "http://example.com:8080/"));
        assert!(allows("http://example.com:80", "http://example.com/"));
        assert!(allows("*://example.com:443", "https://example.com/"));
        assert!(!allows("http://example.com", "https://example.com:80/"));

        let sub = "http://*.example.com:*";
        assert!(allows(sub, "http://a.b.example.com:1234/"));
        assert!(!allows(sub, "http://example.com/"));
        assert!(!allows(sub, "http://myexample.com/"));
        assert!(!allows(sub, "http://127.0.0.1/"));
        // The suffix is compared as written.
        assert!(!allows("http://*.Example.com", "http://a.example.com/"));
        // So is the scheme.
        assert!(!allows("HTTP://example.com:80", "http://example.com/"));

        let range = "http://127.0.0.1:8000..8002";
        assert!(allows(range, "http://127.0.0.1:8001/"));
        assert!(allows(range, "http://127.0.0.1:8000/"));
        assert!(!allows(range, "http://127.0.0.1:8002/"));
        // An IPv4 host is compared as an address.
        assert!(allows("http://127.0.0.1:8001", "http://127.1:8001/"));

        let cidr = "*://10.1.0.0/16:*";
        assert!(allows(cidr, "http://10.1.200.3:9/"));
        assert!(!allows(cidr, "http://10.2.0.1/"));
        assert!(!allows(cidr, "http://ten.example/"));
        assert!(allows("http://[::1]:80", "http://[::1]/"));
        assert!(allows("*://fd00::/8:*", "http://[fd12::1]:81/"));
        assert!(!allows("*://fd00::/8:*", "http://10.0.0.1/"));

        assert!(!allows("http://self", "http://self/"));
        assert!(host("http://self").allows_relative(&["http", "https"]));
        assert!(host("*://*:*").allows_relative(&["http"]));
        assert!(!host("https://example.com").allows_relative(&["http", "https"]));
    }

    #[test]
    fn outbound_urls_read_as_in_spin() {
        let url = OutboundUrl::parse("https://user:pa#ss@example.com/f@1.json", "https").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("example.com", None));
        let url = OutboundUrl::parse("example.com:8383", "http").unwrap();
        assert_eq!((url.scheme.as_str(), url.port), ("http", Some(8383)));
        let url = OutboundUrl::parse("http://EXAMPLE.com:80/", "https").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("example.com", None));
    }

    fn no_defaults(_: &str) -> Option<String> {
        None
    }

    fn values(pairs: &'static [(&'static str, &'static str)]) -> ResolveTemplate {
        Arc::new(move |template: &str| {
            let pieces = pieces(template)?;
            render(&pieces, &|name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            })
            .ok_or_else(|| anyhow!("undefined variable"))
        })
    }

    #[test]
    fn start_up_checks_literals_and_defaults_only() {
        let entries = |e: &[&str]| e.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let vals = values(&[("idp", "http://idp/realms/x")]);

        // A template of a variable without a default: accepted at start-up...
        let hosts =
            AllowedHosts::load(&entries(&["{{ idp }}"]), &no_defaults, vals.clone()).unwrap();
        // ...and refused when a request resolves it.
        let err = format!("{:#}", hosts.resolve().unwrap_err());
        assert!(err.contains("path") && err.contains("{{ idp }}"), "{err}");

        // A literal entry, or a template over defaults, is checked at start-up.
        for bad in [
            &["https://x/y"][..],
            &["ok://x:1", "{{ dflt }}"][..],
            &["{{ broken"][..],
        ] {
            let err = AllowedHosts::load(
                &entries(bad),
                &|n: &str| (n == "dflt").then(|| "x".into()),
                vals.clone(),
            )
            .unwrap_err();
            assert!(
                format!("{err:#}").contains("`allowed_outbound_hosts` is malformed"),
                "{err:#}"
            );
        }
        assert!(
            AllowedHosts::load(
                &entries(&["insecure:allow-all"]),
                &no_defaults,
                vals.clone()
            )
            .is_err()
        );
        assert!(
            AllowedHosts::load(
                &entries(&["http://a", "insecure:allow-all"]),
                &no_defaults,
                vals.clone()
            )
            .is_err()
        );

        // Resolved per request, with the values of the moment.
        let good = values(&[("idp", "http://127.0.0.1:8181/")]);
        let hosts = AllowedHosts::load(&entries(&["{{ idp }}"]), &no_defaults, good).unwrap();
        let resolved = hosts.resolve().unwrap();
        assert!(resolved.allows_url("http://127.0.0.1:8181/x", "https"));
        assert!(!resolved.allows_url("http://127.0.0.1:8182/x", "https"));
        assert!(!resolved.allows_url("https://127.0.0.1:8181/x", "https"));

        // An undefined variable: also a run-time denial.
        let hosts =
            AllowedHosts::load(&entries(&["{{ nope }}"]), &no_defaults, values(&[])).unwrap();
        assert!(hosts.resolve().is_err());
    }

    #[test]
    fn no_entries_allow_nothing() {
        let resolved = AllowedHosts::default().resolve().unwrap();
        assert!(!resolved.allows_url("https://example.com/", "https"));
        assert!(!resolved.allows_relative(&["http", "https"]));
    }
}
