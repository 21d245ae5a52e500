//! A browser-like HTTP client: a per-origin cookie jar, redirects followed one hop at a
//! time (never automatically), form posts with an `Origin` header.

use std::time::Duration;

use url::Url;

use crate::cookies::{Cookie, CookieJar};
use crate::html::{self, Form};

/// A response, with the request that produced it.
#[derive(Debug, Clone)]
pub struct Response {
    pub method: String,
    pub url: Url,
    pub status: u16,
    /// Every header line, names lowercased, in order (repeated names repeated).
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The form fields that were posted, when the request was a form POST.
    pub posted: Option<Vec<(String, String)>>,
}

/// The first value of header `name` (case-insensitive) in header lines whose
/// names are lowercased.
pub fn first_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    /// Every value of header `name`.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308)
    }

    /// The `Location` header resolved against the request URL.
    pub fn location(&self) -> Option<Url> {
        let raw = self.header("location")?;
        Some(self.url.join(raw).unwrap_or_else(|e| {
            panic!(
                "Location {raw:?} does not resolve against {}: {e}",
                self.url
            )
        }))
    }

    /// The `Location`, panicking (with the response) when there is none.
    pub fn expect_location(&self) -> Url {
        self.location()
            .unwrap_or_else(|| panic!("expected a redirect, got {}", self.describe()))
    }

    /// A query parameter of the `Location`.
    pub fn location_param(&self, name: &str) -> Option<String> {
        self.location()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The parsed `Set-Cookie` headers.
    pub fn set_cookies(&self) -> Vec<Cookie> {
        self.headers_named("set-cookie")
            .into_iter()
            .filter_map(|h| Cookie::parse(h, &self.url))
            .collect()
    }

    /// The `Set-Cookie` for cookie `name`, if this response sets (or deletes) it.
    pub fn set_cookie(&self, name: &str) -> Option<Cookie> {
        self.set_cookies().into_iter().find(|c| c.name == name)
    }

    /// The forms of the page.
    pub fn forms(&self) -> Vec<Form> {
        html::forms(&self.body, &self.url)
    }

    /// The form whose action's path is `path` (e.g. "/logout"); panics when none is.
    pub fn form_with_action_path(&self, path: &str) -> Form {
        self.forms()
            .into_iter()
            .find(|f| f.action.path() == path)
            .unwrap_or_else(|| panic!("no form posting to {path} in {}", self.describe()))
    }

    /// The text of the element with `id`.
    pub fn text_by_id(&self, id: &str) -> Option<String> {
        html::text_by_id(&self.body, id)
    }

    /// The text of `<p class="error">` (the component's error pages).
    pub fn error_message(&self) -> Option<String> {
        html::text_by_class(&self.body, "error").map(|t| t.trim().to_string())
    }

    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.describe()))
    }

    /// One line plus a body excerpt, for assertion messages.
    pub fn describe(&self) -> String {
        let mut body: String = self.body.chars().take(1500).collect();
        if body.len() < self.body.len() {
            body.push_str("...");
        }
        let location = self
            .header("location")
            .map(|l| format!(" Location: {l}"))
            .unwrap_or_default();
        let error = self
            .error_message()
            .map(|e| format!(" error: {e:?}"))
            .unwrap_or_default();
        format!(
            "{} {} -> {}{location}{error}\n{body}",
            self.method, self.url, self.status
        )
    }

    /// Panics unless the status is `status`.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Response {
        assert_eq!(
            self.status,
            status,
            "unexpected status: {}",
            self.describe()
        );
        self
    }

    /// Panics unless this is a redirect with status `status` whose Location starts with
    /// `prefix`; returns the Location.
    #[track_caller]
    pub fn assert_redirect(&self, status: u16, prefix: &str) -> Url {
        self.assert_status(status);
        let location = self.expect_location();
        assert!(
            location.as_str().starts_with(prefix),
            "expected a redirect to {prefix}..., got {}",
            self.describe()
        );
        location
    }
}

/// The error of a request that got no HTTP response (connection refused, timeout, ...).
#[derive(Debug)]
pub struct RequestError {
    pub method: String,
    pub url: String,
    pub error: String,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.method, self.url, self.error)
    }
}

impl std::error::Error for RequestError {}

/// A browser: cookies per origin, manual redirects, `Origin` on POSTs.
pub struct Browser {
    agent: ureq::Agent,
    pub jar: CookieJar,
    /// Headers added to every request (e.g. `X-Forwarded-Proto`).
    pub extra_headers: Vec<(String, String)>,
    pub user_agent: String,
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

/// Encodes form fields as `application/x-www-form-urlencoded`.
pub fn form_urlencode<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        serializer.append_pair(k.as_ref(), v.as_ref());
    }
    serializer.finish()
}

fn parse_url(url: &str) -> Url {
    Url::parse(url).unwrap_or_else(|e| panic!("bad URL {url:?}: {e}"))
}

impl Browser {
    pub fn new() -> Browser {
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Browser {
            agent,
            jar: CookieJar::new(),
            extra_headers: Vec::new(),
            user_agent: "e2e-browser/1 (like Mozilla/5.0)".to_string(),
        }
    }

    /// Sends a request: `Cookie` from the jar, `Set-Cookie` into the jar, no redirects
    /// followed. Errs only when there is no HTTP response at all.
    pub fn try_request(
        &mut self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, RequestError> {
        // The per-request headers win over the browser's extra headers, which win over
        // its defaults.
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
            .collect();
        let mut add = |name: &str, value: &str| {
            let name = name.to_ascii_lowercase();
            if !all.iter().any(|(n, _)| *n == name) {
                all.push((name, value.to_string()));
            }
        };
        for (name, value) in &self.extra_headers {
            add(name, value);
        }
        add("user-agent", &self.user_agent);
        add(
            "accept",
            "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
        );
        if let Some(cookie) = self.jar.header_for(url) {
            add("cookie", &cookie);
        }
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(url.as_str());
        for (name, value) in &all {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let err = |e: String| RequestError {
            method: method.to_string(),
            url: url.to_string(),
            error: e,
        };
        let result = match body {
            Some((content_type, bytes)) => {
                let request = builder
                    .header("content-type", content_type)
                    .body(bytes)
                    .map_err(|e| err(e.to_string()))?;
                self.agent.run(request)
            }
            None => {
                let request = builder.body(()).map_err(|e| err(e.to_string()))?;
                self.agent.run(request)
            }
        };
        let mut response = result.map_err(|e| err(e.to_string()))?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| err(format!("reading the body: {e}")))?;
        let response = Response {
            method: method.to_string(),
            url: url.clone(),
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            posted: None,
        };
        let set_cookies: Vec<String> = response
            .headers_named("set-cookie")
            .into_iter()
            .map(str::to_string)
            .collect();
        self.jar.store(url, &set_cookies);
        Ok(response)
    }

    /// [`Browser::try_request`], panicking when there is no response.
    pub fn request(
        &mut self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Response {
        self.try_request(method, url, headers, body)
            .unwrap_or_else(|e| panic!("request failed: {e}"))
    }

    /// GET `url`.
    pub fn get(&mut self, url: &str) -> Response {
        let url = parse_url(url);
        self.request("GET", &url, &[], None)
    }

    /// GET `url` without panicking when nothing answers.
    pub fn try_get(&mut self, url: &str) -> Result<Response, RequestError> {
        let url = parse_url(url);
        self.try_request("GET", &url, &[], None)
    }

    /// POSTs a form to `url` from a page of the same origin (`Origin` is the origin of
    /// `url`).
    pub fn post_form<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        url: &str,
        fields: &[(K, V)],
    ) -> Response {
        let url = parse_url(url);
        let origin = url.origin().ascii_serialization();
        self.post_form_from(Some(&origin), &url, fields)
    }

    /// POSTs a form with the given `Origin` header (None: no `Origin` header at all).
    pub fn post_form_from<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        origin: Option<&str>,
        url: &Url,
        fields: &[(K, V)],
    ) -> Response {
        let body = form_urlencode(fields).into_bytes();
        let mut headers = Vec::new();
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        let mut response = self.request(
            "POST",
            url,
            &headers,
            Some(("application/x-www-form-urlencoded", body)),
        );
        response.posted = Some(
            fields
                .iter()
                .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
                .collect(),
        );
        response
    }

    /// Submits `form` as a browser does from the page at `page` (its origin is sent as
    /// `Origin` on POST); GET forms put the fields in the query.
    pub fn submit_from(
        &mut self,
        page: &Url,
        form: &Form,
        fields: &[(String, String)],
    ) -> Response {
        if form.method == "GET" {
            let mut target = form.action.clone();
            target.set_query(Some(&form_urlencode(fields)));
            self.request("GET", &target, &[], None)
        } else {
            let origin = page.origin().ascii_serialization();
            self.post_form_from(Some(&origin), &form.action, fields)
        }
    }

    /// Submits `form`, found in `page`, with its current fields.
    pub fn submit(&mut self, page: &Response, form: &Form) -> Response {
        self.submit_from(&page.url, form, &form.fields)
    }

    /// Submits `form`, found in `page`, clicking the button named `button`.
    pub fn submit_clicking(&mut self, page: &Response, form: &Form, button: &str) -> Response {
        let fields = form.fields_clicking(button);
        self.submit_from(&page.url, form, &fields)
    }

    /// Follows one redirect: GET the Location for 301/302/303; the same method and
    /// body for 307/308. Panics when `response` is not a redirect.
    pub fn follow(&mut self, response: &Response) -> Response {
        assert!(
            response.is_redirect(),
            "expected a redirect, got {}",
            response.describe()
        );
        let target = response.expect_location();
        match (response.status, &response.posted) {
            (307 | 308, Some(fields)) => {
                // A browser sends `Origin: null` when a redirected POST crosses origins.
                let same = target.origin() == response.url.origin();
                let origin = if same {
                    response.url.origin().ascii_serialization()
                } else {
                    "null".to_string()
                };
                self.post_form_from(Some(&origin), &target, fields)
            }
            _ => self.request("GET", &target, &[], None),
        }
    }

    /// Follows redirects until a response that is not one (at most `max` hops); returns
    /// every response, the given one first and the final one last.
    pub fn follow_all(&mut self, response: Response, max: usize) -> Vec<Response> {
        let mut hops = vec![response];
        while hops.last().unwrap().is_redirect() {
            assert!(
                hops.len() <= max,
                "more than {max} redirects: {:?}",
                hops.iter().map(|r| r.url.as_str()).collect::<Vec<_>>()
            );
            let next = self.follow(hops.last().unwrap());
            hops.push(next);
        }
        hops
    }

    /// Follows redirects and returns the final response.
    pub fn follow_to_end(&mut self, response: Response) -> Response {
        self.follow_all(response, 20).pop().unwrap()
    }

    /// The value of cookie `name` for the origin of `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.jar.value(&parse_url(url), name)
    }
}
