//! How a failed request is shown: its status, its message on a page, its
//! detail in the log. Never the request's inputs.

use crate::config::Config;
use crate::log::log_line;
use crate::pages::{self, Header};
use crate::ports::Clock;
use crate::response::{AppError, Response};

/// Renders `e` as a page (with any cookies it sets) and logs its detail.
pub(crate) fn error_page(clock: &dyn Clock, cfg: Option<&Config>, e: AppError) -> Response {
    if let Some(detail) = &e.log {
        log_line!("error {}: {detail}", e.status);
    }
    let header = match cfg {
        Some(cfg) => Header {
            title: &cfg.client_title,
            pod: &cfg.pod_name,
            now: clock.now(),
        },
        None => Header {
            title: "Confidential Client",
            pod: "unconfigured",
            now: clock.now(),
        },
    };
    let page = pages::error(&header, e.status, &e.message, e.next_step());
    let mut response = Response::html(e.status, page);
    for cookie in e.cookies {
        response = response.with_cookie(cookie);
    }
    response
}
