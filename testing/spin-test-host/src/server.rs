//! The HTTP server: routes each request to its component, adds Spin's
//! headers, runs a fresh instance per request and logs one line per request.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::http::{Request, Response, StatusCode};
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
use crate::response_order::{AtHandover, SpinOrder};
use crate::routes::{Refusal, Router};

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

    /// Errors become a 500 and a log line, except where Spin gives hyper an
    /// error instead of a response ([`NoResponse`]).
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: SocketAddr,
    ) -> Result<Response<HyperOutgoingBody>, NoResponse> {
        let started = Instant::now();
        let method = req.method().clone();
        // Path only: a query may carry codes, tokens or state.
        let path = req.uri().path().to_owned();
        let response = match self.dispatch(req, client).await {
            Ok(response) => response,
            Err(e) => {
                eprintln!("{method} {path}: {e:#}");
                if let Some(&NoResponse(reason)) = e.downcast_ref::<NoResponse>() {
                    return Err(NoResponse(reason));
                }
                plain(StatusCode::INTERNAL_SERVER_ERROR, "")
            }
        };
        let order = response
            .extensions()
            .get::<AtHandover>()
            .map_or("", |o| o.label());
        // One write(2): stderr is unbuffered, and `eprintln!` would make one
        // per formatted piece, on every request.
        let line = format!(
            "{method} {path} {} {}ms {order}\n",
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
        crate::routes::strip_forbidden_headers(req.headers_mut());
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

        let uri = req.uri().clone();
        *req.uri_mut() =
            match crate::routes::prepare_request(&route, req.headers_mut(), &uri, client) {
                Ok(uri) => uri,
                Err(Refusal::NoResponse(reason)) => return Err(NoResponse(reason).into()),
                Err(Refusal::InternalError(reason)) => return Err(anyhow!(reason)),
            };

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
                // The head goes out before any body not yet written, as under Spin.
                let (parts, body) = response.into_parts();
                let (body, order) = SpinOrder::at_handover(body);
                let mut response = Response::from_parts(parts, body.boxed_unsync());
                response.extensions_mut().insert(order);
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

/// Where Spin's HTTP handler returns an error to hyper (crates/trigger-http/
/// src/server.rs, `set_req_uri`), which then closes the connection without
/// writing a response.
#[derive(Debug)]
pub struct NoResponse(&'static str);

impl std::fmt::Display for NoResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no response ({})", self.0)
    }
}

impl std::error::Error for NoResponse {}

fn plain(status: StatusCode, body: &'static str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(body.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}
