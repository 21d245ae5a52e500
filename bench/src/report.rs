//! The results as markdown: one table of runs, start times, the ratios to the
//! floors and whether each target of issue 6 was met.

use std::fmt::Write;
use std::time::Duration;

use crate::measure::Measurement;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `GET /healthz`: routing and nothing else, the no-op floor.
    Healthz,
    /// `GET /readyz`: one key-value operation, the one-read floor.
    Readyz,
    /// `GET /` without a session cookie.
    Home,
    /// `GET /user` with a valid session: the hot path.
    User,
    /// The whole login round trip through the IdP.
    Login,
}

impl Scenario {
    pub const WRK: [Scenario; 4] = [
        Scenario::Healthz,
        Scenario::Readyz,
        Scenario::Home,
        Scenario::User,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Scenario::Healthz => "GET /healthz (no-op floor)",
            Scenario::Readyz => "GET /readyz (one-read floor)",
            Scenario::Home => "GET / (no cookie)",
            Scenario::User => "GET /user (logged in)",
            Scenario::Login => "login round trip (logins/s)",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Scenario::Healthz => "/healthz",
            Scenario::Readyz => "/readyz",
            Scenario::Home => "/",
            Scenario::User => "/user",
            Scenario::Login => "/login",
        }
    }
}

/// Where the component's `default` store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// v2: the runtime's own store (the test host: in memory).
    Local,
    /// v3: Redis through the runtime config.
    Redis,
}

impl Store {
    pub fn label(self) -> &'static str {
        match self {
            Store::Local => "v2 local",
            Store::Redis => "v3 Redis",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub runtime: &'static str,
    pub store: Store,
    pub scenario: Scenario,
    pub connections: u32,
    /// The median round (errors: all rounds').
    pub measured: Measurement,
    /// Requests per second of every round, in the order they ran.
    pub round_rates: Vec<f64>,
    /// Peak resident memory of the server during the run, in bytes.
    pub rss_peak: u64,
}

#[derive(Debug, Clone)]
pub struct StartTime {
    pub runtime: &'static str,
    pub what: String,
    pub took: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    /// `key: value` lines about the machine, the build and the settings.
    pub about: Vec<(String, String)>,
    pub wasm_bytes: u64,
    pub rows: Vec<Row>,
    pub starts: Vec<StartTime>,
    /// (run, Redis commands per request) for the v3 runs.
    pub store_ops: Vec<(String, String)>,
    /// Wasm instructions the component executes per request (Wasmtime fuel).
    pub fuel: Vec<(Scenario, u64)>,
}

/// Issue 6's targets.
pub const USER_OVER_ONE_READ: f64 = 0.85;
pub const USER_P99_OVER_ONE_READ_P99: f64 = 1.5;
/// At one connection (one browser) every route answers within this at p99:
/// a response whose body trails its head waits 40 ms for a delayed ACK.
pub const P99_AT_ONE_CONNECTION: std::time::Duration = std::time::Duration::from_millis(5);
pub const HOME_OVER_NO_OP: f64 = 0.9;
pub const WASM_LIMIT_BYTES: u64 = 1_500_000;

impl Report {
    fn find(&self, runtime: &str, store: Store, scenario: Scenario, c: u32) -> Option<&Row> {
        self.rows.iter().find(|r| {
            r.runtime == runtime && r.store == store && r.scenario == scenario && r.connections == c
        })
    }

    /// (runtime, store) pairs in the order they were measured.
    fn stacks(&self) -> Vec<(&'static str, Store)> {
        let mut seen = Vec::new();
        for r in &self.rows {
            if !seen.contains(&(r.runtime, r.store)) {
                seen.push((r.runtime, r.store));
            }
        }
        seen
    }

    fn connection_counts(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self.rows.iter().map(|r| r.connections).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Every target as (description, met).
    pub fn targets(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let errors: u64 = self.rows.iter().map(|r| r.measured.errors).sum();
        out.push((
            format!("zero errors in every run (saw {errors})"),
            errors == 0,
        ));
        out.push((
            format!(
                "release .wasm under 1.5 MB ({:.2} MB)",
                self.wasm_bytes as f64 / 1e6
            ),
            self.wasm_bytes < WASM_LIMIT_BYTES,
        ));
        let max_c = self.connection_counts().last().copied().unwrap_or(0);
        for (runtime, store) in self.stacks() {
            let stack = format!("{runtime}, {}", store.label());
            for c in self.connection_counts() {
                let get = |s| self.find(runtime, store, s, c);
                let at = format!("{stack}, {c} conn");
                if c == 1 {
                    for scenario in Scenario::WRK {
                        if let Some(row) = get(scenario) {
                            let p99 = row.measured.p99;
                            out.push((
                                format!(
                                    "{at}: {} p99 {p99:.2?} (< {P99_AT_ONE_CONNECTION:?})",
                                    scenario.label()
                                ),
                                p99 < P99_AT_ONE_CONNECTION,
                            ));
                        }
                    }
                }
                if let (Some(user), Some(read)) = (get(Scenario::User), get(Scenario::Readyz)) {
                    out.push(rate_target(
                        &at,
                        "/user ÷ /readyz",
                        user,
                        read,
                        USER_OVER_ONE_READ,
                    ));
                    if c == max_c {
                        let p99 = user.measured.p99.as_secs_f64()
                            / read.measured.p99.as_secs_f64().max(1e-9);
                        out.push((
                            format!("{at}: /user p99 ÷ /readyz p99 = {p99:.2} (≤ {USER_P99_OVER_ONE_READ_P99})"),
                            p99 <= USER_P99_OVER_ONE_READ_P99,
                        ));
                    }
                }
                if let (Some(home), Some(noop)) = (get(Scenario::Home), get(Scenario::Healthz)) {
                    out.push(rate_target(
                        &at,
                        "/ ÷ /healthz",
                        home,
                        noop,
                        HOME_OVER_NO_OP,
                    ));
                }
            }
        }
        out
    }

    /// `/user ÷ /healthz` (the no-op floor) per stack and connection count.
    pub fn user_over_floor(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for (runtime, store) in self.stacks() {
            for c in self.connection_counts() {
                let get = |s| self.find(runtime, store, s, c);
                if let (Some(user), Some(noop)) = (get(Scenario::User), get(Scenario::Healthz)) {
                    out.push((
                        format!("{runtime}, {}, {c} conn", store.label()),
                        user.measured.rate() / noop.measured.rate(),
                    ));
                }
            }
        }
        out
    }

    /// Instructions per request, and their ratio to `/readyz`'s.
    pub fn fuel_table(&self) -> String {
        let mut md = String::from(
            "Wasm instructions executed (Wasmtime fuel, test host, v2): the same on every run.\n\n\
             | Request | Instructions | ÷ /readyz |\n|---|---:|---:|\n",
        );
        let floor = self
            .fuel
            .iter()
            .find(|(s, _)| *s == Scenario::Readyz)
            .map(|(_, n)| *n);
        for (scenario, n) in &self.fuel {
            let ratio = floor.map_or(String::new(), |f| {
                format!("{:.2}", *n as f64 / f.max(1) as f64)
            });
            let _ = writeln!(md, "| {} | {n} | {ratio} |", scenario.label());
        }
        md
    }

    pub fn markdown(&self) -> String {
        let mut md = String::from("# Benchmark results\n\n");
        for (k, v) in &self.about {
            let _ = writeln!(md, "- {k}: {v}");
        }
        let _ = writeln!(md, "- release .wasm: {} bytes\n", self.wasm_bytes);

        md.push_str("| Runtime | Store | Scenario | Conns | Req/s | Rounds (req/s) | p50 | p99 | Errors | Server RSS peak |\n");
        md.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.rows {
            let m = &r.measured;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {:.1} MiB |",
                r.runtime,
                r.store.label(),
                r.scenario.label(),
                r.connections,
                m.rate(),
                spread(&r.round_rates),
                fmt_latency(m.p50),
                fmt_latency(m.p99),
                m.errors,
                r.rss_peak as f64 / (1024.0 * 1024.0)
            );
        }

        if !self.starts.is_empty() {
            md.push_str("\n| Runtime | Start | Time to first 200 |\n|---|---|---:|\n");
            for s in &self.starts {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} ms |",
                    s.runtime,
                    s.what,
                    s.took.as_millis()
                );
            }
        }

        if !self.fuel.is_empty() {
            md.push_str("\n## The component's own work per request\n\n");
            md.push_str(&self.fuel_table());
        }
        if !self.store_ops.is_empty() {
            md.push_str("\n## Redis commands during the v3 runs\n\n");
            for (run, ops) in &self.store_ops {
                let _ = writeln!(md, "- {run}: {ops}");
            }
        }
        md.push_str("\n## /user ÷ no-op floor (req/s)\n\n");
        for (stack, ratio) in self.user_over_floor() {
            let _ = writeln!(md, "- {stack}: {ratio:.2}");
        }
        md.push_str("\n## Targets\n\n");
        for (what, met) in self.targets() {
            let _ = writeln!(md, "- {} {what}", if met { "met:" } else { "MISSED:" });
        }
        md
    }
}

/// The target that `run` reaches at least `min` times `floor`'s requests per second
/// (median rounds), described with the ratio of every round.
fn rate_target(at: &str, what: &str, run: &Row, floor: &Row, min: f64) -> (String, bool) {
    let ratio = run.measured.rate() / floor.measured.rate();
    (
        format!(
            "{at}: {what} = {ratio:.2} req/s (≥ {min}){}",
            per_round(run, floor)
        ),
        ratio >= min,
    )
}

/// `min–max` of the rounds' rates ("–" for a single round).
fn spread(rates: &[f64]) -> String {
    if rates.len() < 2 {
        return "–".to_string();
    }
    let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.0}–{max:.0}")
}

/// `; per round: a, b, c`: the ratio of each round's `run` to the same round's
/// `floor`, which ran just before it. Shows how much of a ratio is the machine's noise.
fn per_round(run: &Row, floor: &Row) -> String {
    if run.round_rates.len() < 2 || run.round_rates.len() != floor.round_rates.len() {
        return String::new();
    }
    let ratios: Vec<String> = run
        .round_rates
        .iter()
        .zip(&floor.round_rates)
        .map(|(r, f)| format!("{:.2}", r / f))
        .collect();
    format!("; per round: {}", ratios.join(", "))
}

fn fmt_latency(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(store: Store, scenario: Scenario, c: u32, rps: u64, p99_us: u64) -> Row {
        Row {
            runtime: "test host",
            store,
            scenario,
            connections: c,
            measured: Measurement {
                requests: rps * 10,
                elapsed: Duration::from_secs(10),
                p50: Duration::from_micros(p99_us / 2),
                p99: Duration::from_micros(p99_us),
                errors: 0,
            },
            round_rates: vec![rps as f64 * 0.9, rps as f64, rps as f64 * 1.1],
            rss_peak: 30 << 20,
        }
    }

    fn report(user_rps: u64, user_p99: u64) -> Report {
        let mut rows = Vec::new();
        for c in [1, 16] {
            rows.push(row(Store::Local, Scenario::Healthz, c, 10_000, 1_000));
            rows.push(row(Store::Local, Scenario::Readyz, c, 9_000, 1_000));
            rows.push(row(Store::Local, Scenario::Home, c, 9_500, 1_000));
            rows.push(row(Store::Local, Scenario::User, c, user_rps, user_p99));
        }
        Report {
            about: vec![("machine".into(), "test".into())],
            wasm_bytes: 1_400_000,
            rows,
            starts: vec![],
            store_ops: vec![],
            fuel: vec![(Scenario::Readyz, 1000), (Scenario::User, 1500)],
        }
    }

    fn missed(r: &Report) -> Vec<String> {
        r.targets()
            .into_iter()
            .filter(|(_, met)| !met)
            .map(|(what, _)| what)
            .collect()
    }

    #[test]
    fn targets_met_and_missed() {
        let good = report(8_000, 1_400);
        assert!(missed(&good).is_empty(), "{:?}", good.targets());

        let missed = missed(&report(7_000, 1_600));
        assert_eq!(missed.len(), 3, "{missed:?}");
        assert!(missed[0].contains("1 conn: /user ÷ /readyz = 0.78"));
        assert!(missed[2].contains("16 conn: /user p99 ÷ /readyz p99 = 1.60"));
    }

    #[test]
    fn errors_and_a_big_wasm_are_misses() {
        let mut r = report(8_000, 1_000);
        r.rows[3].measured.errors = 2;
        r.wasm_bytes = 1_600_000;
        let missed = missed(&r);
        assert_eq!(missed.len(), 2, "{missed:?}");
        assert!(missed[0].contains("saw 2"));
    }

    #[test]
    fn markdown_has_the_table_ratios_and_targets() {
        let md = report(8_000, 1_400).markdown();
        assert!(md.contains("| test host | v2 local | GET /user (logged in) | 16 | 8000 | 7200–8800 | 700 µs | 1.40 ms | 0 | 30.0 MiB |"), "{md}");
        assert!(
            md.contains("/user ÷ /readyz = 0.89 req/s (≥ 0.85); per round: 0.89, 0.89, 0.89"),
            "{md}"
        );
        assert!(md.contains("- test host, v2 local, 1 conn: 0.80"), "{md}");
        assert!(
            md.contains("| GET /user (logged in) | 1500 | 1.50 |"),
            "{md}"
        );
        assert!(
            md.contains("- met: test host, v2 local, 16 conn: / ÷ /healthz = 0.95"),
            "{md}"
        );
    }
}
