//! Headless Chromium (Debian's `/usr/bin/chromium`) driven by
//! `testing/browser/flow.mjs` with playwright-core: a real browser's walk
//! through the app, reported as one JSON object.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::process::ChildGuard;
use crate::repo_root;

/// Chromium's binary (`CHROMIUM` overrides), which must exist.
pub fn chromium() -> PathBuf {
    let path =
        PathBuf::from(std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
    assert!(
        path.is_file(),
        "{} is missing: `apt-get install -y chromium` (or set CHROMIUM)",
        path.display()
    );
    path
}

/// `testing/browser/flow.mjs`, with its packages installed.
pub fn flow_script() -> PathBuf {
    let dir = repo_root().join("testing/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci --prefix testing/browser`"
    );
    dir.join("flow.mjs")
}

/// Logs in as `user` at the app behind `front` (`replicas` of them), looks at
/// `/user` on each, refreshes and logs out; screenshots of `/` and `/user` go
/// to `screenshots`. Returns what the browser saw (see flow.mjs).
pub fn walk(front: &str, replicas: usize, user: &str, screenshots: &Path) -> Value {
    std::fs::create_dir_all(screenshots).expect("create the screenshot folder");
    let node = std::env::var_os("E2E_NODE").unwrap_or_else(|| "node".into());
    let mut command = Command::new(node);
    command
        .arg(flow_script())
        .arg(front)
        .args(["--replicas", &replicas.to_string()])
        .args(["--user", user])
        .arg("--screenshots")
        .arg(screenshots)
        .env("CHROMIUM", chromium())
        .current_dir(repo_root());
    let mut flow = ChildGuard::spawn("flow", command);
    flow.wait_for_line(Duration::from_secs(180), "`RESULT <json>`", |line| {
        line.strip_prefix("RESULT ")
            .map(|json| serde_json::from_str(json).expect("flow.mjs prints JSON"))
    })
}
