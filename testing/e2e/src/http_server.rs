//! The harness's own HTTP/1.1 servers (the echo server, the fake IdP): hyper on a
//! tokio runtime of their own, a sync handler per request, and a stop that closes
//! the port and every open connection at once (the runtime goes, and with it every
//! connection, hang and delay).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// The largest request body read; more ends the connection.
const MAX_BODY: usize = 1024 * 1024;

/// How long a stop waits for handlers still running.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct IncomingRequest {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// Header names lowercased; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// Which TCP connection (1, 2, ...) carried it.
    pub connection: usize,
}

/// A response to send.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> HttpResponse {
        HttpResponse::new(status, "application/json", value.to_string())
    }

    pub fn redirect(status: u16, location: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    Respond(HttpResponse),
    /// Keep the connection open and never answer (until the server stops).
    Hang,
    /// Wait, then answer (the wait ends, unanswered, when the server stops).
    Delayed(Duration, HttpResponse),
    /// Close the connection without answering.
    Close,
}

pub type Handler = dyn Fn(IncomingRequest) -> Reply + Send + Sync;

/// A running server on 127.0.0.1.
pub struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    /// Listens on `port` (0: a free one) and answers every request with `handler`;
    /// `name` names the runtime's threads.
    pub fn start(name: &str, port: u16, handler: Arc<Handler>) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)))
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port} for {name}: {e}"));
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        runtime.spawn(accept(listener, Arc::clone(&connections), handler));
        Server {
            port,
            connections,
            runtime: Some(runtime),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many TCP connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Closes the port and every open connection; ends hangs and delays.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(STOP_GRACE);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    connections: Arc<AtomicUsize>,
    handler: Arc<Handler>,
) {
    loop {
        let Ok((stream, _)): std::io::Result<(_, SocketAddr)> = listener.accept().await else {
            continue;
        };
        // Head and body leave together; no wait for the client's delayed ACK.
        let _ = stream.set_nodelay(true);
        let connection = connections.fetch_add(1, Ordering::SeqCst) + 1;
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            let service =
                service_fn(move |request| answer(request, connection, Arc::clone(&handler)));
            // A closed or broken connection is no news to the test.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Why a connection ends without an answer.
#[derive(Debug)]
struct Unanswered(&'static str);

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Unanswered {}

/// Runs the handler; an error from here makes hyper close the connection unanswered.
async fn answer(
    request: hyper::Request<Incoming>,
    connection: usize,
    handler: Arc<Handler>,
) -> Result<hyper::Response<Full<Bytes>>, Unanswered> {
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| Unanswered("unreadable or oversized request body"))?
        .to_bytes()
        .to_vec();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str().to_string())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let incoming = IncomingRequest {
        method: parts.method.to_string(),
        target: parts.uri.to_string(),
        headers,
        body,
        connection,
    };
    // The handler is sync and quick (a lock, a signature): run in place.
    let reply = tokio::task::block_in_place(|| handler(incoming));
    let response = match reply {
        Reply::Respond(r) => r,
        Reply::Delayed(wait, r) => {
            tokio::time::sleep(wait).await;
            r
        }
        Reply::Hang => std::future::pending().await,
        Reply::Close => return Err(Unanswered("the handler closes the connection")),
    };
    to_hyper(response)
}

fn to_hyper(response: HttpResponse) -> Result<hyper::Response<Full<Bytes>>, Unanswered> {
    let mut builder = hyper::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .map_err(|_| Unanswered("the handler's response is not valid HTTP"))
}
