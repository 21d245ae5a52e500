//! The component's own work per request, counted rather than timed: the test
//! host run with `SPIN_TEST_HOST_FUEL` logs the wasm instructions (Wasmtime
//! fuel) each request executed. The count is the same on every run, so it
//! shows what a change to the component costs or saves where timings are noise.

use e2e::Browser;

use crate::report::Scenario;
use crate::server::Server;

const REQUESTS: usize = 20;

/// The median instruction count of each wrk scenario's request, from
/// `REQUESTS` sequential requests to `server` (started with the fuel on).
pub fn measure(server: &Server, cookie: &str) -> Vec<(Scenario, u64)> {
    let mut browser = Browser::new();
    for scenario in Scenario::WRK {
        let url = url::Url::parse(&server.url(scenario.path())).expect("a URL");
        let cookie = format!("oidc_session={cookie}");
        let headers: &[(&str, &str)] = match scenario {
            Scenario::User => &[("cookie", &cookie)],
            _ => &[],
        };
        for _ in 0..REQUESTS {
            browser
                .request("GET", &url, headers, None)
                .assert_status(200);
        }
    }
    let log = server.log();
    Scenario::WRK
        .into_iter()
        .filter_map(|s| Some((s, median(counts(&log, s.path()))?)))
        .collect()
}

/// The counts logged for `path` (`fuel <path> <n>` lines).
fn counts(log: &str, path: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| {
            let (p, n) = l.strip_prefix("fuel ")?.rsplit_once(' ')?;
            (p == path).then(|| n.parse().ok())?
        })
        .collect()
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hosts_fuel_lines() {
        let log = "GET /user 200 0ms\nfuel /user 9000\nfuel /readyz 100\nfuel /user 8000\n\
                   fuel /user 9500\nfuel /user x\nfuel / 50\n";
        assert_eq!(counts(log, "/user"), vec![9000, 8000, 9500]);
        assert_eq!(median(counts(log, "/user")), Some(9000));
        assert_eq!(counts(log, "/"), vec![50]);
        assert_eq!(median(counts(log, "/healthz")), None);
    }
}
