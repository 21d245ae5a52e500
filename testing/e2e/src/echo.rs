//! A tiny HTTP/1.1 server in the test process that records every request and answers
//! with a JSON description of it. Useful as a stand-in upstream (to check what nginx
//! forwards) or as a receiver (e.g. of back-channel logout tokens).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::http_server::{HttpResponse, IncomingRequest, Reply, Server};

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

/// A running echo server on 127.0.0.1.
pub struct EchoServer {
    name: String,
    server: Server,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl EchoServer {
    /// Starts a server named `name` (echoed in every answer) on a free port.
    pub fn start(name: &str) -> EchoServer {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let server_name = name.to_string();
        let server = Server::start(
            &format!("echo-{name}"),
            0,
            Arc::new(move |request| echo(&server_name, request, &recorded)),
        );
        EchoServer {
            name: name.to_string(),
            server,
            requests,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// How many TCP connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    /// Stops accepting connections and closes the port (and open connections).
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

/// Records `request` and answers with its JSON description.
fn echo(name: &str, request: IncomingRequest, requests: &Mutex<Vec<RecordedRequest>>) -> Reply {
    let recorded = RecordedRequest {
        method: request.method,
        target: request.target,
        headers: request.headers,
        body: String::from_utf8_lossy(&request.body).into_owned(),
        connection: request.connection,
    };
    let answer = serde_json::json!({
        "server": name,
        "method": recorded.method,
        "target": recorded.target,
        "headers": recorded.headers,
        "body": recorded.body,
        "connection": recorded.connection,
    });
    requests.lock().unwrap().push(recorded);
    Reply::Respond(HttpResponse::json(200, &answer))
}
