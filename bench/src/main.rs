//! `bench`: what a request to the built component costs, next to the floors of
//! the same host in the same run. See "Benchmarks" in the README; run it with
//! `scripts/bench.sh`, which builds everything in release mode first.
//!
//! For each runtime (the test host; `spin up` too when on PATH) and each store
//! (v2: the runtime's local store, v3: Redis), it starts the app, signs one
//! user in, and drives wrk at 1 and 16 connections against `/healthz`,
//! `/readyz`, `/` and `/user`, then the login round trip with its own driver.
//! Every run is preceded by a warm-up whose figures are thrown away.

mod big_store;
mod fuel;
mod logins;
mod machine;
mod measure;
mod memory;
mod profile;
mod report;
mod server;
mod settings;
mod store_ops;
mod wrk;

use std::path::PathBuf;

use e2e::{Browser, HostOptions, Idp, IdpOptions, LoginOptions, Redis};

use crate::measure::Measurement;
use crate::memory::PeakRss;
use crate::report::{Report, Row, Scenario, StartTime, Store};
use crate::server::{Runtime, Server};
use crate::settings::{Settings, USAGE, parse_args};

fn main() {
    let settings = match parse_args(std::env::args().skip(1)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if settings.fuel {
        let table = on_named_thread("bench-fuel", only_fuel);
        std::process::exit(table.map_or(1, |t| {
            println!("{t}");
            0
        }));
    }
    if settings.big_store {
        let table = on_named_thread("bench-big-store", move || {
            let port = e2e::free_port();
            big_store::run(&idp_for([port]), port, &settings)
        });
        std::process::exit(table.map_or(1, |t| {
            println!("{t}");
            0
        }));
    }
    if settings.profile {
        let done = on_named_thread("bench-profile", move || run_profiles(&settings));
        std::process::exit(if done.is_some() { 0 } else { 1 });
    }
    let report = on_named_thread("bench", move || run(&settings).map(|r| (r, settings)));
    let Some(Some((report, settings))) = report else {
        eprintln!("bench: failed (logs in target/e2e-logs/bench)");
        std::process::exit(1);
    };
    let markdown = report.markdown();
    println!("\n{markdown}");
    match write_results(&settings.out, &markdown) {
        Ok(path) => println!("written to {}", path.display()),
        Err(e) => {
            eprintln!("bench: cannot write the results: {e}");
            std::process::exit(1);
        }
    }
    if report.targets().iter().any(|(_, met)| !met) {
        eprintln!("bench: some targets were missed (see above)");
    }
}

/// Runs `work` on a thread named `name` (the harness files each process's logs
/// under `target/e2e-logs/<thread name>/`); None when it panicked.
fn on_named_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .expect("spawn a bench thread")
        .join()
        .ok()
}

/// `<out>/<date>-<machine>.md`, or `...-2.md` and so on, never overwriting.
fn write_results(out: &std::path::Path, markdown: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let stem = format!("{}-{}", machine::today(), machine::hostname());
    let path = (1..)
        .map(|n| match n {
            1 => out.join(format!("{stem}.md")),
            n => out.join(format!("{stem}-{n}.md")),
        })
        .find(|p| !p.exists())
        .expect("a free file name");
    std::fs::write(&path, markdown)?;
    Ok(path)
}

/// One app deployment to measure.
struct Stack {
    runtime: Runtime,
    store: Store,
    port: u16,
}

fn run(settings: &Settings) -> Option<Report> {
    let wasm = e2e::component_wasm();
    let mut report = Report {
        about: machine::about(),
        wasm_bytes: std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0),
        ..Report::default()
    };
    report.about.push((
        "settings".into(),
        format!(
            "wrk with 1 thread, {} s per run after a {} s warm-up, {} interleaved rounds \
             (the median round is shown, errors are summed over all rounds); connections {:?}",
            settings.duration.as_secs(),
            settings.warmup.as_secs(),
            settings.rounds,
            settings.connections
        ),
    ));

    let stacks: Vec<Stack> = Runtime::available()
        .into_iter()
        .flat_map(|runtime| {
            [Store::Local, Store::Redis].map(|store| Stack {
                runtime: runtime.clone(),
                store,
                port: e2e::free_port(),
            })
        })
        .collect();
    let (cold_port, fuel_port) = (e2e::free_port(), e2e::free_port());
    let ports: Vec<u16> = stacks.iter().map(|s| s.port).collect();
    let idp = idp_for(ports.iter().copied().chain([cold_port, fuel_port]));
    let redis = Redis::start();

    // The test host's start on an empty compile cache (Cranelift included).
    // Its cache is then warm for the test host's stacks below, which use the same copy.
    let (_cold_dir, copy) = server::cold_copy(&wasm);
    let cold = Server::start(&Runtime::TestHost, &idp, cold_port, "host-cold", |o| {
        HostOptions {
            manifest: Some(copy.clone()),
            ..o
        }
    });
    report.starts.push(StartTime {
        runtime: Runtime::TestHost.name(),
        what: "empty compile cache".into(),
        took: cold.start_time,
    });
    drop(cold);

    report.fuel = count_fuel(&idp, fuel_port, Some(copy.clone()));

    for stack in &stacks {
        eprintln!("== {} / {}", stack.runtime.name(), stack.store.label());
        if stack.store == Store::Redis {
            redis.flushall();
        }
        let server = start_stack(stack, &idp, &redis, |o| match stack.runtime {
            Runtime::TestHost => HostOptions {
                manifest: Some(copy.clone()),
                ..o
            },
            Runtime::SpinUp(_) => o,
        });
        report.starts.push(StartTime {
            runtime: stack.runtime.name(),
            what: format!("{}, compile cache warm", stack.store.label()),
            took: server.start_time,
        });
        measure_stack(settings, stack, &server, &idp, &redis, &mut report);
    }
    Some(report)
}

fn start_stack(
    stack: &Stack,
    idp: &Idp,
    redis: &Redis,
    configure: impl FnOnce(HostOptions) -> HostOptions,
) -> Server {
    let name = format!(
        "{}-{:?}",
        stack.runtime.name().replace(' ', "-"),
        stack.store
    );
    Server::start(&stack.runtime, idp, stack.port, &name, |o| {
        let o = configure(o);
        match stack.store {
            Store::Redis => o.redis(redis),
            Store::Local => o,
        }
    })
}

fn measure_stack(
    settings: &Settings,
    stack: &Stack,
    server: &Server,
    idp: &Idp,
    redis: &Redis,
    report: &mut Report,
) {
    let cookie = sign_in(server, idp);
    let headers = [format!("Cookie: oidc_session={cookie}")];
    // Runs at one connection count are interleaved, round after round, so that
    // a floor and what is compared with it are measured close together in time.
    for &connections in &settings.connections {
        let mut runs: Vec<Vec<Measurement>> = vec![Vec::new(); Scenario::WRK.len()];
        let mut peaks = vec![0u64; Scenario::WRK.len()];
        let mut ops = vec![Vec::new(); Scenario::WRK.len()];
        for round in 0..settings.rounds {
            for (i, scenario) in Scenario::WRK.into_iter().enumerate() {
                let url = server.url(scenario.path());
                let load = wrk::Load::of(scenario, &url, connections, &headers);
                if round == 0 {
                    wrk::run(&load.lasting(settings.warmup))
                        .unwrap_or_else(|e| panic!("warm-up: {e}"));
                }
                let counting = stack.store == Store::Redis;
                if counting {
                    store_ops::reset(redis);
                }
                let sampler = PeakRss::start(server.pgid());
                let measured = wrk::run(&load.lasting(settings.duration))
                    .unwrap_or_else(|e| panic!("{}: {e}", scenario.label()));
                peaks[i] = peaks[i].max(sampler.finish());
                if counting {
                    ops[i].push(store_ops::per_request(
                        &store_ops::command_calls(redis),
                        measured.requests,
                    ));
                }
                eprintln!(
                    "   {} @{connections}, round {}: {:.0} req/s",
                    scenario.label(),
                    round + 1,
                    measured.rate()
                );
                runs[i].push(measured);
            }
        }
        for (i, scenario) in Scenario::WRK.into_iter().enumerate() {
            let (measured, median_round) = Measurement::median(&runs[i]);
            if let Some(ops) = ops[i].get(median_round) {
                report.store_ops.push((
                    format!(
                        "{}, {}, {connections} conn",
                        stack.runtime.name(),
                        scenario.label()
                    ),
                    ops.clone(),
                ));
            }
            report.rows.push(Row {
                runtime: stack.runtime.name(),
                store: stack.store,
                scenario,
                connections,
                measured,
                round_rates: runs[i].iter().map(Measurement::rate).collect(),
                rss_peak: peaks[i],
            });
        }
    }
    // The session served every /user request above: it must still be there.
    assert_user_page(server, &cookie);

    for &clients in &settings.connections {
        logins::run(server.base(), idp, clients, settings.warmup);
        let sampler = PeakRss::start(server.pgid());
        let measured = logins::run(server.base(), idp, clients, settings.duration);
        let rss_peak = sampler.finish();
        eprintln!(
            "   {} @{clients}: {:.1} logins/s",
            Scenario::Login.label(),
            measured.rate()
        );
        report.rows.push(Row {
            runtime: stack.runtime.name(),
            store: stack.store,
            scenario: Scenario::Login,
            connections: clients,
            round_rates: vec![measured.rate()],
            measured,
            rss_peak,
        });
    }
}

/// `--fuel`: just the component's instructions per request, as a table.
fn only_fuel() -> String {
    let port = e2e::free_port();
    let report = Report {
        fuel: count_fuel(&idp_for([port]), port, None),
        ..Report::default()
    };
    report.fuel_table()
}

/// The test IdP, with client1 registered for the app on each of `ports`.
fn idp_for(ports: impl IntoIterator<Item = u16>) -> Idp {
    let bases: Vec<String> = ports
        .into_iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let bases: Vec<&str> = bases.iter().map(String::as_str).collect();
    Idp::start(IdpOptions::for_clients(&bases))
}

/// The component's instructions per request ([`fuel`]), from a test host with
/// the fuel on at `port`, running `manifest` (None: the repository's).
fn count_fuel(idp: &Idp, port: u16, manifest: Option<PathBuf>) -> Vec<(Scenario, u64)> {
    let metered = Server::start(&Runtime::TestHost, idp, port, "host-fuel", |o| {
        HostOptions {
            manifest,
            ..o.env("SPIN_TEST_HOST_FUEL", "1")
        }
    });
    fuel::measure(&metered, &sign_in(&metered, idp))
}

/// perf profiles of the one-read floor and of `/user`, per store, at the
/// highest connection count, under the test host with its perf map on. The
/// component is the release build with its names kept (profile `profiling`).
fn run_profiles(settings: &Settings) {
    let out = e2e::repo_root().join("target/bench-profile");
    let stacks = [Store::Local, Store::Redis].map(|store| Stack {
        runtime: Runtime::TestHost,
        store,
        port: e2e::free_port(),
    });
    let idp = idp_for(stacks.iter().map(|s| s.port));
    let redis = Redis::start();
    let named = e2e::repo_root().join("target/wasm32-wasip2/profiling/oidc_client.wasm");
    let (_dir, copy) = server::cold_copy(&named);
    let connections = settings.connections.iter().copied().max().unwrap_or(16);
    let mut profiles = Vec::new();
    for stack in &stacks {
        let server = start_stack(stack, &idp, &redis, |o| HostOptions {
            manifest: Some(copy.clone()),
            ..o.env("SPIN_TEST_HOST_PERFMAP", "1")
        });
        let cookie = [format!("Cookie: oidc_session={}", sign_in(&server, &idp))];
        for scenario in [Scenario::Readyz, Scenario::User] {
            let url = server.url(scenario.path());
            let load = wrk::Load::of(scenario, &url, connections, &cookie);
            wrk::run(&load.lasting(settings.warmup)).unwrap_or_else(|e| panic!("warm-up: {e}"));
            let name = format!(
                "{:?}-{}",
                stack.store,
                scenario.path().trim_start_matches('/')
            );
            let profile = profile::record(&load.lasting(settings.duration), &out, &name)
                .unwrap_or_else(|e| panic!("profiling {}: {e}", scenario.label()));
            eprintln!("   {}: {}", scenario.label(), profile.report.display());
            profiles.push((
                format!("{} {}", stack.store.label(), scenario.path()),
                profile,
            ));
        }
    }
    println!(
        "\nAt {connections} connections, {} s each:\n\n{}",
        settings.duration.as_secs(),
        profile::table(&profiles)
    );
}

/// Signs a user in and returns the session cookie's value.
fn sign_in(server: &Server, idp: &Idp) -> String {
    let mut browser = Browser::new();
    e2e::app::sign_in(
        &mut browser,
        server.base(),
        idp,
        &LoginOptions::new("bench-user"),
        None,
    );
    let cookie = browser
        .cookie(&server.url("/"), "oidc_session")
        .expect("signing in sets the session cookie");
    assert_user_page(server, &cookie);
    cookie
}

fn assert_user_page(server: &Server, cookie: &str) {
    let mut browser = Browser::new();
    let url = url::Url::parse(&server.url("/user")).expect("a URL");
    let page = browser.request(
        "GET",
        &url,
        &[("cookie", &format!("oidc_session={cookie}"))],
        None,
    );
    page.assert_status(200);
    assert!(
        page.body.contains("bench-user"),
        "/user shows the signed-in user"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let s = parse(&[]).unwrap();
        assert_eq!(
            (
                s.duration.as_secs(),
                s.warmup.as_secs(),
                s.rounds,
                s.connections
            ),
            (10, 2, 5, vec![1, 16])
        );
        let s = parse(&[
            "--duration",
            "3",
            "--rounds",
            "1",
            "--connections",
            "1,4,16",
            "--out",
            "/tmp/x",
        ])
        .unwrap();
        assert_eq!(
            (s.duration.as_secs(), s.rounds, s.connections, s.out),
            (3, 1, vec![1, 4, 16], PathBuf::from("/tmp/x"))
        );
        assert!(parse(&["--rounds", "0"]).is_err());
        assert!(parse(&["--duration", "0"]).is_err());
        assert!(parse(&["--connections", "1,x"]).is_err());
        assert!(parse(&["--duration"]).is_err());
        assert!(parse(&["--fast", "1"]).is_err());
    }
}
