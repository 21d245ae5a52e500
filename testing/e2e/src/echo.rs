//! A tiny HTTP/1.1 server in the test process that records every request and answers
//! with a JSON description of it. Useful as a stand-in upstream (to check what nginx
//! forwards) or as a receiver (e.g. of back-channel logout tokens).

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header names lowercased; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// Which TCP connection (1, 2, ...) carried it.
    pub connection: usize,
}

struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    connections: AtomicUsize,
    stopping: AtomicBool,
}

/// A running echo server on 127.0.0.1.
pub struct EchoServer {
    name: String,
    port: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Starts a server named `name` (echoed in every answer) on a free port.
    pub fn start(name: &str) -> EchoServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        let server_name = name.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("echo-{name}"))
            .spawn(move || {
                for stream in listener.incoming() {
                    if thread_shared.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let id = thread_shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
                    let shared = Arc::clone(&thread_shared);
                    let name = server_name.clone();
                    std::thread::spawn(move || serve(stream, id, &name, &shared));
                }
            })
            .expect("spawn the echo server");
        EchoServer {
            name: name.to_string(),
            port,
            shared,
            thread: Some(thread),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many TCP connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Stops accepting connections and closes the port.
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shared.stopping.store(true, Ordering::SeqCst);
            // Wake the accept loop.
            let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
            let _ = thread.join();
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(stream: TcpStream, connection: usize, name: &str, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = crate::http1::read_request(&mut reader) else {
            return;
        };
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let keep_alive = request.keep_alive;
        let recorded = RecordedRequest {
            method: request.method,
            target: request.target,
            headers: request.headers,
            body: String::from_utf8_lossy(&request.body).into_owned(),
            connection,
        };
        let answer = serde_json::json!({
            "server": name,
            "method": recorded.method,
            "target": recorded.target,
            "headers": recorded.headers,
            "body": recorded.body,
            "connection": connection,
        })
        .to_string();
        shared.requests.lock().unwrap().push(recorded);
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: {}\r\n\r\n{answer}",
            answer.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        if reader.get_mut().write_all(response.as_bytes()).is_err() || !keep_alive {
            return;
        }
    }
}
