//! `bench --profile`: records where the machine spends its time while wrk
//! drives one path, with `perf` and Wasmtime's perf map (so the component's
//! own functions have names), and sorts the samples into the buckets
//! bench/PROFILE.md discusses: instantiation, key-value, JSON, rendering,
//! logging, HTTP, the kernel.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::ChildGuard;

use crate::wrk;

/// One profiled run: where its report is, and the share of each bucket.
pub struct Profile {
    pub report: PathBuf,
    pub rate: f64,
    pub buckets: Vec<(&'static str, f64)>,
}

/// Runs wrk with `load` while `perf record` samples the whole machine (the
/// server, wrk, Redis and the kernel share its cores); writes the flat report
/// (self time by process, object and function) to `<out>/<name>.txt`.
pub fn record(load: &wrk::Load, out: &Path, name: &str) -> Result<Profile, String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let data = out.join(format!("{name}.data"));
    let mut record = Command::new("perf");
    record
        .args(["record", "--quiet", "-a", "-F", "1999", "-g", "-o"])
        .arg(&data);
    let mut perf = ChildGuard::spawn("perf", record);
    let measured = wrk::run(load);
    // perf writes its data when it gets SIGTERM.
    perf.stop();
    let measured = measured?;

    let report = Command::new("perf")
        .args(["report", "--stdio", "--no-children", "--percent-limit", "0"])
        .args(["--sort", "comm,dso,symbol", "-g", "none", "-t", "\t", "-i"])
        .arg(&data)
        .output()
        .map_err(|e| format!("cannot run perf report: {e}"))?;
    let text = String::from_utf8_lossy(&report.stdout);
    let path = out.join(format!("{name}.txt"));
    std::fs::write(&path, text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(Profile {
        report: path,
        rate: measured.rate(),
        buckets: buckets(&text),
    })
}

/// Self time per bucket, in percent of all samples, largest first.
pub fn buckets(report: &str) -> Vec<(&'static str, f64)> {
    let mut sums: Vec<(&'static str, f64)> = Vec::new();
    for line in report.lines().filter(|l| !l.starts_with('#')) {
        let mut fields = line.split('\t');
        let (Some(percent), Some(comm), Some(dso), Some(symbol)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(percent) = percent.trim().trim_end_matches('%').parse::<f64>() else {
            continue;
        };
        let bucket = bucket(comm.trim(), dso.trim(), symbol.trim());
        match sums.iter_mut().find(|(b, _)| *b == bucket) {
            Some((_, sum)) => *sum += percent,
            None => sums.push((bucket, percent)),
        }
    }
    sums.sort_by(|a, b| b.1.total_cmp(&a.1));
    sums
}

fn any(haystack: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| haystack.contains(n))
}

/// The bucket of one function's samples. Names of the component's functions
/// may be mangled (`_ZN10serde_json...`), so the tests are on substrings.
fn bucket(comm: &str, dso: &str, symbol: &str) -> &'static str {
    match comm {
        "wrk" => return "wrk (the load generator)",
        "redis-server" => return "redis-server",
        "swapper" => return "idle",
        c if !c.starts_with("tokio-rt") && !c.starts_with("spin") => return "other processes",
        _ => {}
    }
    if dso.starts_with("[JIT]") || dso.ends_with(".cwasm") {
        return if any(symbol, &["serde_json", "serde_core", "RawValue"]) {
            "component: JSON (the session record)"
        } else if any(symbol, &["pages", "Html", "fmt", "timefmt"]) {
            "component: rendering and formatting"
        } else if any(symbol, &["url", "idna", "config"]) {
            "component: configuration (variables, URLs)"
        } else if any(
            symbol,
            &[
                "dlmalloc",
                "dlfree",
                "realloc",
                "rust_alloc",
                "rust_dealloc",
                "__rdl",
                "raw_vec",
            ],
        ) {
            "component: memory allocation"
        } else {
            "component: other (start-up, bindings, routing)"
        };
    }
    if dso == "[kernel.kallsyms]" {
        return if any(
            symbol,
            &[
                "ext4",
                "vfs_write",
                "file_write",
                "generic_perform_write",
                "jbd2",
            ],
        ) {
            "kernel: file writes (the host's request log)"
        } else if any(
            symbol,
            &[
                "tcp", "ip_", "skb", "sock", "net_", "dev_", "loopback", "softirq", "napi",
                "epoll", "recv", "send",
            ],
        ) {
            "kernel: loopback networking"
        } else {
            "kernel: scheduling, memory, other"
        };
    }
    if symbol.contains("memset") {
        "host: memset (resetting linear memory between requests)"
    } else if any(
        symbol,
        &["wasmtime_wasi_http", "hyper", "tokio", "http::", "bytes::"],
    ) {
        "host: HTTP (hyper, wasi-http, tokio)"
    } else if any(symbol, &["redis", "kv::", "key_value"]) {
        "host: key-value"
    } else if any(symbol, &["wasmtime", "cranelift"]) {
        "host: instantiation and instance teardown"
    } else if any(symbol, &["malloc", "free", "memmove", "memcpy"]) {
        "host: allocation and copies"
    } else {
        "host: other"
    }
}

/// The buckets of several profiles side by side, as a markdown table.
pub fn table(profiles: &[(String, Profile)]) -> String {
    let mut names: Vec<&'static str> = Vec::new();
    for (_, p) in profiles {
        for (b, _) in &p.buckets {
            if !names.contains(b) {
                names.push(b);
            }
        }
    }
    let mut md = String::from("| Where (self time, % of all samples) |");
    for (label, _) in profiles {
        let _ = write!(md, " {label} |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|".repeat(profiles.len()));
    md.push('\n');
    for name in names {
        let _ = write!(md, "| {name} |");
        for (_, p) in profiles {
            let share = p
                .buckets
                .iter()
                .find(|(b, _)| *b == name)
                .map_or(0.0, |(_, s)| *s);
            let _ = write!(md, " {share:.1} |");
        }
        md.push('\n');
    }
    md.push_str("| requests per second while profiled |");
    for (_, p) in profiles {
        let _ = write!(md, " {:.0} |", p.rate);
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_their_buckets() {
        let report = "# comment\n\
            7.25%\ttokio-rt-worker\tlibc.so.6\t[.] __memset_avx512_unaligned_erms\n\
            2.00%\ttokio-rt-worker\t[JIT] tid 1\t[.] _ZN10serde_json2de10from_trait17h0E\n\
            1.50%\ttokio-rt-worker\t[JIT] tid 1\t[.] <oidc_client::pages::Html as core::fmt::Display>::fmt\n\
            1.00%\ttokio-rt-worker\t[JIT] tid 1\t[.] url::parser::Parser::parse_host\n\
            0.50%\ttokio-rt-worker\t[kernel.kallsyms]\t[k] tcp_sendmsg\n\
            0.25%\ttokio-rt-worker\t[kernel.kallsyms]\t[k] ext4_buffered_write_iter\n\
            0.50%\ttokio-rt-worker\tspin-test-host\t[.] hyper::proto::h1::role::encode\n\
            0.75%\ttokio-rt-worker\tspin-test-host\t[.] wasmtime::runtime::vm::instance::Instance::new\n\
            9.00%\twrk\twrk\t[.] http_parser_execute\n\
            0.10%\tswapper\t[kernel.kallsyms]\t[k] default_idle\n";
        let b = buckets(report);
        let share = |name: &str| b.iter().find(|(n, _)| n.starts_with(name)).map(|(_, s)| *s);
        assert_eq!(b[0], ("wrk (the load generator)", 9.0));
        assert_eq!(share("host: memset"), Some(7.25));
        assert_eq!(share("component: JSON"), Some(2.0));
        assert_eq!(share("component: rendering"), Some(1.5));
        assert_eq!(share("component: configuration"), Some(1.0));
        assert_eq!(share("kernel: loopback"), Some(0.5));
        assert_eq!(share("kernel: file writes"), Some(0.25));
        assert_eq!(share("host: HTTP"), Some(0.5));
        assert_eq!(share("host: instantiation"), Some(0.75));
        assert_eq!(share("idle"), Some(0.1));
    }

    #[test]
    fn table_lines_up_profiles() {
        let p = |rate, s| Profile {
            report: PathBuf::new(),
            rate,
            buckets: vec![("component: JSON (the session record)", s)],
        };
        let md = table(&[("a".into(), p(10.0, 1.0)), ("b".into(), p(20.0, 2.5))]);
        assert!(
            md.contains("| component: JSON (the session record) | 1.0 | 2.5 |"),
            "{md}"
        );
        assert!(
            md.contains("| requests per second while profiled | 10 | 20 |"),
            "{md}"
        );
    }
}
