//! The benchmark's command line.

use std::path::PathBuf;
use std::time::Duration;

pub(crate) const USAGE: &str = "usage: bench [--duration SECS] [--warmup SECS] [--rounds N] [--connections N,N...] [--out DIR] [--profile | --fuel | --big-store]";

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    /// wrk runs per scenario; the median round is reported. Five, because at 16
    /// connections the floors alone move by up to 30% from round to round on a
    /// 2-core VM, and three rounds let one bad round decide a ratio.
    pub(crate) rounds: usize,
    pub(crate) connections: Vec<u32>,
    pub(crate) out: PathBuf,
    /// Instead of the benchmark: perf profiles of /readyz and /user (bench/PROFILE.md).
    pub(crate) profile: bool,
    /// Instead of the benchmark: only the instruction counts per request.
    pub(crate) fuel: bool,
    /// Instead of the benchmark: POST /login on an empty Redis and on one with
    /// a million other keys.
    pub(crate) big_store: bool,
}

pub(crate) fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Settings, String> {
    let mut s = Settings {
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        rounds: 5,
        connections: vec![1, 16],
        out: e2e::repo_root().join("bench/results"),
        profile: false,
        fuel: false,
        big_store: false,
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--profile" | "--fuel" | "--big-store" => {
                s.profile |= flag == "--profile";
                s.fuel |= flag == "--fuel";
                s.big_store |= flag == "--big-store";
                continue;
            }
            _ => {}
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let secs = |v: &str| -> Result<Duration, String> {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Duration::from_secs)
                .ok_or(format!("{flag} {v:?}: expected whole seconds > 0"))
        };
        match flag.as_str() {
            "--duration" => s.duration = secs(&value)?,
            "--warmup" => s.warmup = secs(&value)?,
            "--rounds" => {
                s.rounds = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--rounds {value:?}: expected a whole number > 0"))?;
            }
            "--connections" => {
                s.connections = value
                    .split(',')
                    .map(|c| c.trim().parse::<u32>().ok().filter(|n| *n > 0))
                    .collect::<Option<_>>()
                    .ok_or(format!("--connections {value:?}: expected e.g. 1,16"))?;
            }
            "--out" => s.out = PathBuf::from(value),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(s)
}
