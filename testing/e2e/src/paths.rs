//! Where things are: the repository, the built artifacts, the log directories.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The command that builds everything the end-to-end tests need (kept in step with
/// the test command in the repository's README).
pub const BUILD_HINT: &str = "build the component and the test host first, as the test command in README.md does: \
`cargo build --target wasm32-wasip2 --release -p oidc-client && cargo build -p spin-test-host`";

/// The root of the repository (the workspace root).
pub fn repo_root() -> PathBuf {
    // testing/e2e -> repository root
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("testing/e2e lives two levels below the repository root")
        .to_path_buf()
}

/// The Spin manifest of the application.
pub fn spin_manifest() -> PathBuf {
    repo_root().join("spin.toml")
}

/// The built component. Panics with a hint to build it when it is missing.
pub fn component_wasm() -> PathBuf {
    let path = repo_root().join("target/wasm32-wasip2/release/oidc_client.wasm");
    if !path.is_file() {
        panic!("the component {} is missing: {BUILD_HINT}", path.display());
    }
    path
}

/// The test host binary: `$SPIN_TEST_HOST`, else `target/debug/spin-test-host`, else
/// `target/release/spin-test-host`. Panics with a hint to build it when it is missing.
pub fn host_binary() -> PathBuf {
    if let Some(explicit) = std::env::var_os("SPIN_TEST_HOST") {
        let path = PathBuf::from(explicit);
        if !path.is_file() {
            panic!(
                "SPIN_TEST_HOST={} is not a file: {BUILD_HINT}",
                path.display()
            );
        }
        return path;
    }
    let root = repo_root();
    let candidates = [
        root.join("target/debug/spin-test-host"),
        root.join("target/release/spin-test-host"),
    ];
    for candidate in &candidates {
        if candidate.is_file() {
            return candidate.clone();
        }
    }
    panic!(
        "the test host is missing (looked for $SPIN_TEST_HOST, {} and {}): {BUILD_HINT}",
        candidates[0].display(),
        candidates[1].display()
    );
}

/// The directory of the OpenID Provider for tests, with its `node_modules` installed.
pub fn idp_dir() -> PathBuf {
    let dir = repo_root().join("testing/idp");
    if !dir.join("node_modules/oidc-provider").is_dir() {
        panic!(
            "the test IdP's dependencies are not installed in {}: run `npm ci --prefix testing/idp` \
             (the test command in README.md does)",
            dir.display()
        );
    }
    dir
}

/// The name of the running test: libtest names each test's thread after the test.
pub fn current_test_name() -> String {
    let name = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("unnamed")
        .to_string();
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

static CLEANED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// `target/e2e-logs/<test name>/` for the running test, created on first use. The
/// first use in a test process empties it, so the logs are those of the last run.
pub fn logs_dir() -> PathBuf {
    let dir = repo_root()
        .join("target/e2e-logs")
        .join(current_test_name());
    let mut cleaned = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
    let cleaned = cleaned.get_or_insert_with(HashSet::new);
    if cleaned.insert(dir.clone()) {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create the log directory {}: {e}", dir.display()));
    dir
}

/// A fresh private temporary directory (removed by [`TempDir`]'s drop).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let base = std::env::temp_dir();
        for _ in 0..100 {
            let path = base.join(format!(
                "{prefix}-{}-{}",
                std::process::id(),
                crate::oidc::random_token(6)
            ));
            match std::fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!(
                    "cannot create a temporary directory in {}: {e}",
                    base.display()
                ),
            }
        }
        panic!(
            "cannot find a free temporary directory name in {}",
            base.display()
        );
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
