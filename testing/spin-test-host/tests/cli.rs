//! The binary's start-up contract: bad configuration stops it before it
//! serves, with a message that names the problem and no secret in it.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A scratch app directory, removed on drop.
struct App(PathBuf);

impl Drop for App {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the manifest (and a runtime config as `rc.toml`).
fn app(name: &str, manifest: &str, runtime_config: Option<&str>) -> App {
    let dir =
        std::env::temp_dir().join(format!("spin-test-host-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spin.toml"), manifest).unwrap();
    if let Some(rc) = runtime_config {
        std::fs::write(dir.join("rc.toml"), rc).unwrap();
    }
    App(dir)
}

fn run(app: &App, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spin-test-host"));
    cmd.arg("--manifest")
        .arg(app.0.join("spin.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "cli-test"
[variables]
client_id = { required = true }
client_secret = { required = true, secret = true }
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "missing.wasm"
key_value_stores = ["default"]
[component.web.variables]
client_id = "{{ client_id }}"
client_secret = "{{ client_secret }}"
"#;

#[test]
fn missing_required_variable_stops_start_up() {
    let dir = app("missing-var", MANIFEST, None);
    let secret = "s3cr3t-value-that-must-not-leak";
    let out = run(&dir, &[], &[("SPIN_VARIABLE_CLIENT_SECRET", secret)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("client_id") && stderr.contains("SPIN_VARIABLE_CLIENT_ID"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("client_secret (") && !stderr.contains(secret),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout before ready");
}

#[test]
fn with_variables_set_it_gets_to_loading_the_component() {
    let dir = app("missing-wasm", MANIFEST, None);
    let out = run(
        &dir,
        &[],
        &[
            ("SPIN_VARIABLE_CLIENT_ID", "id"),
            ("SPIN_VARIABLE_CLIENT_SECRET", "s"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("missing.wasm"), "{stderr}");
}

#[test]
fn unknown_store_type_stops_start_up() {
    let dir = app(
        "bad-rc",
        MANIFEST,
        Some("[key_value_store.default]\ntype = \"dynamodb\"\n"),
    );
    let rc = dir.0.join("rc.toml");
    let out = run(
        &dir,
        &["--runtime-config-file", rc.to_str().unwrap()],
        &[
            ("SPIN_VARIABLE_CLIENT_ID", "id"),
            ("SPIN_VARIABLE_CLIENT_SECRET", "s"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("dynamodb"), "{stderr}");
}

#[test]
fn bad_arguments_print_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_spin-test-host"))
        .arg("--nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}
