//! Spin runtime config files for the tests: the plain one (`[key_value_store.default]`
//! in Redis) and the one spin-operator renders for the v3 SpinApp, produced by
//! `testing/manifests/check.py --emit-runtime-config` from the repository's manifests.

use std::path::PathBuf;
use std::process::Command;

use crate::paths::{TempDir, repo_root};

/// The `default` key-value store in Redis at `redis_url`, in Spin's runtime config
/// syntax (what `spin up --runtime-config-file` reads).
pub fn redis_default_store(redis_url: &str) -> String {
    format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{redis_url}\"\n")
}

/// The Python that runs `testing/manifests/check.py`: `$MANIFESTS_PYTHON`, else the
/// repository's `.venv-manifests/bin/python`.
pub fn manifests_python() -> PathBuf {
    if let Some(p) = std::env::var_os("MANIFESTS_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv-manifests/bin/python");
    if !venv.is_file() {
        panic!(
            "{} is missing: create it with `python3 -m venv .venv-manifests && \
             .venv-manifests/bin/pip install -r testing/manifests/requirements.txt` \
             (or set MANIFESTS_PYTHON)",
            venv.display()
        );
    }
    venv
}

/// The runtime-config.toml spin-operator renders for the v3 SpinApp of `kubernetes/`,
/// with the Redis url replaced by `redis_url`. Panics (with check.py's output) when
/// the manifests fail their checks or the file cannot be rendered.
pub fn operator_rendered(redis_url: &str) -> String {
    let dir = TempDir::new("e2e-rc");
    let path = dir.path().join("runtime-config.toml");
    let root = repo_root();
    let output = Command::new(manifests_python())
        .arg(root.join("testing/manifests/check.py"))
        .arg("--repo")
        .arg(&root)
        .arg("--emit-runtime-config")
        .arg(&path)
        .arg("--redis-url")
        .arg(redis_url)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run testing/manifests/check.py: {e}"));
    let text = std::fs::read_to_string(&path).ok();
    match (output.status.success(), text) {
        (true, Some(text)) => {
            std::fs::write(
                crate::paths::logs_dir().join("operator-runtime-config.toml"),
                &text,
            )
            .ok();
            text
        }
        (_, _) => panic!(
            "check.py --emit-runtime-config failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}
