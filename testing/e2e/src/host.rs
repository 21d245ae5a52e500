//! The test host (`spin-test-host`) running the built component, like `spin up`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::idp::Idp;
use crate::paths::TempDir;
use crate::process::{ChildGuard, Restartable};
use crate::redis::Redis;

/// Where a host keeps its local key-value store: the `default` store, unless the
/// runtime config puts it elsewhere. Spin keeps it in a SQLite file in the app's
/// state directory (`sqlite_key_value.db`); `spin up` processes given the same
/// state directory share it (without `--state-dir`, every process started on the
/// same spin.toml uses `.spin/` beside it, so they all share one store).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StateDir {
    /// A directory of this host's own (`--state-dir`), made fresh for it and kept
    /// across [`Host::start_again`]: a pod's local store, private to it, which
    /// survives a restart of the process. Tests do not see each other's data.
    #[default]
    Own,
    /// This directory: hosts given the same one share the store, as `spin up`
    /// processes started on one app directory do.
    Shared(PathBuf),
    /// No state directory (`--state-dir ""`): the store is in memory, private to
    /// the process and gone when it stops.
    Unset,
}

/// How to start the test host.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The port on 127.0.0.1; None picks a free one.
    pub port: Option<u16>,
    /// Application variables by their spin.toml names (e.g. `client_id`); passed as
    /// `SPIN_VARIABLE_<NAME>`.
    pub variables: Vec<(String, String)>,
    /// The runtime config file's content; None: the `default` key-value store is
    /// the local one in [`HostOptions::state_dir`].
    pub runtime_config: Option<String>,
    /// Where the local key-value store lives.
    pub state_dir: StateDir,
    /// The manifest; None: the repository's spin.toml.
    pub manifest: Option<PathBuf>,
    /// More environment for the host process (e.g. `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// The base name of the log files (`host`, `host-a`, ...).
    pub name: String,
    /// How long to wait for `listening on ...` (the first start compiles the component).
    pub startup_timeout: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            port: None,
            variables: Vec::new(),
            runtime_config: None,
            state_dir: StateDir::Own,
            manifest: None,
            env: Vec::new(),
            name: "host".to_string(),
            startup_timeout: Duration::from_secs(180),
        }
    }
}

impl HostOptions {
    /// The variables for client1 at `idp`, with the app reachable at `client_base_url`
    /// (the redirect URI is `<client_base_url>/callback`). The port still has to be set
    /// when `client_base_url` is the host itself.
    pub fn for_idp(idp: &Idp, client_base_url: &str) -> HostOptions {
        HostOptions::default()
            .variable("client_id", idp.client_id())
            .variable("client_secret", idp.client_secret())
            .variable("oidc_issuer_url", idp.issuer())
            .variable("oidc_idp_origin", &idp.origin())
            .variable("client_base_url", client_base_url.trim_end_matches('/'))
    }

    /// Sets (or replaces) variable `name`.
    pub fn variable(mut self, name: &str, value: &str) -> HostOptions {
        self.variables.retain(|(n, _)| n != name);
        self.variables.push((name.to_string(), value.to_string()));
        self
    }

    /// Gives `command` (the test host, or `spin up`: they take the same flags and
    /// environment) the runtime config, written into `config_dir`, the state
    /// directory (`config_dir/state` for [`StateDir::Own`]), the variables as
    /// `SPIN_VARIABLE_<NAME>` (and no others from this process), and the extra
    /// environment.
    pub fn configure(&self, command: &mut Command, config_dir: &Path) {
        if let Some(config) = &self.runtime_config {
            let path = config_dir.join("runtime-config.toml");
            std::fs::write(&path, config).expect("write the runtime config");
            command.arg("--runtime-config-file").arg(path);
        }
        command.arg("--state-dir");
        match &self.state_dir {
            StateDir::Own => command.arg(config_dir.join("state")),
            StateDir::Shared(dir) => command.arg(dir),
            StateDir::Unset => command.arg(""),
        };
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SPIN_VARIABLE_") {
                command.env_remove(key);
            }
        }
        for (name, value) in &self.variables {
            command.env(
                format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()),
                value,
            );
        }
        for (k, v) in &self.env {
            command.env(k, v);
        }
    }

    /// Removes variable `name` (to test a missing required variable).
    pub fn without_variable(mut self, name: &str) -> HostOptions {
        self.variables.retain(|(n, _)| n != name);
        self
    }

    pub fn port(mut self, port: u16) -> HostOptions {
        self.port = Some(port);
        self
    }

    pub fn name(mut self, name: &str) -> HostOptions {
        self.name = name.to_string();
        self
    }

    /// Puts the `default` key-value store in `redis`.
    pub fn redis(mut self, redis: &Redis) -> HostOptions {
        self.runtime_config = Some(redis.runtime_config_toml());
        self
    }

    /// Where the local key-value store lives (default: [`StateDir::Own`]).
    pub fn state_dir(mut self, state_dir: StateDir) -> HostOptions {
        self.state_dir = state_dir;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> HostOptions {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

/// A running test host.
pub struct Host {
    // Dropped first: the host stops before its config directory goes.
    process: Restartable,
    opts: HostOptions,
    port: u16,
    base_url: String,
    config_dir: TempDir,
}

impl Host {
    /// Starts the host and waits for its `listening on http://IP:PORT` line. Panics
    /// with a hint when the host binary or the component is not built.
    pub fn start(opts: HostOptions) -> Host {
        let port = opts.port.unwrap_or_else(crate::net::free_port);
        let mut host = Host {
            opts,
            port,
            base_url: String::new(),
            config_dir: TempDir::new("e2e-host"),
            process: Restartable::default(),
        };
        host.spawn();
        host
    }

    fn spawn(&mut self) {
        self.process.assert_stopped("the host");
        let binary = crate::paths::host_binary();
        crate::paths::component_wasm();
        let manifest = self
            .opts
            .manifest
            .clone()
            .unwrap_or_else(crate::paths::spin_manifest);
        let mut command = Command::new(binary);
        command
            .arg("--manifest")
            .arg(&manifest)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .current_dir(crate::paths::repo_root());
        self.opts.configure(&mut command, self.config_dir.path());
        let mut guard = ChildGuard::spawn(&self.opts.name, command);
        let base_url = guard.wait_for_line(
            self.opts.startup_timeout,
            "`listening on http://IP:PORT`",
            |line| {
                line.strip_prefix("listening on ")
                    .map(|s| s.trim().trim_end_matches('/').to_string())
            },
        );
        self.base_url = base_url;
        self.process.started(guard);
    }

    /// `http://127.0.0.1:PORT`, as the host printed it.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `<base_url><path>`
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host's process id (None when stopped); its process group has the same id.
    pub fn pid(&self) -> Option<u32> {
        self.process.guard().map(ChildGuard::pid)
    }

    pub fn options(&self) -> &HostOptions {
        &self.opts
    }

    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// The host's stderr log so far.
    pub fn log(&self) -> String {
        self.process.stderr()
    }

    /// The state directory the host was given (None for [`StateDir::Unset`]).
    pub fn state_dir(&self) -> Option<PathBuf> {
        match &self.opts.state_dir {
            StateDir::Own => Some(self.config_dir.path().join("state")),
            StateDir::Shared(dir) => Some(dir.clone()),
            StateDir::Unset => None,
        }
    }

    /// Stops the host. Its local store stays in its state directory (an in-memory
    /// one, with [`StateDir::Unset`], is gone).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port with the same options (and so the same
    /// state directory: the local store is as the host left it).
    pub fn start_again(&mut self) {
        self.stop();
        self.spawn();
    }
}
