//! The server under test: the component under the project's test host, or
//! under `spin up` when a `spin` binary is on PATH. Either way it is reached
//! at `http://127.0.0.1:PORT`, and "started" means `/healthz` answered 200.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::{Browser, ChildGuard, Host, HostOptions, Idp, paths::TempDir};

#[derive(Debug, Clone, PartialEq)]
pub enum Runtime {
    TestHost,
    SpinUp(PathBuf),
}

impl Runtime {
    /// The runtimes available here: the test host always, `spin up` when on PATH.
    pub fn available() -> Vec<Runtime> {
        let mut all = vec![Runtime::TestHost];
        if let Some(spin) = on_path("spin") {
            all.push(Runtime::SpinUp(spin));
        }
        all
    }

    pub fn name(&self) -> &'static str {
        match self {
            Runtime::TestHost => "test host",
            Runtime::SpinUp(_) => "spin up",
        }
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

enum Process {
    Host(Host),
    /// The directory holds the runtime config `spin up` reads.
    Spin {
        guard: ChildGuard,
        _config: TempDir,
    },
}

pub struct Server {
    process: Process,
    base: String,
    /// From spawning the process to the first 200 from `/healthz`.
    pub start_time: Duration,
}

const STARTUP_LIMIT: Duration = Duration::from_secs(180);

impl Server {
    /// Starts the app as client1 of `idp` on `port`; `configure` may put the
    /// store in Redis, point at another manifest, or add environment (the
    /// same options serve `spin up`: variables, runtime config, manifest).
    pub fn start(
        runtime: &Runtime,
        idp: &Idp,
        port: u16,
        name: &str,
        configure: impl FnOnce(HostOptions) -> HostOptions,
    ) -> Server {
        let base = format!("http://127.0.0.1:{port}");
        let opts = configure(HostOptions::for_idp(idp, &base).port(port).name(name));
        let began = Instant::now();
        let process = match runtime {
            Runtime::TestHost => Process::Host(Host::start(opts)),
            Runtime::SpinUp(spin) => {
                let (guard, _config) = spawn_spin(spin, &opts, port);
                Process::Spin { guard, _config }
            }
        };
        let server = Server {
            process,
            base,
            start_time: Duration::ZERO,
        };
        e2e::wait_until(STARTUP_LIMIT, "/healthz answers 200", || {
            let status = Browser::new().try_get(&server.url("/healthz")).ok()?.status;
            (status == 200).then_some(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        Server {
            start_time: began.elapsed(),
            ..server
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the server logged on stderr so far (the test host only).
    pub fn log(&self) -> String {
        match &self.process {
            Process::Host(host) => host.log(),
            Process::Spin { .. } => String::new(),
        }
    }

    /// The process group to measure (the server's own pid).
    pub fn pgid(&self) -> u32 {
        match &self.process {
            Process::Host(host) => host.pid().expect("the host runs"),
            Process::Spin { guard, .. } => guard.pid(),
        }
    }
}

/// `spin up` with the same variables (as `SPIN_VARIABLE_*`) and runtime config
/// the test host gets.
fn spawn_spin(spin: &Path, opts: &HostOptions, port: u16) -> (ChildGuard, TempDir) {
    let dir = TempDir::new("bench-spin");
    let manifest = opts
        .manifest
        .clone()
        .unwrap_or_else(e2e::paths::spin_manifest);
    let mut command = Command::new(spin);
    command
        .arg("up")
        .arg("--from")
        .arg(manifest)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(e2e::repo_root());
    opts.configure(&mut command, dir.path());
    (ChildGuard::spawn(&opts.name, command), dir)
}

/// A copy of the app (spin.toml and the component `wasm`) in a fresh
/// directory, so the test host starts with an empty compile cache.
pub fn cold_copy(wasm: &Path) -> (TempDir, PathBuf) {
    let dir = TempDir::new("bench-cold");
    let wasm_rel = "target/wasm32-wasip2/release/oidc_client.wasm";
    let copy = dir.path().join(wasm_rel);
    std::fs::create_dir_all(copy.parent().expect("a parent")).expect("mkdir");
    std::fs::copy(wasm, &copy)
        .unwrap_or_else(|e| panic!("cannot copy the component {}: {e}", wasm.display()));
    let manifest = dir.path().join("spin.toml");
    std::fs::copy(e2e::paths::spin_manifest(), &manifest).expect("copy spin.toml");
    (dir, manifest)
}
