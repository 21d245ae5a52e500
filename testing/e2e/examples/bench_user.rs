//! Benchmark of the hot path, `GET /user` for a logged-in browser, through the test
//! host running the built component with the Redis store. Prints wrk's figures and
//! how many store commands each request cost (the target: one GET, no writes).
//!
//! Run: `cargo run --release -p e2e --example bench_user -- [seconds] [connections]`
//! (after building the component and the test host; needs `wrk`).

use e2e::{Browser, Host, HostOptions, Idp, IdpOptions, LoginOptions, Redis, RespValue, free_port};
use std::process::Command;

fn commandstats(redis: &Redis) -> Vec<(String, u64)> {
    let RespValue::Bulk(raw) = redis.command(&["INFO", "commandstats"]) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&raw)
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let connections: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(16);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(IdpOptions::for_client(&base));
    let redis = Redis::start();
    let _host = Host::start(
        HostOptions::for_idp(&idp, &base)
            .redis(&redis)
            .port(port)
            .name("bench"),
    );

    let mut browser = Browser::new();
    e2e::app::sign_in(
        &mut browser,
        &base,
        &idp,
        &LoginOptions::new("alice"),
        Some("openid profile"),
    );
    let url = url::Url::parse(&base).unwrap();
    let cookie = browser.jar.value(&url, "oidc_session").expect("logged in");

    redis.command(&["CONFIG", "RESETSTAT"]);
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
        ])
        .args([
            "-H",
            &format!("Cookie: oidc_session={cookie}"),
            &format!("{base}/user"),
        ])
        .output()
        .expect("wrk is installed (apt-get install -y wrk)");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("GET /user, {connections} connections, {seconds} s, Redis store:\n{report}");

    let requests: u64 = report
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in")
                .and_then(|(n, _)| n.trim().parse().ok())
        })
        .unwrap_or(0);
    let stats = commandstats(&redis);
    let per = |cmd: &str| {
        stats.iter().find(|(n, _)| n == cmd).map_or(0, |(_, c)| *c) as f64 / requests.max(1) as f64
    };
    println!(
        "store commands per request: GET {:.3}, SET {:.3}, DEL {:.3}, EXISTS {:.3} ({requests} requests)",
        per("get"),
        per("set"),
        per("del"),
        per("exists")
    );
}
