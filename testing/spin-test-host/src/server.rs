//! The HTTP server: routes each request to its component, adds Spin's
//! headers, runs a fresh instance per request and logs one line per request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::http::{self, HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use tokio::net::TcpListener;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::host::{ComponentConfig, HostState};
use crate::routes::Router;

/// A pre-instantiated component and what its requests share.
pub struct PreparedComponent {
    pub pre: ProxyPre<HostState>,
    pub config: Arc<ComponentConfig>,
}

pub struct Server {
    pub router: Router,
    pub components: HashMap<String, PreparedComponent>,
}

impl Server {
    /// Accepts connections until `shutdown` completes.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let (stream, client) = tokio::select! {
                _ = &mut shutdown => return,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        eprintln!("accept failed: {e}");
                        continue;
                    }
                },
            };
            let server = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| server.clone().handle(req, client));
                if let Err(e) = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    eprintln!("connection from {client}: {e}");
                }
            });
        }
    }

    /// Never fails: errors become a 500 and a log line.
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: SocketAddr,
    ) -> Result<Response<HyperOutgoingBody>, Infallible> {
        let started = Instant::now();
        let method = req.method().clone();
        // Path only: a query may carry codes, tokens or state.
        let path = req.uri().path().to_owned();
        let response = self.dispatch(req, client).await.unwrap_or_else(|e| {
            eprintln!("{method} {path}: {e:#}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "")
        });
        // One write(2): stderr is unbuffered, and `eprintln!` would make one
        // per formatted piece, on every request.
        let line = format!(
            "{method} {path} {} {}ms\n",
            response.status().as_u16(),
            started.elapsed().as_millis()
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
        Ok(response)
    }

    async fn dispatch(
        &self,
        mut req: Request<Incoming>,
        client: SocketAddr,
    ) -> Result<Response<HyperOutgoingBody>> {
        let path = req.uri().path().to_owned();
        if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
            return Ok(match well_known {
                "health" => plain(StatusCode::OK, "OK"),
                _ => plain(StatusCode::NOT_FOUND, ""),
            });
        }
        let Some(route) = self.router.route(&path) else {
            return Ok(plain(StatusCode::NOT_FOUND, ""));
        };
        let component = self
            .components
            .get(route.component())
            .ok_or_else(|| anyhow!("no component {:?}", route.component()))?;

        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok());
        let Some((full_url, uri)) = absolute_uri(host, req.uri()) else {
            return Ok(plain(
                StatusCode::BAD_REQUEST,
                "missing or invalid Host header",
            ));
        };
        for (name, value) in route.spin_headers(full_url, client) {
            req.headers_mut()
                .insert(HeaderName::from_static(name), HeaderValue::try_from(value)?);
        }
        *req.uri_mut() = uri;

        self.run_guest(component, req).await
    }

    /// Runs the guest's `incoming-handler` in a fresh instance. The guest may
    /// keep streaming the body after the response head is returned.
    async fn run_guest(
        &self,
        component: &PreparedComponent,
        req: Request<Incoming>,
    ) -> Result<Response<HyperOutgoingBody>> {
        let mut store = Store::new(
            component.pre.engine(),
            HostState::new(component.config.clone()),
        );
        let metered = crate::compile::metering_fuel().then(|| req.uri().path().to_owned());
        if metered.is_some() {
            store.set_fuel(u64::MAX)?;
        }
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = component.pre.clone();

        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            let handled = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await;
            if let Some(path) = metered
                && let Ok(left) = store.get_fuel()
            {
                eprintln!("fuel {path} {}", u64::MAX - left);
            }
            handled
        });

        match receiver.await {
            Ok(Ok(response)) => {
                // Report a trap after the head was sent (e.g. mid-body).
                tokio::spawn(async move {
                    if let Ok(Err(e)) = task.await {
                        eprintln!("guest failed after responding: {e:?}");
                    }
                });
                Ok(response)
            }
            Ok(Err(code)) => Err(anyhow!("guest responded with error {code:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(anyhow!("guest did not set a response")),
                Ok(Err(e)) => Err(anyhow::Error::from(e).context("guest failed")),
                Err(e) => Err(anyhow!("guest task failed: {e}")),
            },
        }
    }
}

/// The absolute URI the guest sees, built from the Host header as Spin does.
fn absolute_uri(host: Option<&str>, uri: &http::Uri) -> Option<(String, http::Uri)> {
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let host = host.filter(|h| !h.is_empty())?;
    let full_url = format!("http://{host}{path_and_query}");
    let parsed = full_url.parse::<http::Uri>().ok()?;
    // The whole header must be the authority (no smuggled path or userinfo).
    (parsed.authority()?.as_str() == host && !host.contains('@')).then_some((full_url, parsed))
}

fn plain(status: StatusCode, body: &'static str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(body.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_uri_comes_from_the_host_header() {
        let uri: http::Uri = "/cb?code=1&state=2".parse().unwrap();
        let (full, parsed) = absolute_uri(Some("app.test:8080"), &uri).unwrap();
        assert_eq!(full, "http://app.test:8080/cb?code=1&state=2");
        assert_eq!(parsed.authority().unwrap().as_str(), "app.test:8080");
        assert_eq!(parsed.path(), "/cb");

        assert!(absolute_uri(None, &uri).is_none());
        assert!(absolute_uri(Some(""), &uri).is_none());
        assert!(absolute_uri(Some("bad host"), &uri).is_none());
        assert!(absolute_uri(Some("evil/x"), &uri).is_none());
    }
}
