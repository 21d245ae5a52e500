//! One behaviour suite run against every backend, plus Redis outage and
//! layout checks against a real `redis-server` started by the test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::memory::MemoryBackend;
use super::redis::RedisBackend;
use super::*;

/// What every backend must do, as the guest sees it through the WIT API.
/// Expects an empty store.
async fn exercise(kv: &dyn KvBackend) {
    assert_eq!(kv.get_keys().await, Ok(vec![]));
    assert_eq!(kv.get("k1").await, Ok(None));
    assert_eq!(kv.exists("k1").await, Ok(false));

    kv.set("k1", b"v1").await.unwrap();
    assert_eq!(kv.get("k1").await, Ok(Some(b"v1".to_vec())));
    assert_eq!(kv.exists("k1").await, Ok(true));

    // Overwrite with arbitrary bytes: values are opaque, not text.
    let binary = [0u8, 255, 10, 13, 0, 1];
    kv.set("k1", &binary).await.unwrap();
    assert_eq!(kv.get("k1").await, Ok(Some(binary.to_vec())));

    // An empty value exists and reads back empty, not as missing.
    kv.set("empty", b"").await.unwrap();
    assert_eq!(kv.get("empty").await, Ok(Some(vec![])));
    assert_eq!(kv.exists("empty").await, Ok(true));

    // Keys are arbitrary strings.
    let odd = "sess:ab/cd?x=1 ключ";
    kv.set(odd, b"x").await.unwrap();
    assert_eq!(kv.get(odd).await, Ok(Some(b"x".to_vec())));

    let mut keys = kv.get_keys().await.unwrap();
    keys.sort();
    assert_eq!(keys, vec!["empty".to_string(), "k1".into(), odd.into()]);

    kv.delete("k1").await.unwrap();
    kv.delete("k1").await.unwrap(); // deleting a missing key is not an error
    assert_eq!(kv.get("k1").await, Ok(None));
    assert_eq!(kv.exists("k1").await, Ok(false));
    assert_eq!(kv.get_keys().await.map(|k| k.len()), Ok(2));
}

#[tokio::test]
async fn memory_backend_passes_the_suite() {
    exercise(&MemoryBackend::default()).await;
}

#[tokio::test]
async fn redis_backend_passes_the_suite_and_stores_raw_bytes() {
    let server = RedisServer::start(free_port());
    let kv = RedisBackend::new(&server.url()).unwrap();
    exercise(&kv).await;

    // Same layout as Spin's Redis store: the raw key holds the raw value.
    kv.set("session:abc", b"{\"sub\":\"u1\"}").await.unwrap();
    assert_eq!(
        server.command(&["GET", "session:abc"]),
        "$12\r\n{\"sub\":\"u1\"}\r\n"
    );
    assert_eq!(server.command(&["TYPE", "session:abc"]), "+string\r\n");
    server.command(&["SET", "written-by-spin", "hello"]);
    assert_eq!(kv.get("written-by-spin").await, Ok(Some(b"hello".to_vec())));
}

#[tokio::test]
async fn redis_outage_fails_fast_and_recovers_without_rebuilding() {
    let port = free_port();
    let server = RedisServer::start(port);
    let kv = RedisBackend::new(&server.url()).unwrap();
    kv.set("before", b"1").await.unwrap();

    drop(server); // kills and reaps redis-server

    for attempt in 0..3 {
        let started = Instant::now();
        let result = kv.get("before").await;
        assert!(result.is_err(), "attempt {attempt}: {result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "attempt {attempt} took {:?}",
            started.elapsed()
        );
    }
    assert!(kv.set("during", b"x").await.is_err());

    let _server = RedisServer::start(port);
    // The connection manager reconnects in the background after a failure;
    // the first call after the restart may still see the old error.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match kv.set("after", b"2").await {
            Ok(()) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("Redis came back but the backend did not recover: {e:?}"),
        }
    }
    assert_eq!(kv.get("after").await, Ok(Some(b"2".to_vec())));
    // The restarted server has no persistence: the old key is gone.
    assert_eq!(kv.get("before").await, Ok(None));
}

#[tokio::test]
async fn runtime_config_selects_backends() {
    let stores = Stores::parse("").unwrap();
    assert!(stores.contains("default") && !stores.contains("other"));

    let stores = Stores::parse(
        r#"
[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:1"

[key_value_store.cache]
type = "spin"
path = "cache.db"
"#,
    )
    .unwrap();
    assert!(stores.contains("default") && stores.contains("cache"));
    // Lazily connected: a dead Redis is an operation error, not a start-up one.
    let err = stores.get("default").unwrap().get("k").await.unwrap_err();
    assert!(err.0.starts_with("redis:"), "{err:?}");
    exercise(stores.get("cache").unwrap().as_ref()).await;
}

#[tokio::test]
async fn runtime_config_accepts_what_spin_operator_renders() {
    let rendered = r#"
[[config_provider]]
type = "env"
prefix = "SPIN_VARIABLE_"

[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:1"
"#;
    assert!(Stores::parse(rendered).unwrap().contains("default"));
    let vault = "[[config_provider]]\ntype = \"vault\"\nurl = \"x\"\n";
    assert!(Stores::parse(vault).is_err());
}

#[tokio::test]
async fn runtime_config_errors_are_clear() {
    let unknown = "[key_value_store.default]\ntype = \"azure_cosmos\"\n";
    let err = Stores::parse(unknown).err().unwrap().to_string();
    assert!(
        err.contains("azure_cosmos") && err.contains("default"),
        "{err}"
    );

    let no_url = "[key_value_store.default]\ntype = \"redis\"\n";
    assert!(Stores::parse(no_url).is_err());

    let bad_url = "[key_value_store.default]\ntype = \"redis\"\nurl = \"not a url\"\n";
    assert!(Stores::parse(bad_url).is_err());

    let other_section = "[sqlite_database.default]\ntype = \"spin\"\n";
    assert!(Stores::parse(other_section).is_err());
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway `redis-server` without persistence, killed on drop (also
/// when the test panics).
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}); these tests need it on PATH: \
                     apt-get install -y redis-server"
                )
            });
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.try_command(&["PING"]).as_deref() != Some("+PONG\r\n") {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("redis-server on port {port} exited at start-up: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} never answered PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends one command in RESP and returns the raw reply.
    fn try_command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reply = vec![0u8; 4096];
        let n = stream.read(&mut reply).ok()?;
        Some(String::from_utf8_lossy(&reply[..n]).into_owned())
    }

    fn command(&self, args: &[&str]) -> String {
        self.try_command(args).expect("redis-server did not answer")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
