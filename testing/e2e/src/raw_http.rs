//! HTTP/1.1 written byte by byte over a TCP socket, for requests an HTTP client
//! library would refuse to send or would "fix" (raw bytes in the target, a chunked body
//! of a chosen size): the sending stays hand-written on purpose. The response is
//! read to the end of the stream and parsed with `httparse`. One request per
//! connection (`Connection: close`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// A parsed response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::browser::first_header(&self.headers, name)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `head` (request line and headers, each line ending in CRLF, without the blank
/// line; `Host` and `Connection: close` are added) and `body` to 127.0.0.1:`port`, and
/// reads the whole response. The body is sent as is: add `Content-Length` or
/// `Transfer-Encoding` to `head` yourself (see [`chunked`]). A failure to write the
/// body (the server answered early and closed) is ignored; the response is still read.
pub fn send(port: u16, head: &str, body: &[u8]) -> std::io::Result<RawResponse> {
    let mut stream =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut request = head.as_bytes().to_vec();
    request.extend_from_slice(
        format!("Host: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    stream.write_all(&request)?;
    let _ = stream.write_all(body);
    let _ = stream.flush();
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A reset after the response arrived (the server closed with unread input).
        Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(e),
    }
    parse(&raw)
}

/// `body` as one chunk plus the last chunk, for `Transfer-Encoding: chunked`.
pub fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

fn parse(raw: &[u8]) -> std::io::Result<RawResponse> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut slots);
    let end = match head.parse(raw) {
        Ok(httparse::Status::Complete(end)) => end,
        Ok(httparse::Status::Partial) => {
            return Err(invalid(format!(
                "no complete response head in {} bytes",
                raw.len()
            )));
        }
        Err(e) => return Err(invalid(format!("bad response head: {e}"))),
    };
    let status = head.code.ok_or_else(|| invalid("no status code".into()))?;
    let headers: Vec<(String, String)> = head
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_string();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    let rest = &raw[end..];
    let is_chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if is_chunked {
        dechunk(rest)?
    } else if let Some(len) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// A chunked body (RFC 9112 7.1), trailers ignored.
fn dechunk(mut input: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let (start, size) = match httparse::parse_chunk_size(input) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Err(invalid("truncated chunk size".into())),
            Err(_) => return Err(invalid("bad chunk size".into())),
        };
        let size = usize::try_from(size).map_err(|_| invalid("huge chunk".into()))?;
        input = &input[start..];
        if size == 0 {
            return Ok(out);
        }
        if input.len() < size {
            return Err(invalid("truncated chunk".into()));
        }
        out.extend_from_slice(&input[..size]);
        input = input.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let r = parse(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nAllow: GET\r\n\r\nabcdef",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (413, &b"abc"[..]));
        assert_eq!(r.header("allow"), Some("GET"));
        let r = parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body, b"abcde");
        assert_eq!(chunked(b"hello"), b"5\r\nhello\r\n0\r\n\r\n");
    }
}
