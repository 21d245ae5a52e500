//! Outgoing HTTP over `wasi:http/outgoing-handler`, with the timeouts and the
//! response-size cap we want for every call to the IdP. (spin-sdk's `send`
//! offers neither, so this drives the WASI interface directly.)

use crate::ports::{HttpClient, HttpError, HttpRequest, HttpResponse, MAX_IDP_RESPONSE};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use std::time::Duration;

pub(crate) struct WasiHttp {
    pub(crate) timeout: Duration,
}

fn other(what: &str) -> HttpError {
    HttpError::Other(what.to_owned())
}

fn map_code(code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => HttpError::Timeout,
        ErrorCode::HttpRequestDenied => HttpError::Denied,
        ErrorCode::ConnectionRefused => HttpError::Unreachable("connection refused".into()),
        ErrorCode::DnsError(_) => HttpError::Unreachable("DNS lookup failed".into()),
        ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_)
        | ErrorCode::TlsProtocolError => HttpError::Unreachable("TLS failed".into()),
        ErrorCode::HttpResponseBodySize(_) => HttpError::TooLarge,
        other => HttpError::Unreachable(format!("{other:?}").chars().take(80).collect()),
    }
}

/// The `Content-Length` to add to a request that does not carry one. Spin's
/// outbound HTTP sends a body of unknown length chunked (crates/factor-outbound-http,
/// which frames the body from the guest's stream), and some IdPs and gateways
/// refuse chunked token requests; every body here is complete in memory, so
/// its length is always known.
fn content_length(headers: &http::HeaderMap, method: &http::Method, len: usize) -> Option<String> {
    let has_body = len > 0 || *method == http::Method::POST;
    (has_body && !headers.contains_key(http::header::CONTENT_LENGTH)).then(|| len.to_string())
}

impl HttpClient for WasiHttp {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let scheme = match parts.uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            _ => return Err(other("unsupported URL scheme")),
        };
        let method = match parts.method.as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            _ => return Err(other("unsupported method")),
        };
        let headers = Fields::new();
        if let Some(length) = content_length(&parts.headers, &parts.method, body.len()) {
            headers
                .append("content-length", length.as_bytes())
                .map_err(|_| other("invalid header"))?;
        }
        for (name, value) in &parts.headers {
            headers
                .append(name.as_str(), value.as_bytes())
                .map_err(|_| other("invalid header"))?;
        }
        let outgoing = OutgoingRequest::new(headers);
        outgoing
            .set_method(&method)
            .map_err(|_| other("invalid method"))?;
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|_| other("invalid scheme"))?;
        outgoing
            .set_authority(parts.uri.authority().map(|a| a.as_str()))
            .map_err(|_| other("invalid authority"))?;
        outgoing
            .set_path_with_query(Some(
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/"),
            ))
            .map_err(|_| other("invalid path"))?;
        let outgoing_body = outgoing.body().map_err(|_| other("body unavailable"))?;

        let nanos = self.timeout.as_nanos().min(u64::MAX as u128) as u64;
        let options = RequestOptions::new();
        // A host may not support every option; the ones it does bound the call.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));

        // The body is written and finished before the request is handed over:
        // Spin pools connections without `TCP_NODELAY`, so a body written after
        // the head leaves as a second segment that waits for the IdP's delayed
        // ACK (40 ms per call). The host buffers one write of up to its chunk
        // size before anyone reads; a larger body is streamed after hand-over.
        let stream = outgoing_body
            .write()
            .map_err(|_| other("body stream unavailable"))?;
        let whole_first = stream
            .check_write()
            .is_ok_and(|budget| budget >= body.len() as u64)
            && (body.is_empty() || stream.write(&body).is_ok())
            && stream.flush().is_ok();
        let future = if whole_first {
            drop(stream);
            OutgoingBody::finish(outgoing_body, None).map_err(map_code)?;
            outgoing_handler::handle(outgoing, Some(options)).map_err(map_code)?
        } else {
            let future = outgoing_handler::handle(outgoing, Some(options)).map_err(map_code)?;
            for chunk in body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|_| other("could not send the request body"))?;
            }
            drop(stream);
            OutgoingBody::finish(outgoing_body, None).map_err(map_code)?;
            future
        };

        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(code))) => return Err(map_code(code)),
            _ => return Err(other("no response")),
        };

        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers().entries() {
            builder = builder.header(name, value);
        }
        let incoming = response
            .consume()
            .map_err(|_| other("response body unavailable"))?;
        let mut bytes = Vec::new();
        {
            let stream = incoming
                .stream()
                .map_err(|_| other("response stream unavailable"))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => {
                        if bytes.len() + chunk.len() > MAX_IDP_RESPONSE {
                            return Err(HttpError::TooLarge);
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Err(wasi::io::streams::StreamError::Closed) => break,
                    Err(_) => {
                        return Err(HttpError::Unreachable("the response was cut off".into()));
                    }
                }
            }
        }
        drop(IncomingBody::finish(incoming));
        builder.body(bytes).map_err(|_| other("invalid response"))
    }
}

#[cfg(test)]
mod tests {
    use super::content_length;
    use http::{HeaderMap, HeaderValue, Method};

    #[test]
    fn every_post_and_every_body_gets_its_length() {
        let none = HeaderMap::new();
        assert_eq!(
            content_length(&none, &Method::POST, 42).as_deref(),
            Some("42")
        );
        assert_eq!(
            content_length(&none, &Method::POST, 0).as_deref(),
            Some("0")
        );
        assert_eq!(content_length(&none, &Method::GET, 0), None);
        let mut given = HeaderMap::new();
        given.insert("content-length", HeaderValue::from_static("42"));
        assert_eq!(
            content_length(&given, &Method::POST, 42),
            None,
            "never twice"
        );
    }
}
