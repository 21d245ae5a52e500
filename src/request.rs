//! The incoming request as the app sees it, with the size limits applied
//! before any handler runs, and strict query/form parsing.

use crate::truncate::truncate;
use std::collections::HashMap;

/// Longest path plus query we accept (414 beyond).
pub const MAX_URI: usize = 4096;
/// Longest total `Cookie` header we accept (431 beyond).
pub const MAX_COOKIE_HEADER: usize = 8192;
/// Largest request body we read (413 beyond). Our forms are tiny; a logout token is a few KiB.
pub const MAX_BODY: usize = 32 * 1024;
/// Most parameters in a query or form.
const MAX_PARAMS: usize = 32;

/// A request as the app sees it, within the size limits.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Upper-case method name.
    pub method: String,
    /// Path relative to the app's route, always starting with `/`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Lower-case names; values that were not UTF-8 are dropped.
    pub headers: Vec<(String, String)>,
    /// At most [`MAX_BODY`] bytes.
    pub body: Vec<u8>,
}

/// A malformed query or form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(pub String);

/// A decoded query or form: one value per name.
pub type Params = HashMap<String, String>;

impl Request {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header named `name` (lower case).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query's parameters; a repeated or malformed one is an error.
    pub fn query_params(&self) -> Result<Params, BadInput> {
        parse_params(self.query.as_deref().unwrap_or("").as_bytes())
    }

    /// The body as an `application/x-www-form-urlencoded` form.
    pub fn form(&self) -> Result<Params, BadInput> {
        match self.header("content-type") {
            Some(ct)
                if ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded") => {}
            None if self.body.is_empty() => {}
            _ => {
                return Err(BadInput(
                    "expected an application/x-www-form-urlencoded form".into(),
                ));
            }
        }
        parse_params(&self.body)
    }
}

/// Parses `a=1&b=2` strictly: each name at most once, valid UTF-8 after decoding,
/// no control characters, a bounded number of parameters.
pub fn parse_params(input: &[u8]) -> Result<Params, BadInput> {
    let mut out = Params::new();
    for (k, v) in url::form_urlencoded::parse(input) {
        if k.contains('\u{FFFD}') || v.contains('\u{FFFD}') {
            return Err(BadInput("a parameter is not valid UTF-8".into()));
        }
        if k.chars()
            .chain(v.chars())
            .any(|c| c.is_control() && c != '\t')
        {
            return Err(BadInput("a parameter contains control characters".into()));
        }
        if out.len() >= MAX_PARAMS {
            return Err(BadInput("too many parameters".into()));
        }
        if out.insert(k.clone().into_owned(), v.into_owned()).is_some() {
            return Err(BadInput(format!(
                "parameter `{}` appears more than once",
                truncate(&k, 40)
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let p = parse_params(b"scope=openid+profile&state=a%2Fb").unwrap();
        assert_eq!(p["scope"], "openid profile");
        assert_eq!(p["state"], "a/b");
    }

    #[test]
    fn rejects_duplicates() {
        let e = parse_params(b"state=a&state=b").unwrap_err();
        assert!(e.0.contains("state"));
    }

    #[test]
    fn rejects_bad_utf8_and_controls() {
        assert!(parse_params(b"a=%FF").is_err());
        assert!(parse_params(b"a=%00").is_err());
        assert!(parse_params(b"a=x%0Ay").is_err());
    }

    #[test]
    fn rejects_too_many() {
        let q: Vec<String> = (0..40).map(|i| format!("p{i}=1")).collect();
        assert!(parse_params(q.join("&").as_bytes()).is_err());
    }

    #[test]
    fn form_requires_form_content_type() {
        let mut r = Request {
            body: b"a=1".to_vec(),
            ..Default::default()
        };
        assert!(r.form().is_err());
        r.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        ));
        assert_eq!(r.form().unwrap()["a"], "1");
    }
}
