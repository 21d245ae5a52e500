//! The Spin entry point (wasm only): Spin's request in, the app's response out.

use crate::app;
use crate::config::{self, Config};
use crate::log::log_line;
use crate::platform::{
    SpinVariables, SystemClock, SystemRandom, kv::SpinKeyValue, outbound::WasiHttp,
};
use crate::request::{MAX_BODY, MAX_COOKIE_HEADER, MAX_URI, Request};
use crate::response::AppError;
use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

/// Takes the raw response handle: spin-sdk's `Response` keeps headers in a map,
/// which would drop all but one `Set-Cookie` (a login sets one and clears another).
#[http_component]
async fn handle(incoming: IncomingRequest, response_out: ResponseOutparam) {
    let vars = SpinVariables;
    let cfg = Config::load(&vars);
    let kv = SpinKeyValue::default();
    // Without a valid configuration no page calls the IdP; the probes and
    // error pages still work, so the component still answers.
    let http = WasiHttp {
        timeout: std::time::Duration::from_secs(
            cfg.as_ref()
                .map_or(config::DEFAULT_IDP_TIMEOUT_SECS, |c| c.idp_timeout_secs),
        ),
    };
    let p = app::Platform {
        vars: &vars,
        kv: &kv,
        http: &http,
        clock: &SystemClock,
        rng: &SystemRandom,
    };
    let response = match read(incoming).await {
        Ok(request) => app::handle_configured(&request, cfg.as_ref(), &p),
        Err(e) => app::reject(&p, cfg.as_ref(), e),
    };
    send(response, response_out);
}

/// Hands the response to the host with its body already complete.
///
/// Spin's HTTP server writes the head as soon as the response is handed over
/// and does not set `TCP_NODELAY`; a body written after that goes out as a
/// second small segment, which waits for the client's delayed ACK (40 ms on
/// Linux). So the body is written and finished first, with `Content-Length`,
/// and head and body leave together. The host buffers one write of up to its
/// chunk size (1 MiB in wasmtime-wasi-http's defaults, which Spin keeps) before
/// anyone reads it; a larger body is streamed after handing over instead.
fn send(response: crate::response::Response, response_out: ResponseOutparam) {
    let mut headers: Vec<(String, Vec<u8>)> = response
        .headers
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    headers.push((
        "content-length".into(),
        response.body.len().to_string().into_bytes(),
    ));
    let fields = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
    let out = OutgoingResponse::new(fields);
    let _ = out.set_status_code(response.status);
    let Ok(body) = out.body() else {
        return;
    };
    let Ok(stream) = body.write() else {
        return;
    };
    let len = response.body.len() as u64;
    let whole_first = stream.check_write().is_ok_and(|budget| budget >= len)
        && (len == 0 || stream.write(&response.body).is_ok())
        && stream.flush().is_ok();
    if whole_first {
        drop(stream);
        finish(body);
        response_out.set(out);
        return;
    }
    // Larger than the host buffers before the response is handed over.
    response_out.set(out);
    for chunk in response.body.chunks(4096) {
        if let Err(e) = stream.blocking_write_and_flush(chunk) {
            log_line!("could not send the response body: {e}");
            return;
        }
    }
    drop(stream);
    finish(body);
}

fn finish(body: OutgoingBody) {
    if let Err(e) = OutgoingBody::finish(body, None) {
        log_line!("could not finish the response body: {e:?}");
    }
}

/// Reads the request, enforcing the URI, cookie and body limits before any handler runs.
async fn read(incoming: IncomingRequest) -> Result<Request, AppError> {
    let target = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
    if target.len() > MAX_URI {
        return Err(AppError::new(414, "The address is too long."));
    }
    let mut headers = Vec::new();
    for (name, value) in incoming.headers().entries() {
        if let Ok(value) = String::from_utf8(value) {
            headers.push((name.to_ascii_lowercase(), value));
        }
    }
    let cookie_bytes: usize = headers
        .iter()
        .filter(|(k, _)| k == "cookie")
        .map(|(_, v)| v.len())
        .sum();
    if cookie_bytes > MAX_COOKIE_HEADER {
        return Err(AppError::new(431, "The request's cookies are too large."));
    }
    let declared = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(AppError::new(413, "The request body is too large."));
    }
    let method = incoming.method().to_string().to_ascii_uppercase();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.clone(), None),
    };
    // Spin tells us the path relative to the component's route. It appends its
    // `spin-*` headers after the client's own (crates/trigger-http), so only the
    // last one is Spin's: a client's copy must not choose the page.
    let path = headers
        .iter()
        .rev()
        .find(|(k, _)| k == "spin-path-info")
        .map(|(_, v)| v.clone())
        .filter(|p| p.starts_with('/'))
        .unwrap_or(path);
    let mut body = Vec::new();
    let mut stream = incoming.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| AppError::bad_request("The request body could not be read."))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(AppError::new(413, "The request body is too large."));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}
