//! Contract: the test host's outbound HTTP does what Spin 3.6 / 4.0 does, for
//! what the component relies on. Each test is named after the Spin behaviour
//! it pins; the Spin source each rule comes from is cited in src/outbound.rs.
//!
//! The host's outbound layer (`src/outbound.rs`, which uses nothing else from
//! the crate) is included as it is and driven directly, as `wasi:http` drives
//! it: a request with the guest's headers and a body whose length the host
//! does not know, sent through the hooks of one request's store. Servers are
//! plain TCP listeners on 127.0.0.1 that record the bytes they get.
//!
//! The last tests run the host binary: they need the release build of the
//! component (`cargo build --target wasm32-wasip2 --release -p oidc-client`).

#[allow(dead_code)]
#[path = "../../src/outbound.rs"]
mod outbound;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Bytes, Frame};
use hyper::http;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use outbound::{AllowedHosts, OutboundHooks, OutboundHttp, ResolveTemplate};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A body as a guest's `outgoing-body` is to the host: frames arrive as the
/// guest writes them, and nothing tells the host their total length.
struct GuestBody(Vec<Bytes>);

impl Body for GuestBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if self.0.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Ok(Frame::data(self.0.remove(0)))))
        }
    }
}

fn guest_body(chunks: &[&'static str]) -> WasiBody {
    GuestBody(
        chunks
            .iter()
            .map(|c| Bytes::from_static(c.as_bytes()))
            .collect(),
    )
    .boxed_unsync()
}

fn no_body() -> WasiBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Templates rendered from fixed values, as the host renders them from the
/// app's variables.
fn values(pairs: Vec<(&'static str, String)>) -> ResolveTemplate {
    Arc::new(move |template: &str| {
        let mut out = template.to_owned();
        for (name, value) in &pairs {
            out = out.replace(&format!("{{{{ {name} }}}}"), value);
        }
        anyhow::ensure!(!out.contains("{{"), "undefined variable in {template:?}");
        Ok(out)
    })
}

fn no_default(_: &str) -> Option<String> {
    None
}

/// The hooks of one request's store in an app whose component allows
/// `entries` (templates rendered with `vars`).
fn hooks(
    entries: &[&str],
    vars: Vec<(&'static str, String)>,
    client: &OutboundHttp,
) -> OutboundHooks {
    let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
    let allowed = AllowedHosts::load(&entries, &no_default, values(vars)).expect("start-up check");
    OutboundHooks::new(Arc::new(allowed), client.clone())
}

/// A server that reads one request head (and a body framed by
/// `content-length` or chunked) per round and answers `ok` on the same
/// connection; it records each connection's raw bytes.
struct Recorder {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: tokio::sync::mpsc::UnboundedReceiver<String>,
}

async fn recorder() -> Recorder {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let (tx, requests) = tokio::sync::mpsc::unbounded_channel();
    let count = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // Read until one whole request is in `buf`.
                    let request = loop {
                        if let Some(end) = request_end(&buf) {
                            break buf.drain(..end).collect::<Vec<u8>>();
                        }
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let _ = tx.send(String::from_utf8_lossy(&request).into_owned());
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if sock.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Recorder {
        addr,
        connections,
        requests,
    }
}

/// Where the first complete HTTP/1.1 request in `buf` ends, if it is there.
fn request_end(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        let body = &buf[head_end..];
        let end = body.windows(5).position(|w| w == b"0\r\n\r\n")?;
        return Some(head_end + end + 5);
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
    (buf.len() >= head_end + length).then_some(head_end + length)
}

fn header_lines(request: &str) -> Vec<String> {
    request
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_ascii_lowercase)
        .collect()
}

async fn send(
    hooks: &mut OutboundHooks,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<String, HttpError> {
    let response = hooks.send(request, options).await?;
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

// ---------------------------------------------------------------------------
// The wire
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_body_without_content_length_is_sent_chunked() {
    let mut server = recorder().await;
    let origin = format!("http://{}", server.addr);
    let client = OutboundHttp::new();
    let mut hooks = hooks(&[origin.as_str()], vec![], &client);

    // No Content-Length: chunked, each write of the guest its own chunk.
    let request = http::Request::post(format!("{origin}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(guest_body(&["grant_type=", "authorization_code"]))
        .unwrap();
    assert_eq!(send(&mut hooks, request, None).await.unwrap(), "ok");
    let sent = server.requests.recv().await.unwrap();
    let headers = header_lines(&sent);
    assert!(
        headers.contains(&"transfer-encoding: chunked".to_owned()),
        "{sent}"
    );
    assert!(
        !headers.iter().any(|h| h.starts_with("content-length")),
        "{sent}"
    );
    // hyper writes chunk sizes in upper-case hex, in Spin as here.
    assert!(
        sent.ends_with("\r\n\r\nB\r\ngrant_type=\r\n12\r\nauthorization_code\r\n0\r\n\r\n"),
        "{sent:?}"
    );

    // With the guest's Content-Length: that length, no chunking.
    let request = http::Request::post(format!("{origin}/token"))
        .header("content-length", "5")
        .body(guest_body(&["a=", "bcd"]))
        .unwrap();
    send(&mut hooks, request, None).await.unwrap();
    let sent = server.requests.recv().await.unwrap();
    let headers = header_lines(&sent);
    assert!(headers.contains(&"content-length: 5".to_owned()), "{sent}");
    assert!(
        !headers.iter().any(|h| h.starts_with("transfer-encoding")),
        "{sent}"
    );
    assert!(sent.ends_with("\r\n\r\na=bcd"), "{sent:?}");

    // A GET whose body the guest never wrote: neither header.
    let request = http::Request::get(format!("{origin}/jwks"))
        .body(no_body())
        .unwrap();
    send(&mut hooks, request, None).await.unwrap();
    let sent = server.requests.recv().await.unwrap();
    let headers = header_lines(&sent);
    assert!(
        !headers
            .iter()
            .any(|h| h.starts_with("content-length") || h.starts_with("transfer-encoding")),
        "{sent}"
    );
}

#[tokio::test]
async fn the_host_header_is_written_from_the_uri_not_taken_from_the_guest() {
    let mut server = recorder().await;
    let origin = format!("http://{}", server.addr);
    let client = OutboundHttp::new();
    let mut hooks = hooks(&[origin.as_str()], vec![], &client);
    let request = http::Request::get(format!("{origin}/.well-known/openid-configuration?x=1"))
        .header("host", "evil.example")
        .body(no_body())
        .unwrap();
    send(&mut hooks, request, None).await.unwrap();
    let sent = server.requests.recv().await.unwrap();
    assert!(
        sent.starts_with("GET /.well-known/openid-configuration?x=1 HTTP/1.1\r\n"),
        "origin-form request line: {sent}"
    );
    let hosts: Vec<_> = header_lines(&sent)
        .into_iter()
        .filter(|h| h.starts_with("host:"))
        .collect();
    assert_eq!(hosts, [format!("host: {}", server.addr)], "{sent}");
}

#[tokio::test]
async fn connections_to_the_idp_are_pooled() {
    let mut server = recorder().await;
    let origin = format!("http://{}", server.addr);
    // One client for the app; a fresh store (and hooks) for each request.
    let client = OutboundHttp::new();
    for round in 0..4 {
        let mut request_hooks = hooks(&[origin.as_str()], vec![], &client);
        let request = http::Request::get(format!("{origin}/jwks?round={round}"))
            .body(no_body())
            .unwrap();
        assert_eq!(send(&mut request_hooks, request, None).await.unwrap(), "ok");
        server.requests.recv().await.unwrap();
        // The connection goes back to the pool once the response is read.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "four requests from four instances, one connection"
    );

    // Two requests at once need two connections; both are kept afterwards.
    let (a, b) = tokio::join!(
        async {
            let mut h = hooks(&[origin.as_str()], vec![], &client);
            let r = http::Request::post(format!("{origin}/token"))
                .body(guest_body(&["x"]))
                .unwrap();
            send(&mut h, r, None).await
        },
        async {
            let mut h = hooks(&[origin.as_str()], vec![], &client);
            let r = http::Request::post(format!("{origin}/token"))
                .body(guest_body(&["y"]))
                .unwrap();
            send(&mut h, r, None).await
        }
    );
    a.unwrap();
    b.unwrap();
    assert!(server.connections.load(Ordering::SeqCst) <= 2);
}

/// A body whose bytes the guest writes only after handing the request over
/// (as the component does: `handle`, then write, then finish).
struct LateBody {
    delay: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

impl Body for LateBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let delay = self
            .delay
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(2))));
        match delay.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.done = true;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"grant_type=x")))))
            }
        }
    }
}

/// Spin's pooled connections keep Nagle's algorithm on (its connector does
/// not set `TCP_NODELAY`), so on a reused connection a body written after
/// the head has gone out waits for the server's delayed ACK of the head:
/// about 40 ms on Linux. A body that is complete when the request is handed
/// over goes out with the head. The host must show this as Spin would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_written_after_hand_over_waits_for_the_delayed_ack_on_a_pooled_connection() {
    let mut server = recorder().await;
    let origin = format!("http://{}", server.addr);
    let client = OutboundHttp::new();
    let mut times = Vec::new();
    for _ in 0..6 {
        let mut h = hooks(&[origin.as_str()], vec![], &client);
        let body = LateBody {
            delay: None,
            done: false,
        }
        .boxed_unsync();
        let request = http::Request::post(format!("{origin}/token"))
            .header("content-length", "12")
            .body(body)
            .unwrap();
        let started = std::time::Instant::now();
        send(&mut h, request, None).await.unwrap();
        times.push(started.elapsed());
        server.requests.recv().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    // The first request opens the connection (quick ACKs); the others reuse it.
    let mut reused = times[1..].to_vec();
    reused.sort();
    assert!(
        reused[reused.len() / 2] >= Duration::from_millis(30),
        "no delayed-ACK stall on the pooled connection: {times:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_and_a_silent_server_give_spins_error_codes() {
    // Nothing listens: connection-refused.
    let closed = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let client = OutboundHttp::new();
    let mut h = hooks(&["http://127.0.0.1:*"], vec![], &client);
    let request = http::Request::get(format!("http://{addr}/"))
        .body(no_body())
        .unwrap();
    let err = send(&mut h, request, None).await.unwrap_err();
    assert!(matches!(err, HttpError::ConnectionRefused), "{err:?}");

    // Accepts, never answers: the first-byte timeout, as connection-read-timeout.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let request = http::Request::get(format!("http://{addr}/"))
        .body(no_body())
        .unwrap();
    let options = RequestOptions {
        first_byte_timeout: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let err = send(&mut h, request, Some(options)).await.unwrap_err();
    assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
}

// ---------------------------------------------------------------------------
// allowed_outbound_hosts
// ---------------------------------------------------------------------------

#[test]
fn allowed_hosts_match_ports_and_cidr_as_spin_does() {
    // (entry, URL, allowed)
    let cases: &[(&str, &str, bool)] = &[
        // The scheme's default port, explicit or not.
        (
            "https://kc.example.com",
            "https://kc.example.com/realms/demo",
            true,
        ),
        (
            "https://kc.example.com",
            "https://kc.example.com:443/",
            true,
        ),
        (
            "https://kc.example.com",
            "https://kc.example.com:8443/",
            false,
        ),
        ("https://kc.example.com", "http://kc.example.com/", false),
        ("http://kc.example.com:80", "http://kc.example.com/", true),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081/token", true),
        (
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8082/token",
            false,
        ),
        ("http://127.0.0.1:8081/", "http://127.0.0.1:8081/", true),
        // Hosts compare as hosts: case, and IPv4 spellings.
        ("http://KC.example.com", "http://kc.EXAMPLE.com/", true),
        ("http://127.0.0.1:8081", "http://127.1:8081/", true),
        ("http://localhost:8081", "http://127.0.0.1:8081/", false),
        // Wildcards.
        ("https://*.example.com", "https://kc.example.com/", true),
        ("https://*.example.com", "https://a.b.example.com/", true),
        ("https://*.example.com", "https://example.com/", false),
        ("https://*.example.com", "https://badexample.com/", false),
        ("*://kc.example.com:*", "http://kc.example.com:9999/", true),
        ("*://*:*", "http://10.0.0.1:1/", true),
        // Port ranges: the end is excluded.
        (
            "http://127.0.0.1:8000..8100",
            "http://127.0.0.1:8000/",
            true,
        ),
        (
            "http://127.0.0.1:8000..8100",
            "http://127.0.0.1:8099/",
            true,
        ),
        (
            "http://127.0.0.1:8000..8100",
            "http://127.0.0.1:8100/",
            false,
        ),
        // CIDR ranges match IP hosts only.
        ("http://127.0.0.0/8:8081", "http://127.3.4.5:8081/", true),
        ("http://127.0.0.0/8:8081", "http://128.0.0.1:8081/", false),
        ("http://127.0.0.0/8:8081", "http://localhost:8081/", false),
        ("http://127.0.0.1/24", "http://127.0.0.77/", true),
        ("*://fd00::/8:*", "https://[fd00::5]:8443/", true),
        ("*://fd00::/8:*", "https://[fe00::5]:8443/", false),
        ("http://[::1]:8081", "http://[::1]:8081/", true),
    ];
    for (entry, url, expected) in cases {
        let allowed = AllowedHosts::load(&[entry.to_string()], &no_default, values(vec![]))
            .unwrap_or_else(|e| panic!("{entry}: {e:#}"));
        let resolved = allowed.resolve().unwrap();
        assert_eq!(
            resolved.allows_url(url, "https"),
            *expected,
            "{entry} vs {url}"
        );
    }
}

#[test]
fn malformed_literal_entries_stop_start_up_as_in_spin() {
    for bad in [
        "kc.example.com",
        "*",
        "https://kc.example.com/realms/demo",
        "https://kc.example.com:443/realms",
        "http://[::1]",
        "*://kc.example.com",
        "https://kc.*.com",
        "https://kc.example.com:99999",
        "https://kc.example.com:1..x",
        "{{ unterminated",
    ] {
        let err = AllowedHosts::load(&[bad.to_owned()], &no_default, values(vec![]))
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert!(
            format!("{err:#}").contains("`allowed_outbound_hosts` is malformed"),
            "{bad}: {err:#}"
        );
    }
    let err = AllowedHosts::load(&["insecure:allow-all".into()], &no_default, values(vec![]))
        .unwrap_err();
    assert!(format!("{err:#}").contains("*://*:*"), "{err:#}");
}

#[tokio::test]
async fn a_bad_origin_variable_refuses_the_request_at_run_time() {
    let mut server = recorder().await;
    let good = format!("http://{}", server.addr);
    let client = OutboundHttp::new();
    let template = ["{{ oidc_idp_origin }}".to_owned()];

    // A path in the value: accepted at start-up (the variable has no default,
    // so `spin up` cannot check it), then every request is denied.
    for bad in [
        format!("{good}/realms/demo"),
        "kc.example.com".to_owned(),
        String::new(),
    ] {
        let allowed = AllowedHosts::load(
            &template,
            &no_default,
            values(vec![("oidc_idp_origin", bad.clone())]),
        )
        .unwrap_or_else(|e| panic!("start-up refused {bad:?}: {e:#}"));
        let mut h = OutboundHooks::new(Arc::new(allowed), client.clone());
        for _ in 0..2 {
            let request = http::Request::get(format!(
                "{good}/realms/demo/.well-known/openid-configuration"
            ))
            .body(no_body())
            .unwrap();
            let err = send(&mut h, request, None).await.unwrap_err();
            assert!(
                matches!(err, HttpError::HttpRequestDenied),
                "{bad:?}: {err:?}"
            );
        }
    }
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        0,
        "nothing left the host"
    );

    // The same template with a good value: the request goes out.
    let mut h = hooks(
        &["{{ oidc_idp_origin }}"],
        vec![("oidc_idp_origin", good.clone())],
        &client,
    );
    let request = http::Request::get(format!("{good}/x"))
        .body(no_body())
        .unwrap();
    send(&mut h, request, None).await.unwrap();
    server.requests.recv().await.unwrap();
    // Only that origin: another port of the same host is denied.
    let other = StdListener::bind("127.0.0.1:0").unwrap();
    let request = http::Request::get(format!("http://{}/x", other.local_addr().unwrap()))
        .body(no_body())
        .unwrap();
    let err = send(&mut h, request, None).await.unwrap_err();
    assert!(matches!(err, HttpError::HttpRequestDenied), "{err:?}");
}

#[test]
fn a_template_whose_variables_have_defaults_is_checked_at_start_up() {
    let defaults = |name: &str| (name == "idp").then(|| "https://idp.example/realms/x".to_owned());
    let err = AllowedHosts::load(&["{{ idp }}".into()], &defaults, values(vec![])).unwrap_err();
    assert!(format!("{err:#}").contains("malformed"), "{err:#}");
    let defaults = |name: &str| (name == "idp").then(|| "https://idp.example".to_owned());
    assert!(AllowedHosts::load(&["{{ idp }}".into()], &defaults, values(vec![])).is_ok());
}

// ---------------------------------------------------------------------------
// The host binary
// ---------------------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the host on the project's spin.toml with `origin` as
/// `oidc_idp_origin`; returns it with its address once it listens.
fn start_host(origin: &str) -> (Host, String) {
    let wasm = repo().join("target/wasm32-wasip2/release/oidc_client.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: build it with `cargo build --target wasm32-wasip2 --release -p oidc-client`",
        wasm.display()
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spin-test-host"));
    // No state directory: the default store in memory, never the repo's `.spin/`.
    cmd.arg("--manifest")
        .arg(repo().join("spin.toml"))
        .args(["--listen", "127.0.0.1:0", "--state-dir", ""])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SPIN_VARIABLE_") {
            cmd.env_remove(key);
        }
    }
    for (name, value) in [
        ("CLIENT_ID", "client1"),
        ("CLIENT_SECRET", "s3cret"),
        ("OIDC_ISSUER_URL", "http://127.0.0.1:9/realms/demo"),
        ("OIDC_IDP_ORIGIN", origin),
        ("CLIENT_BASE_URL", "http://127.0.0.1:8080"),
    ] {
        cmd.env(format!("SPIN_VARIABLE_{name}"), value);
    }
    let mut child = Host(cmd.spawn().unwrap());
    let stdout = child.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("the host did not start: {line:?}"))
        .to_owned();
    (child, addr)
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        sock,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    sock.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    (status, response)
}

#[test]
fn an_origin_with_a_path_does_not_stop_start_up() {
    // `spin up` starts with it (the template names a required variable); the
    // component then reports its own configuration error.
    let (_host, addr) = start_host("http://127.0.0.1:9/realms/demo");
    let (status, page) = get(&addr, "/");
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("oidc_idp_origin"), "{page}");
    let (status, _) = get(&addr, "/healthz");
    assert_eq!(status, 200);
}

#[test]
fn a_malformed_literal_entry_stops_start_up() {
    let dir = std::env::temp_dir().join(format!("spin-contract-outbound-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("spin.toml");
    std::fs::write(
        &manifest,
        r#"spin_manifest_version = 2
[application]
name = "bad-hosts"
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "missing.wasm"
allowed_outbound_hosts = ["https://kc.example.com/realms/demo"]
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spin-test-host"))
        .arg("--manifest")
        .arg(&manifest)
        .args(["--listen", "127.0.0.1:0", "--state-dir", ""])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`allowed_outbound_hosts` is malformed"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
