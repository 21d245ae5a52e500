//! The fake IdP's side of HTTP: requests split into path, query and form, on the
//! harness's hyper server ([`crate::http_server`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use crate::http_server::IncomingRequest;
pub use crate::http_server::{HttpResponse, Reply};

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

/// An OAuth error answer (RFC 6749 section 5.2): `{"error": code}`, not to be cached.
pub(super) fn error(status: u16, code: &str) -> HttpResponse {
    HttpResponse::json(status, &json!({"error": code})).with_header("cache-control", "no-store")
}

fn parse_form(bytes: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

pub type Handler = dyn Fn(&HttpRequest) -> Reply + Send + Sync;

/// A running server on 127.0.0.1.
pub struct Server(crate::http_server::Server);

impl Server {
    /// Listens on `port` (0: a free one) and answers every request with `handler`.
    pub fn start(port: u16, handler: Arc<Handler>) -> Server {
        Server(crate::http_server::Server::start(
            "fake-idp",
            port,
            Arc::new(move |request| handler(&HttpRequest::from(request))),
        ))
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// Closes the port and every open connection; ends hangs and delays.
    pub fn stop(&mut self) {
        self.0.stop();
    }
}

impl From<IncomingRequest> for HttpRequest {
    fn from(raw: IncomingRequest) -> HttpRequest {
        let (path, query) = match raw.target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (raw.target, None),
        };
        HttpRequest {
            method: raw.method,
            path,
            query,
            headers: raw.headers,
            body: raw.body,
        }
    }
}
