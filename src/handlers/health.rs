//! Probes. `/healthz` (in the router) is 200 whenever the component runs;
//! `/readyz` is 200 only when the configuration is valid and the store answers.

use crate::app::Platform;
use crate::config::{Config, ConfigError};
use crate::response::Response;

pub fn ready(p: &Platform, cfg: Result<&Config, &ConfigError>) -> Response {
    if let Err(e) = cfg {
        eprintln!("readyz: {e}");
        return Response::text(503, "not ready: configuration invalid\n");
    }
    match p.kv.exists("readyz") {
        Ok(_) => Response::text(200, "ready\n"),
        Err(e) => {
            eprintln!("readyz: {e}");
            Response::text(503, "not ready: key-value store unavailable\n")
        }
    }
}
