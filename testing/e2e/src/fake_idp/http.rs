//! Just enough HTTP/1.1 for the fake IdP: one thread per connection, keep-alive,
//! `Content-Length` or chunked bodies, and a stop that closes the port and every open connection.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query (without `?`), if any.
    pub query: Option<String>,
    /// Header names lowercased; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The query parameters (the last of repeated names wins).
    pub fn query_params(&self) -> BTreeMap<String, String> {
        parse_form(self.query.as_deref().unwrap_or("").as_bytes())
    }

    /// The body as a form.
    pub fn form(&self) -> BTreeMap<String, String> {
        parse_form(&self.body)
    }
}

fn parse_form(bytes: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    Respond(HttpResponse),
    /// Keep the connection open and never answer (until the server stops).
    Hang,
    /// Wait, then answer (the wait ends early when the server stops).
    Delayed(Duration, HttpResponse),
    /// Close the connection without answering.
    Close,
}

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

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

pub type Handler = dyn Fn(&HttpRequest) -> Reply + Send + Sync;

struct Shared {
    stopping: AtomicBool,
    /// Signalled on stop, to end hangs and delays.
    stop_lock: Mutex<()>,
    stop_signal: Condvar,
    /// Clones of the open connections, to shut them down on stop.
    open: Mutex<std::collections::HashMap<u64, TcpStream>>,
    next_connection: std::sync::atomic::AtomicU64,
}

/// A running server on 127.0.0.1.
pub struct Server {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `port` (0: a free one) and answers every request with `handler`.
    pub fn start(port: u16, handler: Arc<Handler>) -> Server {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("bind the fake IdP's port");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            stop_lock: Mutex::new(()),
            stop_signal: Condvar::new(),
            open: Mutex::new(std::collections::HashMap::new()),
            next_connection: std::sync::atomic::AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name(format!("fake-idp-{port}"))
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept_shared.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let id = accept_shared.next_connection.fetch_add(1, Ordering::SeqCst);
                    if let Ok(clone) = stream.try_clone() {
                        accept_shared.open.lock().unwrap().insert(id, clone);
                    }
                    let shared = Arc::clone(&accept_shared);
                    let handler = Arc::clone(&handler);
                    std::thread::spawn(move || {
                        serve(stream, &shared, &*handler);
                        shared.open.lock().unwrap().remove(&id);
                    });
                }
                // The listener is dropped here: the port refuses connections.
            })
            .expect("spawn the fake IdP");
        Server {
            port,
            shared,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes the port and every open connection; ends hangs and delays.
    pub fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        {
            let _guard = self.shared.stop_lock.lock().unwrap();
            self.shared.stop_signal.notify_all();
        }
        // Wake the accept loop so it sees `stopping` and drops the listener.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        let _ = accept.join();
        for (_, stream) in self.shared.open.lock().unwrap().drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits up to `timeout` (None: forever) or until the server stops.
fn wait_for_stop(shared: &Shared, timeout: Option<Duration>) {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let mut guard = shared.stop_lock.lock().unwrap();
    while !shared.stopping.load(Ordering::SeqCst) {
        match deadline {
            None => guard = shared.stop_signal.wait(guard).unwrap(),
            Some(deadline) => {
                let now = std::time::Instant::now();
                if now >= deadline {
                    return;
                }
                guard = shared
                    .stop_signal
                    .wait_timeout(guard, deadline - now)
                    .unwrap()
                    .0;
            }
        }
    }
}

/// The next request on the connection, with whether to keep it open.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(HttpRequest, bool)> {
    let raw = crate::http1::read_request(reader)?;
    let (path, query) = match raw.target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (raw.target, None),
    };
    let request = HttpRequest {
        method: raw.method,
        path,
        query,
        headers: raw.headers,
        body: raw.body,
    };
    Some((request, raw.keep_alive))
}

fn write_response(stream: &mut TcpStream, response: &HttpResponse, keep_alive: bool) -> bool {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: {}\r\n\r\n",
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    ));
    // One write, as real servers send a small response (Node's `res.end`, Netty):
    // a head and body written apart would leave the body waiting, on a pooled
    // connection, for the client's delayed ACK of the head (Nagle), ~40 ms a call.
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&response.body);
    stream.write_all(&bytes).is_ok()
}

fn serve(stream: TcpStream, shared: &Shared, handler: &Handler) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some((request, keep_alive)) = read_request(&mut reader) else {
            return;
        };
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let response = match handler(&request) {
            Reply::Respond(r) => r,
            Reply::Delayed(wait, r) => {
                wait_for_stop(shared, Some(wait));
                r
            }
            Reply::Hang => {
                wait_for_stop(shared, None);
                return;
            }
            Reply::Close => return,
        };
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        if !write_response(reader.get_mut(), &response, keep_alive) || !keep_alive {
            return;
        }
    }
}
