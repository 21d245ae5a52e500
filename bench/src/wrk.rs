//! Runs `wrk` (a second process, so the load generator never shares the host's
//! threads) and reads its summary from the line `wrk-summary.lua` prints.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::measure::Measurement;
use crate::report::Scenario;

/// One wrk run: `connections` keep-alive connections on one wrk thread.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    pub url: &'a str,
    pub connections: u32,
    pub duration: Duration,
    /// Extra request headers, e.g. the session cookie.
    pub headers: &'a [String],
    /// A form body to POST instead of a GET.
    pub form: Option<&'a str>,
}

impl<'a> Load<'a> {
    /// The load of one scenario: `/user`'s requests carry the session cookie.
    pub fn of(
        scenario: Scenario,
        url: &'a str,
        connections: u32,
        cookie: &'a [String],
    ) -> Load<'a> {
        Load {
            url,
            connections,
            duration: Duration::ZERO,
            headers: if scenario == Scenario::User {
                cookie
            } else {
                &[]
            },
            form: None,
        }
    }

    pub fn lasting(&self, duration: Duration) -> Load<'a> {
        Load {
            duration,
            ..self.clone()
        }
    }
}

fn script() -> PathBuf {
    e2e::repo_root().join("bench/wrk-summary.lua")
}

/// Runs wrk and returns what it measured. Fails when wrk cannot run or prints
/// no summary (e.g. it could not connect at all).
pub fn run(load: &Load) -> Result<Measurement, String> {
    let mut command = Command::new("wrk");
    command
        .arg("--threads")
        .arg("1")
        .arg("--connections")
        .arg(load.connections.to_string())
        .arg("--duration")
        .arg(format!("{}s", load.duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("5s")
        .arg("--script")
        .arg(script());
    for header in load.headers {
        command.arg("--header").arg(header);
    }
    if let Some(form) = load.form {
        command.env("BENCH_FORM", form);
    }
    command.arg(load.url);
    let output = command
        .output()
        .map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse_summary(&stdout).ok_or_else(|| {
        format!(
            "wrk printed no summary (exit {}): {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

/// The measurement in wrk's output, from the `BENCH-SUMMARY {json}` line.
pub fn parse_summary(stdout: &str) -> Option<Measurement> {
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH-SUMMARY "))?;
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    let us = |k: &str| n(k).map(Duration::from_micros);
    let errors = ["connect", "read", "write", "status", "timeout"]
        .iter()
        .map(|k| n(k))
        .sum::<Option<u64>>()?;
    Some(Measurement {
        requests: n("requests")?,
        elapsed: us("duration_us")?,
        p50: us("p50_us")?,
        p99: us("p99_us")?,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_line_among_wrks_report() {
        let out = "Running 10s test @ http://127.0.0.1:1/user\n  1 threads and 16 connections\n\
            BENCH-SUMMARY {\"requests\":52345,\"duration_us\":10001234,\"p50_us\":281,\"p99_us\":1904,\
            \"max_us\":9000,\"connect\":0,\"read\":1,\"write\":0,\"status\":3,\"timeout\":2}\n";
        let m = parse_summary(out).unwrap();
        assert_eq!(m.requests, 52345);
        assert_eq!(m.elapsed, Duration::from_micros(10_001_234));
        assert_eq!(m.p50, Duration::from_micros(281));
        assert_eq!(m.p99, Duration::from_micros(1904));
        assert_eq!(
            m.errors, 6,
            "socket errors, timeouts and 4xx/5xx answers all count"
        );
    }

    #[test]
    fn no_summary_or_a_broken_one_is_none() {
        assert!(parse_summary("unable to connect to 127.0.0.1:1 Connection refused").is_none());
        assert!(parse_summary("BENCH-SUMMARY {\"requests\":1}").is_none());
        assert!(parse_summary("BENCH-SUMMARY not json").is_none());
    }
}
