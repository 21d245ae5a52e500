//! Responses, and the error type handlers return: status, a message fit for the
//! page, and an optional detail for the log (never a secret).

/// A response as the app builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// Lower-case names; `set-cookie` may repeat.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// An HTML page.
    pub fn html(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: body.into_bytes(),
        }
    }

    /// Plain text.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// 303 See Other: after a POST the browser follows with a GET.
    pub fn redirect(location: &str) -> Self {
        Self {
            status: 303,
            headers: vec![("location".into(), location.to_owned())],
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Adds a `Set-Cookie` header.
    pub fn with_cookie(self, set_cookie: String) -> Self {
        self.with_header("set-cookie", set_cookie)
    }

    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy), for tests and logs of our own pages.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request that failed: rendered as an error page with `status` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    /// The HTTP status.
    pub status: u16,
    /// Shown on the page; never a secret or a raw input.
    pub message: String,
    /// What the reader can do about it, when the status's usual advice
    /// ([`AppError::next_step`]) does not fit.
    pub next: Option<String>,
    /// Extra detail for the log line only.
    pub log: Option<String>,
    /// Cookies to clear or set alongside the error page.
    pub cookies: Vec<String>,
}

impl AppError {
    /// A failure shown with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            next: None,
            log: None,
            cookies: Vec::new(),
        }
    }

    /// A 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// Says what to do next instead of the status's usual advice.
    pub fn with_next(mut self, next: impl Into<String>) -> Self {
        self.next = Some(next.into());
        self
    }

    /// The one sentence the page gives under what happened: what to do now.
    pub fn next_step(&self) -> &str {
        if let Some(next) = &self.next {
            return next;
        }
        match self.status {
            400 => "Go back to the start page and log in again.",
            401 => {
                "Log in again; if this keeps happening, ask the identity provider's administrator to check this client's settings."
            }
            403 => "Go back to the page you came from, reload it and send the form again.",
            404 => "Go to the start page and follow its links.",
            405 => "Use the buttons and links of this app's pages.",
            413 | 414 | 431 => "Clear this site's cookies, then start again from the start page.",
            502 => {
                "Try again in a minute; if it keeps failing, an operator should check the identity provider and this app's log."
            }
            503 => {
                "Try again in a minute; if it keeps failing, an operator should check this app's log."
            }
            504 => {
                "Try again; if the identity provider is often this slow, an operator can raise `idp_timeout`."
            }
            _ => "Go back to the start page and try again.",
        }
    }

    /// Adds a detail for the log line.
    pub fn logged(mut self, detail: impl Into<String>) -> Self {
        self.log = Some(detail.into());
        self
    }

    /// Adds a `Set-Cookie` to the error page.
    pub fn with_cookie(mut self, cookie: String) -> Self {
        self.cookies.push(cookie);
        self
    }
}

impl From<crate::request::BadInput> for AppError {
    fn from(e: crate::request::BadInput) -> Self {
        AppError::bad_request(format!("Malformed request: {}.", e.0))
    }
}

/// What a handler returns.
pub type AppResult = Result<Response, AppError>;
