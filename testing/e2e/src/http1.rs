//! Reading HTTP/1.1 requests, for the harness's own small servers (the echo
//! server and the fake IdP): a request line, headers, and a `Content-Length` or
//! chunked body. Anything malformed ends the connection (`None`).

use std::collections::BTreeMap;
use std::io::BufRead;

/// The largest body these servers read; more ends the connection.
const MAX_BODY: usize = 1024 * 1024;

/// One request as read from the wire.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// Header names lowercased; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// Whether the client asked to keep the connection open (HTTP/1.1 without
    /// `Connection: close`).
    pub keep_alive: bool,
}

/// Reads the next request; None at end of stream or on malformed input.
pub fn read_request(reader: &mut impl BufRead) -> Option<RawRequest> {
    let request_line = read_line(reader)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let version = parts.next().unwrap_or("HTTP/1.0").to_string();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let line = read_line(reader)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers
                .entry(k.trim().to_ascii_lowercase())
                .and_modify(|e| {
                    e.push_str(", ");
                    e.push_str(v.trim());
                })
                .or_insert_with(|| v.trim().to_string());
        }
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let length: usize = match headers.get("content-length") {
            Some(l) => l.parse().ok()?,
            None => 0,
        };
        if length > MAX_BODY {
            return None;
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).ok()?;
        body
    };
    let keep_alive = version == "HTTP/1.1"
        && !headers
            .get("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
    Some(RawRequest {
        method,
        target,
        headers,
        body,
        keep_alive,
    })
}

/// One line, None at end of stream.
fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match reader.read_line(&mut line).ok()? {
        0 => None,
        _ => Some(line),
    }
}

/// A chunked body (RFC 9112 7.1); trailers are skipped.
fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(reader)?;
        let size = usize::from_str_radix(size_line.trim().split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            loop {
                if read_line(reader)?.trim_end().is_empty() {
                    return Some(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return None;
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> Option<RawRequest> {
        read_request(&mut raw.as_bytes())
    }

    #[test]
    fn content_length_body_and_joined_headers() {
        let r = read(
            "POST /token?x=1 HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 3\r\n\r\nabcNEXT",
        )
        .unwrap();
        assert_eq!(
            (r.method.as_str(), r.target.as_str()),
            ("POST", "/token?x=1")
        );
        assert_eq!(r.headers["x-a"], "1, 2");
        assert_eq!(r.body, b"abc");
        assert!(r.keep_alive);
    }

    #[test]
    fn chunked_body_with_trailer() {
        let r = read("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n")
            .unwrap();
        assert_eq!(r.body, b"abcde");
    }

    #[test]
    fn connection_close_and_http_1_0_do_not_keep_alive() {
        assert!(
            !read("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(!read("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
    }

    #[test]
    fn malformed_or_truncated_input_ends_the_connection() {
        assert!(read("").is_none());
        assert!(read("GET / HTTP/1.1\r\nHost: x\r\n").is_none());
        assert!(read("POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n").is_none());
        assert!(read("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab").is_none());
        assert!(read("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_none());
    }
}
