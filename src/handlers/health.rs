//! Probes. `/healthz` (in the router) is 200 whenever the component runs;
//! `/readyz` is 200 only when the configuration is valid (with
//! `private_key_jwt`, the key fully parsed) and the store answers.

use crate::config::{Config, ConfigError};
use crate::log::log_line;
use crate::ports::KeyValue;
use crate::response::Response;

pub(crate) fn ready(kv: &dyn KeyValue, cfg: Result<&Config, &ConfigError>) -> Response {
    // Loading checks `client_private_key` only cheaply; ready means usable.
    let problem = match cfg {
        Err(e) => Some(e.clone()),
        Ok(cfg) => cfg.client_auth.signing_key().and_then(Result::err),
    };
    if let Some(e) = problem {
        log_line!("readyz: {e}");
        return Response::text(503, "not ready: configuration invalid\n");
    }
    match kv.exists("readyz") {
        Ok(_) => Response::text(200, "ready\n"),
        Err(e) => {
            log_line!("readyz: {e}");
            Response::text(503, "not ready: key-value store unavailable\n")
        }
    }
}
