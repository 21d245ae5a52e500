//! A scripted IdP: each outgoing request is answered by a closure, and recorded.

use crate::ports::{HttpClient, HttpError, HttpRequest, HttpResponse};
use std::cell::RefCell;
use std::collections::VecDeque;

type Handler = Box<dyn Fn(&HttpRequest) -> Result<HttpResponse, HttpError>>;

/// A handler-based fake IdP.
pub struct FakeHttp {
    /// Answers every request.
    pub handler: Handler,
    /// The path of every request sent, oldest first.
    pub log: RefCell<VecDeque<String>>,
}

impl FakeHttp {
    /// An IdP answering with `handler`.
    pub fn new(
        handler: impl Fn(&HttpRequest) -> Result<HttpResponse, HttpError> + 'static,
    ) -> Self {
        Self {
            handler: Box::new(handler),
            log: RefCell::new(VecDeque::new()),
        }
    }

    /// How many requests went to a URL ending in `path`.
    pub fn calls_to(&self, path: &str) -> usize {
        self.log
            .borrow()
            .iter()
            .filter(|u| u.ends_with(path))
            .count()
    }
}

impl HttpClient for FakeHttp {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let uri = request.uri().to_string();
        let path = uri.split('?').next().unwrap_or_default().to_owned();
        self.log.borrow_mut().push_back(path);
        (self.handler)(&request)
    }
}

/// A JSON answer with `status`.
pub fn json_response(status: u16, body: &serde_json::Value) -> Result<HttpResponse, HttpError> {
    Ok(http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).expect("a JSON value serializes"))
        .expect("status and header are valid"))
}
