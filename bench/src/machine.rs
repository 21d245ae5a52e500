//! Facts about the machine and the build, for the results file's header and name.

use std::process::Command;

/// Today's date, `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    oidc_client::timefmt::utc(now)[..10].to_string()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The host name, made safe for a file name.
pub fn hostname() -> String {
    let name: String = read("/proc/sys/kernel/hostname")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "unknown".into()
    } else {
        name
    }
}

fn cpu_model() -> String {
    read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn memory() -> String {
    read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into())
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    // Not the exit status: `wrk --version` prints its version and exits 1.
    let out = Command::new(program).args(args).output().ok()?;
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .to_string();
    (!first.is_empty()).then_some(first)
}

/// The commit measured, with `+changes` when the tree differs from it.
fn commit() -> String {
    let root = e2e::repo_root();
    let root = root.to_string_lossy();
    let head = command_line("git", &["-C", &root, "rev-parse", "--short", "HEAD"]);
    let dirty = command_line(
        "git",
        &["-C", &root, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_some();
    match head {
        Some(h) => format!("{h}{}", if dirty { " +changes" } else { "" }),
        None => "unknown".into(),
    }
}

pub fn about() -> Vec<(String, String)> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    vec![
        ("date (UTC)".into(), today()),
        ("machine".into(), hostname()),
        ("CPU".into(), format!("{} × {cores} cores", cpu_model())),
        ("memory".into(), memory()),
        ("kernel".into(), read("/proc/sys/kernel/osrelease")),
        ("commit".into(), commit()),
        (
            "rustc".into(),
            command_line("rustc", &["--version"]).unwrap_or_default(),
        ),
        (
            "wrk".into(),
            command_line("wrk", &["--version"]).unwrap_or_default(),
        ),
    ]
}
