//! One behaviour suite run against every backend, plus Redis outage and
//! layout checks against a real `redis-server` started by the test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
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

/// What every backend's `increment` must do (`wasi:keyvalue/atomics`), apart
/// from the stored form and the handling of non-counter values, which differ
/// per backend as they do in Spin. Uses its own keys only.
async fn exercise_increment(kv: &dyn KvBackend) {
    // A missing key starts from 0; each call returns the new value.
    assert_eq!(kv.increment("counter", 1).await, Ok(1));
    assert_eq!(kv.increment("counter", 2).await, Ok(3));
    // Delta 0 reads the current value without changing it.
    assert_eq!(kv.increment("counter", 0).await, Ok(3));
    assert_eq!(kv.increment("counter", 0).await, Ok(3));
    // Negative deltas go below 0.
    assert_eq!(kv.increment("counter", -5).await, Ok(-2));
    assert_eq!(kv.increment("counter", 5).await, Ok(3));
    // The counter is an ordinary key to get / exists / get-keys.
    assert_eq!(kv.exists("counter").await, Ok(true));
    assert!(kv.get_keys().await.unwrap().contains(&"counter".to_owned()));

    // Delta 0 on a missing key returns 0 and creates the key (Spin: INCRBY 0
    // in Redis, an INSERT of 0 in SQLite).
    assert_eq!(kv.exists("zero").await, Ok(false));
    assert_eq!(kv.increment("zero", 0).await, Ok(0));
    assert_eq!(kv.exists("zero").await, Ok(true));

    // Delete resets the counter.
    kv.delete("counter").await.unwrap();
    assert_eq!(kv.get("counter").await, Ok(None));
    assert_eq!(kv.increment("counter", 7).await, Ok(7));

    // Counters are independent per key.
    assert_eq!(kv.increment("other-counter", 1).await, Ok(1));
    assert_eq!(kv.increment("counter", 0).await, Ok(7));

    // A value the backend cannot read as a counter is refused and left as it
    // was; how it is refused is backend-specific (see the per-backend tests).
    kv.set("not-a-counter", b"abc").await.unwrap();
    assert!(kv.increment("not-a-counter", 1).await.is_err());
    assert_eq!(kv.get("not-a-counter").await, Ok(Some(b"abc".to_vec())));
}

/// Many tasks on several threads, each with many increments, through
/// `clients` (several clients of one store: one Redis server, or one
/// in-memory map shared by the tasks); the total must be exact.
async fn concurrent_increments_sum_exactly(clients: Vec<Arc<dyn KvBackend>>) {
    const TASKS: i64 = 32;
    const PER_TASK: i64 = 50;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let kv = clients[task as usize % clients.len()].clone();
            tokio::spawn(async move {
                for _ in 0..PER_TASK {
                    kv.increment("hits", task + 1).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let expected = PER_TASK * TASKS * (TASKS + 1) / 2;
    for kv in &clients {
        assert_eq!(kv.increment("hits", 0).await, Ok(expected));
    }
}

#[tokio::test]
async fn memory_backend_passes_the_suite() {
    exercise(&MemoryBackend::default()).await;
}

#[tokio::test]
async fn memory_backend_increments_as_spins_sqlite_store() {
    let kv = MemoryBackend::default();
    exercise_increment(&kv).await;

    // Stored as 8 little-endian bytes, as Spin's SQLite store does.
    assert_eq!(kv.increment("c", 3).await, Ok(3));
    assert_eq!(kv.get("c").await, Ok(Some(3i64.to_le_bytes().to_vec())));
    assert_eq!(kv.increment("c", -5).await, Ok(-2));
    assert_eq!(
        kv.get("c").await,
        Ok(Some(vec![0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
    );

    // Any 8-byte value is a counter, whoever wrote it.
    kv.set("eight", &41i64.to_le_bytes()).await.unwrap();
    assert_eq!(kv.increment("eight", 1).await, Ok(42));
    kv.set("eight", b"ABCDEFGH").await.unwrap();
    let as_counter = i64::from_le_bytes(*b"ABCDEFGH");
    assert_eq!(kv.increment("eight", 1).await, Ok(as_counter + 1));

    // Any other length is where Spin's host panics: decimal text is no
    // counter here (unlike Redis), nor is an empty value.
    for value in [&b"41"[..], b"abc", b"", b"123456789"] {
        kv.set("bad", value).await.unwrap();
        let err = kv.increment("bad", 1).await.unwrap_err();
        assert!(
            matches!(&err, IncrementError::HostPanic(m) if m.contains(&format!("{} bytes", value.len()))),
            "{err:?}"
        );
        assert_eq!(kv.get("bad").await, Ok(Some(value.to_vec())));
    }

    // Overflow wraps, as Spin's release build (no overflow checks) does.
    kv.set("max", &i64::MAX.to_le_bytes()).await.unwrap();
    assert_eq!(kv.increment("max", 1).await, Ok(i64::MIN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_backend_increment_is_atomic() {
    let kv: Arc<dyn KvBackend> = Arc::new(MemoryBackend::default());
    concurrent_increments_sum_exactly(vec![kv.clone()]).await;
    assert_eq!(
        kv.get("hits").await,
        Ok(Some((50 * 32 * 33 / 2i64).to_le_bytes().to_vec()))
    );
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
async fn redis_backend_increments_as_spins_redis_store() {
    let server = RedisServer::start(free_port());
    let kv = RedisBackend::new(&server.url()).unwrap();
    exercise_increment(&kv).await;

    // INCRBY: the counter is a plain Redis string holding decimal text.
    assert_eq!(kv.increment("c", 3).await, Ok(3));
    assert_eq!(server.command(&["GET", "c"]), "$1\r\n3\r\n");
    assert_eq!(server.command(&["TYPE", "c"]), "+string\r\n");
    assert_eq!(kv.get("c").await, Ok(Some(b"3".to_vec())));
    assert_eq!(kv.increment("c", -5).await, Ok(-2));
    assert_eq!(server.command(&["GET", "c"]), "$2\r\n-2\r\n");

    // Decimal text from anyone is a counter.
    kv.set("text", b"41").await.unwrap();
    assert_eq!(kv.increment("text", 1).await, Ok(42));
    server.command(&["SET", "by-redis-cli", "100"]);
    assert_eq!(kv.increment("by-redis-cli", -1).await, Ok(99));

    // Anything else is Redis's error, an ordinary store error for the guest,
    // including the 8-byte form of the SQLite store, and overflow.
    for value in [&b"abc"[..], b"", &3i64.to_le_bytes(), b"1.5"] {
        kv.set("bad", value).await.unwrap();
        let err = kv.increment("bad", 1).await.unwrap_err();
        assert!(
            matches!(&err, IncrementError::Store(KvError(m)) if m.contains("not an integer")),
            "{value:?}: {err:?}"
        );
        assert_eq!(kv.get("bad").await, Ok(Some(value.to_vec())));
    }
    kv.set("max", i64::MAX.to_string().as_bytes())
        .await
        .unwrap();
    let err = kv.increment("max", 1).await.unwrap_err();
    assert!(
        matches!(&err, IncrementError::Store(KvError(m)) if m.contains("overflow")),
        "{err:?}"
    );
    assert_eq!(kv.increment("max", 0).await, Ok(i64::MAX));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_backend_increment_is_atomic_across_clients() {
    let server = RedisServer::start(free_port());
    // Separate connections, as separate pods sharing the Redis store have.
    let clients: Vec<Arc<dyn KvBackend>> = (0..3)
        .map(|_| Arc::new(RedisBackend::new(&server.url()).unwrap()) as Arc<dyn KvBackend>)
        .collect();
    concurrent_increments_sum_exactly(clients).await;
    assert_eq!(
        server.command(&["GET", "hits"]),
        format!("$5\r\n{}\r\n", 50 * 32 * 33 / 2)
    );
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
