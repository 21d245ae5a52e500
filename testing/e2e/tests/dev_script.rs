//! `scripts/dev.sh`, the README's one command to try the app, run as a person
//! would on a machine with the README's prerequisites: it starts the
//! test IdP and the app, prints where to go; a real Chromium logs in, refreshes
//! and logs out there; Ctrl-C stops everything it started. A port in use is
//! refused with one line saying what to do.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e::scripts::{assert_ctrl_c_stops_everything, low_port_block};
use e2e::{ChildGuard, chromium, repo_root};

fn dev_sh(args: &[&str]) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("scripts/dev.sh"))
        .args(args)
        // The test host even where a `spin` CLI is installed: the runner this
        // suite can check; `spin up` is the same command with other arguments.
        .env("DEV_RUNNER", "test-host")
        // Built already by the test command; a cargo build from inside
        // `cargo test` would wait for the lock the running cargo holds.
        .env("NO_BUILD", "1")
        .current_dir(repo_root());
    command
}

#[test]
fn dev_script_serves_a_working_login_and_stops_everything_on_ctrl_c() {
    let port = low_port_block(8);
    let mut script = ChildGuard::spawn("dev", dev_sh(&["--port", &port.to_string()]));
    let mut banner = Vec::new();
    script.wait_for_line(
        Duration::from_secs(900),
        "`stop      Ctrl-C stops everything this started`",
        |line| {
            banner.push(line.to_string());
            line.starts_with("stop      Ctrl-C").then_some(())
        },
    );
    let front = format!("http://127.0.0.1:{port}");
    assert!(
        banner.contains(&format!("open      {front}/")),
        "{banner:?}"
    );
    assert!(
        banner.iter().any(|l| l.starts_with("log in    as alice")),
        "a user name to log in with: {banner:?}"
    );
    let work_dir: PathBuf = banner
        .iter()
        .find_map(|l| l.strip_prefix("logs      "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no logs line in {banner:?}"));
    assert!(work_dir.is_dir());

    let shots = repo_root().join("target/e2e-artifacts/dev");
    let _ = std::fs::remove_dir_all(&shots);
    let r = chromium::walk(&front, 1, "alice", &shots);
    let pretty = serde_json::to_string_pretty(&r).unwrap();
    assert_eq!(r["completed"], true, "the browser walk failed:\n{pretty}");
    assert_eq!(r["username"], "alice", "{pretty}");
    let pods = r["pods_seen"].as_array().expect("pods_seen");
    assert!(
        !pods.is_empty() && pods.iter().all(|p| p == "dev-1"),
        "{pretty}"
    );
    assert_eq!(r["cookie_sent_back"], true, "{pretty}");
    assert_eq!(r["access_token_changed"], true, "refresh worked: {pretty}");
    assert_eq!(r["logout_landed_on"], "/", "{pretty}");
    for shot in ["home.png", "user.png"] {
        assert!(shots.join(shot).is_file(), "{shot} in {}", shots.display());
    }

    let idp_port = port + 1;
    assert!(
        e2e::net::port_accepts(idp_port),
        "the IdP is on the next port"
    );
    assert_ctrl_c_stops_everything(&mut script, &[port, idp_port], &work_dir);
}

#[test]
fn dev_script_refuses_a_port_in_use_in_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = dev_sh(&["--port", &port.to_string()])
        .output()
        .expect("run scripts/dev.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!("dev: port {port} is in use: stop what listens there or pass --port PORT"),
    );
}
