//! Contract: the host binary, running the built component, does what `spin up`
//! (Spin 3.6.x / 4.0.x) does with the default key-value store, the routes and
//! the request headers. Each test is named after the Spin behaviour it pins;
//! the Spin source each one follows is cited at the test.
//!
//! The component shows the store through its discovery cache: `POST /login`
//! fetches the IdP's discovery document once and keeps it in the `default`
//! store (`cache:discovery`), so whether a host fetches it again tells whether
//! it sees the store an earlier host wrote. A small discovery server in this
//! file counts the fetches.
//!
//! Needs the release build of the component (`cargo build --target
//! wasm32-wasip2 --release -p oidc-client`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check_component_built() {
    let wasm = repo_root().join("target/wasm32-wasip2/release/oidc_client.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: build it with `cargo build --target wasm32-wasip2 --release -p oidc-client`",
        wasm.display()
    );
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "spin-contract-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Serves an OpenID discovery document for its own origin on loopback and
/// counts the times it was fetched. Its thread ends with the test process.
struct Discovery {
    origin: String,
    fetches: Arc<AtomicUsize>,
}

impl Discovery {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let document = format!(
            r#"{{"issuer":"{origin}","authorization_endpoint":"{origin}/auth","token_endpoint":"{origin}/token","jwks_uri":"{origin}/jwks","code_challenge_methods_supported":["S256"]}}"#
        );
        let counter = fetches.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // The rest of the head.
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let (status, body) =
                    if request_line.starts_with("GET /.well-known/openid-configuration ") {
                        counter.fetch_add(1, Ordering::SeqCst);
                        ("200 OK", document.as_str())
                    } else {
                        ("404 Not Found", "{}")
                    };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { origin, fetches }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// The test host running the repository's app, killed on drop.
struct Host {
    child: Child,
    port: u16,
}

struct HostSpec<'a> {
    manifest: PathBuf,
    state_dir: Option<&'a str>,
    runtime_config: Option<PathBuf>,
    env: Vec<(&'a str, String)>,
}

impl<'a> HostSpec<'a> {
    fn new(idp: &Discovery) -> Self {
        Self {
            manifest: repo_root().join("spin.toml"),
            state_dir: None,
            runtime_config: None,
            env: vec![
                ("SPIN_VARIABLE_CLIENT_ID", "contract".into()),
                ("SPIN_VARIABLE_CLIENT_SECRET", "contract-secret".into()),
                ("SPIN_VARIABLE_OIDC_ISSUER_URL", idp.origin.clone()),
                ("SPIN_VARIABLE_OIDC_IDP_ORIGIN", idp.origin.clone()),
                ("SPIN_VARIABLE_CLIENT_BASE_URL", "http://app.test".into()),
            ],
        }
    }

    fn state_dir(mut self, dir: &'a str) -> Self {
        self.state_dir = Some(dir);
        self
    }

    fn start(&self) -> Host {
        check_component_built();
        let mut command = Command::new(env!("CARGO_BIN_EXE_spin-test-host"));
        command
            .arg("--manifest")
            .arg(&self.manifest)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            // SPIN_CONTRACT_LOGS=1 shows the hosts' logs.
            .stderr(if std::env::var_os("SPIN_CONTRACT_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        if let Some(dir) = self.state_dir {
            command.args(["--state-dir", dir]);
        }
        if let Some(rc) = &self.runtime_config {
            command.arg("--runtime-config-file").arg(rc);
        }
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("SPIN_VARIABLE_") || key_text.starts_with("SPIN_TEST_HOST_") {
                command.env_remove(key);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // The first start may compile the component.
        let line = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("the host did not print its ready line");
        let port = line
            .trim()
            .strip_prefix("listening on http://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
            .parse()
            .unwrap();
        Host { child, port }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.1 exchange: sends `request` as is, reads until the server
/// closes the connection; returns what came back.
fn exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

/// Status, and body, of a request with `Connection: close`.
fn send(port: u16, method: &str, target: &str, extra: &str, body: &str) -> (u16, String) {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = String::from_utf8_lossy(&exchange(port, request.as_bytes())).into_owned();
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"));
    let body = reply
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

impl Host {
    fn get(&self, target: &str) -> (u16, String) {
        send(self.port, "GET", target, "", "")
    }

    /// Starts a login: the component reads the discovery document (from its
    /// cache in the `default` store, else from the IdP, then caches it).
    fn login(&self) {
        let (status, body) = send(
            self.port,
            "POST",
            "/login",
            "content-type: application/x-www-form-urlencoded\r\n",
            "",
        );
        assert!((300..400).contains(&status), "POST /login: {status} {body}");
    }
}

/// `crates/runtime-config/src/lib.rs` (`key_value_config_resolver`,
/// `DEFAULT_SPIN_STORE_FILENAME`) and `crates/key-value-spin`: without a
/// runtime config naming `default`, it is the SQLite file
/// `<state dir>/sqlite_key_value.db`, with Spin's table; the next process on
/// that directory finds what the last one wrote.
#[test]
fn default_store_is_a_file_in_the_state_dir_that_survives_a_restart() {
    let idp = Discovery::start();
    let state = Scratch::new("restart");
    let dir = state.path().to_str().unwrap();
    let spec = HostSpec::new(&idp).state_dir(dir);

    let host = spec.start();
    host.login();
    assert_eq!(idp.fetches(), 1);
    drop(host);

    let file = state.path().join("sqlite_key_value.db");
    let db = rusqlite::Connection::open(&file).unwrap();
    let (kind, len): (String, i64) = db
        .query_row(
            "SELECT typeof(value), length(value) FROM spin_key_value \
             WHERE store = 'default' AND key = 'cache:discovery'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(kind, "blob");
    assert!(len > 0);
    drop(db);

    let again = spec.start();
    again.login();
    assert_eq!(
        idp.fetches(),
        1,
        "the restarted host read the cache from the file"
    );

    let other = Scratch::new("other");
    let elsewhere = HostSpec::new(&idp)
        .state_dir(other.path().to_str().unwrap())
        .start();
    elsewhere.login();
    assert_eq!(idp.fetches(), 2, "another state directory is another store");
}

/// `spin up` processes given one state directory open the same SQLite file:
/// they share the default store (and would share sessions), so replicas meant
/// to be separate pods need a state directory each.
#[test]
fn two_processes_with_one_state_dir_share_the_default_store() {
    let idp = Discovery::start();
    let state = Scratch::new("shared");
    let spec = HostSpec::new(&idp).state_dir(state.path().to_str().unwrap());
    let a = spec.start();
    let b = spec.start();
    a.login();
    b.login();
    a.login();
    assert_eq!(idp.fetches(), 1, "one store for both processes");

    let own = Scratch::new("own");
    let c = HostSpec::new(&idp)
        .state_dir(own.path().to_str().unwrap())
        .start();
    c.login();
    assert_eq!(
        idp.fetches(),
        2,
        "a process with its own state directory has its own store"
    );
}

/// `crates/runtime-config/src/lib.rs` (`TomlResolver::state_dir`): with no
/// `--state-dir` and no `state_dir` in the runtime config, the state directory
/// is `.spin` beside `spin.toml`; the runtime config's `state_dir` moves it;
/// and a `type = "spin"` store's `path` is relative to the runtime config
/// file's directory (`crates/key-value-spin/src/lib.rs`).
#[test]
fn state_dir_defaults_to_dot_spin_beside_the_manifest_and_runtime_config_can_move_it() {
    let idp = Discovery::start();
    let app = Scratch::new("app");
    // The app's own copy of spin.toml, with the repository's `target` (the
    // component and the host's compile cache) linked in.
    std::fs::copy(repo_root().join("spin.toml"), app.path().join("spin.toml")).unwrap();
    std::os::unix::fs::symlink(repo_root().join("target"), app.path().join("target")).unwrap();
    let mut spec = HostSpec::new(&idp);
    spec.manifest = app.path().join("spin.toml");

    let host = spec.start();
    host.login();
    drop(host);
    assert!(app.path().join(".spin/sqlite_key_value.db").is_file());
    assert_eq!(idp.fetches(), 1);

    let config = Scratch::new("rc");
    let moved = config.path().join("moved");
    std::fs::write(
        config.path().join("rc.toml"),
        format!("state_dir = {:?}\n", moved.to_str().unwrap()),
    )
    .unwrap();
    spec.runtime_config = Some(config.path().join("rc.toml"));
    let host = spec.start();
    host.login();
    drop(host);
    assert!(moved.join("sqlite_key_value.db").is_file());
    assert_eq!(idp.fetches(), 2, "a new state directory, a new store");

    std::fs::write(
        config.path().join("rc.toml"),
        "[key_value_store.default]\ntype = \"spin\"\npath = \"data/kv.sqlite\"\n",
    )
    .unwrap();
    let host = spec.start();
    host.login();
    drop(host);
    assert!(config.path().join("data/kv.sqlite").is_file());
    assert_eq!(idp.fetches(), 3);
}

/// `spin up --state-dir ""` unsets the state directory: the default store is
/// SQLite in memory (`DatabaseLocation::InMemory`), private to the process and
/// gone when it stops.
#[test]
fn an_empty_state_dir_keeps_the_default_store_in_memory_per_process() {
    let idp = Discovery::start();
    let spec = HostSpec::new(&idp).state_dir("");
    let a = spec.start();
    let b = spec.start();
    a.login();
    a.login();
    b.login();
    assert_eq!(idp.fetches(), 2, "one store per process");
    drop(a);
    spec.start().login();
    assert_eq!(idp.fetches(), 3, "nothing left after a restart");
}

/// `crates/routes` matches with routefinder, which ignores every leading and
/// trailing slash of the path: `//healthz` reaches the component with
/// `spin-path-info: /healthz` under the app's `/...` route.
#[test]
fn repeated_leading_slashes_are_trimmed_before_routing() {
    let idp = Discovery::start();
    let state = Scratch::new("routes");
    let host = HostSpec::new(&idp)
        .state_dir(state.path().to_str().unwrap())
        .start();
    let healthz = host.get("/healthz");
    assert_eq!(healthz.0, 200);
    for target in ["//healthz", "///healthz", "//healthz?x=1"] {
        assert_eq!(host.get(target), healthz, "{target}");
    }
    assert_eq!(host.get("//readyz").0, 200);
    assert_eq!(host.get("//no-such-page").0, 404);
}

/// `crates/trigger-http/src/headers.rs` (`prepare_request_headers`): a header
/// value that is not UTF-8 makes Spin's handler fail before the component is
/// instantiated: 500 with an empty body.
#[test]
fn a_header_that_is_not_utf8_gets_an_empty_500_before_the_component_runs() {
    let idp = Discovery::start();
    let state = Scratch::new("utf8");
    let host = HostSpec::new(&idp)
        .state_dir(state.path().to_str().unwrap())
        .start();
    let mut request = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nx-name: caf",
        host.port
    )
    .into_bytes();
    request.extend_from_slice(b"\xe9\r\n\r\n");
    let reply = String::from_utf8_lossy(&exchange(host.port, &request)).into_owned();
    assert!(reply.starts_with("HTTP/1.1 500"), "{reply:?}");
    assert!(
        reply.to_ascii_lowercase().contains("content-length: 0"),
        "{reply:?}"
    );
    // The same header in UTF-8 is fine.
    let (status, _) = send(host.port, "GET", "/healthz", "x-name: caf\u{e9}\r\n", "");
    assert_eq!(status, 200);
}

/// `crates/trigger-http/src/server.rs` (`set_req_uri`): without a usable
/// `Host` (none, not visible ASCII, not an authority) Spin's handler returns an
/// error to hyper, which closes the connection without a response.
#[test]
fn a_request_without_a_usable_host_gets_no_response() {
    let idp = Discovery::start();
    let state = Scratch::new("host");
    let host = HostSpec::new(&idp)
        .state_dir(state.path().to_str().unwrap())
        .start();
    for head in [
        &b"GET /healthz HTTP/1.1\r\n"[..],
        b"GET /healthz HTTP/1.1\r\nHost: bad host\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: caf\xe9.test\r\n",
    ] {
        let mut request = head.to_vec();
        request.extend_from_slice(b"Connection: close\r\n\r\n");
        let reply = exchange(host.port, &request);
        assert!(
            reply.is_empty(),
            "{:?}: {:?}",
            String::from_utf8_lossy(head),
            String::from_utf8_lossy(&reply)
        );
    }
    // The well-known health path is answered before the Host is looked at.
    let reply = exchange(
        host.port,
        b"GET /.well-known/spin/health HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
}

/// `crates/trigger-http/src/wasi.rs` (`prepare_request`) appends Spin's
/// `spin-*` headers to the request's own, so a client's own `spin-path-info`
/// comes first and Spin's last. The component reads the last one: a client
/// that sends `spin-path-info: /healthz` for an unknown page still gets the
/// unknown page (404), not the health check.
#[test]
fn spin_headers_are_appended_after_the_clients_own() {
    let idp = Discovery::start();
    let state = Scratch::new("spoof");
    let host = HostSpec::new(&idp)
        .state_dir(state.path().to_str().unwrap())
        .start();
    assert_eq!(host.get("/no-such-page").0, 404);
    let (status, _) = send(
        host.port,
        "GET",
        "/no-such-page",
        "spin-path-info: /healthz\r\n",
        "",
    );
    assert_eq!(
        status, 404,
        "the component must read Spin's spin-path-info (the last), not the client's"
    );
}

/// `crates/factor-variables/src/host.rs`: a provider that fails when `get`
/// asks makes `get` return `error::provider`. The host simulates that
/// provider (`SPIN_TEST_HOST_FAILING_VARIABLES`); the component then reports
/// its configuration as unusable.
#[test]
fn a_failing_variables_provider_is_a_provider_error_at_get() {
    let idp = Discovery::start();
    let state = Scratch::new("provider");
    let mut spec = HostSpec::new(&idp).state_dir(state.path().to_str().unwrap());
    let healthy = spec.start();
    assert_eq!(healthy.get("/readyz").0, 200);
    drop(healthy);
    spec.env
        .push(("SPIN_TEST_HOST_FAILING_VARIABLES", "client_secret".into()));
    let failing = spec.start();
    let (status, body) = failing.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("configuration"), "{body}");
}
