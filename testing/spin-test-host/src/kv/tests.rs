//! One behaviour suite run against every backend, plus Redis layout checks
//! and Redis outages as Spin's client lives through them, against a real
//! `redis-server` started by the test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::redis::RedisBackend;
use super::sqlite::{Location, SqliteBackend};
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
/// `clients` (several clients of one store: one Redis server, or one SQLite
/// connection shared by the tasks); the total must be exact.
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

/// A scratch directory for database files, removed on drop.
struct DbDir(PathBuf);

impl DbDir {
    fn new(what: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "spin-test-host-sqlite-{what}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for DbDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Spin's SQLite store in a file, as the default store in a state directory.
fn sqlite_file(dir: &DbDir, label: &str) -> SqliteBackend {
    SqliteBackend::new(label, Location::File(dir.file("sqlite_key_value.db")))
}

#[tokio::test]
async fn sqlite_backend_passes_the_suite_in_memory_and_in_a_file() {
    exercise(&SqliteBackend::new("default", Location::InMemory)).await;
    let dir = DbDir::new("suite");
    exercise(&sqlite_file(&dir, "default")).await;
}

#[tokio::test]
async fn sqlite_backend_increments_as_spins_sqlite_store() {
    let dir = DbDir::new("increment");
    for kv in [
        SqliteBackend::new("default", Location::InMemory),
        sqlite_file(&dir, "default"),
    ] {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_backend_increment_is_atomic() {
    let dir = DbDir::new("atomic");
    for kv in [
        Arc::new(SqliteBackend::new("default", Location::InMemory)) as Arc<dyn KvBackend>,
        Arc::new(sqlite_file(&dir, "default")),
    ] {
        // Opened first, as the guest does: concurrent first opens race to
        // create the connection and its table, and one may find the file
        // locked (in Spin too: `KeyValueSqlite::get` has the same race).
        kv.after_open().await.unwrap();
        concurrent_increments_sum_exactly(vec![kv.clone()]).await;
        assert_eq!(
            kv.get("hits").await,
            Ok(Some((50 * 32 * 33 / 2i64).to_le_bytes().to_vec()))
        );
    }
}

/// The file is the one `spin up` reads: Spin's table and columns, the label in
/// `store`, values as BLOBs; several labels in one file see only their rows;
/// and the data outlives the connection (a restart).
#[tokio::test]
async fn sqlite_file_has_spins_layout_and_survives_reopening() {
    let dir = DbDir::new("layout");
    let default = sqlite_file(&dir, "default");
    default.after_open().await.unwrap();
    default
        .set("session:abc", b"{\"sub\":\"u1\"}")
        .await
        .unwrap();
    assert_eq!(default.increment("n", 2).await, Ok(2));
    let other = sqlite_file(&dir, "other");
    other.set("session:abc", b"other").await.unwrap();
    drop((default, other));

    let raw = rusqlite::Connection::open(dir.file("sqlite_key_value.db")).unwrap();
    let mut columns: Vec<(String, String, bool)> = raw
        .prepare("SELECT name, type, pk FROM pragma_table_info('spin_key_value')")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? > 0)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    columns.sort();
    assert_eq!(
        columns,
        [
            ("key".to_owned(), "TEXT".to_owned(), true),
            ("store".to_owned(), "TEXT".to_owned(), true),
            ("value".to_owned(), "BLOB".to_owned(), false),
        ]
    );
    let rows: Vec<(String, String, String, Vec<u8>)> = raw
        .prepare("SELECT store, key, typeof(value), value FROM spin_key_value ORDER BY store, key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let row = |store: &str, key: &str, value: &[u8]| {
        (
            store.to_owned(),
            key.to_owned(),
            "blob".to_owned(),
            value.to_vec(),
        )
    };
    assert_eq!(
        rows,
        [
            row("default", "n", &2i64.to_le_bytes()),
            row("default", "session:abc", b"{\"sub\":\"u1\"}"),
            row("other", "session:abc", b"other"),
        ]
    );
    // A row written by someone else (e.g. `spin up`) is read as is.
    raw.execute(
        "INSERT INTO spin_key_value (store, key, value) VALUES ('default', 'by-spin', x'0102')",
        [],
    )
    .unwrap();
    drop(raw);

    let reopened = sqlite_file(&dir, "default");
    assert_eq!(reopened.get("by-spin").await, Ok(Some(vec![1, 2])));
    assert_eq!(reopened.increment("n", 1).await, Ok(3));
    let mut keys = reopened.get_keys().await.unwrap();
    keys.sort();
    assert_eq!(keys, ["by-spin", "n", "session:abc"]);
}

/// The file and its table are made by the first open, not before; an open
/// that cannot make them fails (and so does the guest's open), and the next
/// open tries again.
#[tokio::test]
async fn sqlite_file_is_created_by_the_first_open_and_a_failed_open_is_retried() {
    let dir = DbDir::new("open");
    let kv = sqlite_file(&dir, "default");
    assert!(!dir.file("sqlite_key_value.db").exists());
    kv.after_open().await.unwrap();
    assert!(dir.file("sqlite_key_value.db").exists());

    let missing = dir.file("not-yet");
    let kv = SqliteBackend::new("default", Location::File(missing.join("db.sqlite")));
    let err = kv.after_open().await.unwrap_err();
    assert!(err.0.contains("unable to open"), "{err:?}");
    std::fs::create_dir_all(&missing).unwrap();
    kv.after_open().await.unwrap();
    kv.set("k", b"v").await.unwrap();
}

/// Two processes on one state directory (two connections to one file) share
/// the store. Their increments are serialised by SQLite's file locks: an
/// increment that would deadlock with the other connection's fails at once
/// with SQLite's "database is locked" (Spin: the same rusqlite transaction),
/// an ordinary store error; the successful ones add up exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_to_one_file_share_the_store_and_increments_add_up() {
    let dir = DbDir::new("shared");
    let a: Arc<dyn KvBackend> = Arc::new(sqlite_file(&dir, "default"));
    let b: Arc<dyn KvBackend> = Arc::new(sqlite_file(&dir, "default"));
    a.after_open().await.unwrap();
    b.after_open().await.unwrap();
    a.set("k", b"from a").await.unwrap();
    assert_eq!(b.get("k").await, Ok(Some(b"from a".to_vec())));
    b.delete("k").await.unwrap();
    assert_eq!(a.get("k").await, Ok(None));

    let tasks: Vec<_> = (0..8i64)
        .map(|task| {
            let kv = if task % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let (mut added, mut locked) = (0, 0);
                for _ in 0..25 {
                    match kv.increment("hits", task + 1).await {
                        Ok(_) => added += task + 1,
                        Err(IncrementError::Store(KvError(m))) if m.contains("locked") => {
                            locked += 1
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
                (added, locked)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap().0;
    }
    assert_eq!(a.increment("hits", 0).await, Ok(total));
    assert_eq!(b.increment("hits", 0).await, Ok(total));
}

/// Where the stores live, by Spin's rules (crates/runtime-config/src/lib.rs,
/// crates/key-value-spin/src/lib.rs).
#[tokio::test]
async fn stores_are_placed_by_spins_rules() {
    let dir = DbDir::new("places");
    let app = dir.file("app");
    let state = |arg: &StateDirArg, toml: Option<&str>, app: Option<&Path>| {
        resolve_state_dir(arg, toml, app).unwrap()
    };
    // No flag, no runtime config: `.spin` beside spin.toml; none for no app dir.
    assert_eq!(
        state(&StateDirArg::Default, None, Some(&app)),
        Some(app.join(".spin"))
    );
    assert_eq!(state(&StateDirArg::Default, None, None), None);
    // The flag wins over the runtime config's `state_dir`; empty unsets.
    let flag = StateDirArg::from_flag("/var/state");
    assert_eq!(
        state(&flag, Some("/other"), Some(&app)),
        Some("/var/state".into())
    );
    assert_eq!(
        state(&StateDirArg::from_flag(""), Some("/other"), Some(&app)),
        None
    );
    assert_eq!(
        state(&StateDirArg::Default, Some("/other"), Some(&app)),
        Some("/other".into())
    );
    assert_eq!(state(&StateDirArg::Default, Some(""), Some(&app)), None);
    // A relative path is made absolute against the working directory.
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        state(&StateDirArg::from_flag("st"), None, None),
        Some(cwd.join("st"))
    );

    let load = |rc: Option<&str>, state_dir: StateDirArg| {
        let runtime_config = rc.map(|text| {
            let path = dir.file("rc/runtime-config.toml");
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path
        });
        Stores::load(&StoreOptions {
            runtime_config,
            app_dir: Some(app.clone()),
            state_dir,
        })
        .unwrap()
    };
    let quoted = |p: PathBuf| format!("{:?}", p.display().to_string());

    // The default store: `<state dir>/sqlite_key_value.db`, its directory
    // made at start-up, the file by the first open.
    let stores = load(None, StateDirArg::Default);
    let file = app.join(".spin").join(DEFAULT_STORE_FILE);
    assert_eq!(stores.place("default"), Some(quoted(file.clone()).as_str()));
    assert!(app.join(".spin").is_dir() && !file.exists());
    let default = stores.get("default").unwrap();
    default.after_open().await.unwrap();
    default.set("k", b"v").await.unwrap();
    assert!(file.exists());

    let elsewhere = dir.file("elsewhere");
    let stores = load(None, StateDirArg::Provided(elsewhere.clone()));
    assert_eq!(
        stores.place("default"),
        Some(quoted(elsewhere.join(DEFAULT_STORE_FILE)).as_str())
    );
    assert!(elsewhere.is_dir());
    let stores = load(None, StateDirArg::Unset);
    assert_eq!(stores.place("default"), Some("a temporary in-memory store"));

    // `type = "spin"`: `path` relative to the runtime config file's
    // directory, absolute as is, none: in memory; `default` named in the
    // runtime config replaces the state directory's file.
    let absolute = dir.file("abs/x.db");
    let rc = format!(
        "state_dir = \"\"\n\
         [key_value_store.default]\ntype = \"spin\"\npath = \"data/default.db\"\n\
         [key_value_store.abs]\ntype = \"spin\"\npath = {:?}\n\
         [key_value_store.mem]\ntype = \"spin\"\n",
        absolute.display().to_string()
    );
    let stores = load(Some(&rc), StateDirArg::Default);
    assert_eq!(
        stores.place("default"),
        Some(quoted(dir.file("rc/data/default.db")).as_str())
    );
    assert!(dir.file("rc/data").is_dir());
    assert_eq!(stores.place("abs"), Some(quoted(absolute).as_str()));
    assert_eq!(stores.place("mem"), Some("a temporary in-memory store"));

    // The runtime config's `state_dir` places the default store.
    let rc = format!(
        "state_dir = {:?}\n",
        dir.file("from-rc").display().to_string()
    );
    let stores = load(Some(&rc), StateDirArg::Default);
    assert_eq!(
        stores.place("default"),
        Some(quoted(dir.file("from-rc").join(DEFAULT_STORE_FILE)).as_str())
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

/// The client settings of Spin's Redis store, which decide what a Redis outage
/// does to requests: no time limit on connecting or on a reply, and
/// reconnection attempts at once, after 1-2 s, then 60-120 s apart (with
/// `backon`'s fixed jitter seed: 1.5, 118, 210, 307, 377, 473 s; the e2e test
/// `faults.rs` measures the resulting recovery time).
#[test]
fn redis_client_settings_are_spins() {
    assert_eq!(
        super::redis::SPIN,
        super::redis::ClientSettings {
            connection_timeout: None,
            response_timeout: None,
            first_retry_delay: Duration::from_secs(1),
            backoff_multiplier: 100.0,
            max_retry_delay: Duration::from_secs(60),
            retries: 6,
        }
    );
    assert_eq!(
        super::redis::SPIN.longest_gap_between_attempts(),
        Duration::from_secs(120)
    );
}

/// Spin's schedule, shortened for tests of the mechanics: same shape (no
/// timeouts, exponential backoff with jitter), milliseconds instead of minutes.
fn fast(retries: usize) -> super::redis::ClientSettings {
    super::redis::ClientSettings {
        first_retry_delay: Duration::from_millis(20),
        backoff_multiplier: 2.0,
        max_retry_delay: Duration::from_millis(100),
        retries,
        ..super::redis::SPIN
    }
}

/// None while `task` is still running after `wait` (it is left running), else
/// what it returned.
async fn after<T>(
    task: &mut tokio::task::JoinHandle<T>,
    wait: Duration,
) -> Option<Result<T, tokio::task::JoinError>> {
    tokio::time::timeout(wait, task).await.ok()
}

/// Waits for `task` for at most `bound`.
async fn finishes<T>(task: tokio::task::JoinHandle<T>, bound: Duration, what: &str) -> T {
    tokio::time::timeout(bound, task)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {bound:?}"))
        .unwrap()
}

/// Spin: a store opened after Redis went away spends the dead connection's one
/// failure on its PING (`after_open`); the operations then wait for Redis
/// instead of failing, and go through, with Redis's data, once it is back.
#[tokio::test]
async fn redis_outage_operations_wait_and_go_through_when_redis_is_back_with_its_data() {
    let port = free_port();
    let dir = TestDir::new("outage");
    let server = RedisServer::start_persistent(port, dir.path());
    let kv = Arc::new(RedisBackend::with_settings(&server.url(), fast(10_000)).unwrap());
    kv.after_open().await.unwrap();
    kv.set("before", b"1").await.unwrap();

    drop(server); // SIGKILL: the connection is closed, nothing answers on the port

    // The open answers at once: the failed PING is ignored.
    let opened = tokio::time::timeout(Duration::from_secs(2), kv.after_open()).await;
    assert_eq!(
        opened.ok(),
        Some(Ok(())),
        "the open neither waits nor fails"
    );
    let mut get = tokio::spawn({
        let kv = kv.clone();
        async move { kv.get("before").await }
    });
    let mut set = tokio::spawn({
        let kv = kv.clone();
        async move { kv.set("during", b"2").await }
    });
    let read = after(&mut get, Duration::from_secs(1)).await;
    assert!(read.is_none(), "a read waits for Redis: {read:?}");
    let write = after(&mut set, Duration::from_millis(100)).await;
    assert!(write.is_none(), "a write waits for Redis: {write:?}");

    // Back on the same port with its data (AOF).
    let server = RedisServer::start_persistent(port, dir.path());
    let bound = Duration::from_secs(10);
    assert_eq!(
        finishes(get, bound, "the read").await,
        Ok(Some(b"1".to_vec()))
    );
    assert_eq!(finishes(set, bound, "the write").await, Ok(()));
    assert_eq!(server.command(&["GET", "during"]), "$1\r\n2\r\n");
    assert_eq!(kv.get("before").await, Ok(Some(b"1".to_vec())));
}

/// Spin passes the first failure of a connection Redis closed to whoever sent
/// the command (a request that opened the store before Redis went away sees one
/// error), and reconnects: the next command goes through.
#[tokio::test]
async fn a_closed_connection_fails_one_command_then_reconnects() {
    let port = free_port();
    let dir = TestDir::new("closed");
    let server = RedisServer::start_persistent(port, dir.path());
    let kv = RedisBackend::new(&server.url()).unwrap();
    kv.after_open().await.unwrap();
    kv.set("k", b"v").await.unwrap();

    drop(server);
    let _server = RedisServer::start_persistent(port, dir.path());

    let first = kv.get("k").await;
    assert!(
        matches!(&first, Err(KvError(m)) if m.starts_with("redis:")),
        "{first:?}"
    );
    // Spin's first reconnection attempt is immediate, and Redis is up.
    let second = tokio::time::timeout(Duration::from_secs(5), kv.get("k")).await;
    assert_eq!(second.ok(), Some(Ok(Some(b"v".to_vec()))));
}

/// Spin has no response timeout: Redis that hangs (SIGSTOP here; a network
/// partition alike) leaves commands waiting until it answers again.
#[tokio::test]
async fn redis_that_hangs_leaves_commands_waiting_until_it_answers() {
    let server = RedisServer::start(free_port());
    let kv = Arc::new(RedisBackend::new(&server.url()).unwrap());
    kv.after_open().await.unwrap();
    kv.set("k", b"v").await.unwrap();

    server.signal("STOP");
    let mut get = tokio::spawn({
        let kv = kv.clone();
        async move { kv.get("k").await }
    });
    let read = after(&mut get, Duration::from_secs(2)).await;
    assert!(read.is_none(), "no response timeout: {read:?}");
    server.signal("CONT");
    assert_eq!(
        finishes(get, Duration::from_secs(5), "the read").await,
        Ok(Some(b"v".to_vec()))
    );
}

/// Spin connects at the first open, retrying through the whole schedule while
/// Redis is down: the open waits, and goes through if Redis comes up meanwhile.
#[tokio::test]
async fn the_first_open_waits_for_redis_to_come_up() {
    let port = free_port();
    let kv = Arc::new(
        RedisBackend::with_settings(&format!("redis://127.0.0.1:{port}"), fast(10_000)).unwrap(),
    );
    let mut open = tokio::spawn({
        let kv = kv.clone();
        async move { kv.after_open().await }
    });
    let opened = after(&mut open, Duration::from_millis(500)).await;
    assert!(opened.is_none(), "the open waits: {opened:?}");
    let _server = RedisServer::start(port);
    assert_eq!(
        finishes(open, Duration::from_secs(10), "the open").await,
        Ok(())
    );
    kv.set("k", b"v").await.unwrap();
}

/// When a round of reconnection attempts runs out (473 s with Spin's
/// schedule), every command waiting for it fails, and the next command starts
/// a new round; a first open that runs out fails the open, and the next open
/// connects again.
#[tokio::test]
async fn when_the_retries_run_out_waiting_commands_fail_and_the_next_one_starts_again() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");

    let never_connected = RedisBackend::with_settings(&url, fast(3)).unwrap();
    let failed = tokio::time::timeout(Duration::from_secs(5), never_connected.after_open()).await;
    assert!(
        matches!(&failed, Ok(Err(KvError(m))) if m.starts_with("redis:")),
        "{failed:?}"
    );

    let dir = TestDir::new("runs-out");
    let server = RedisServer::start_persistent(port, dir.path());
    never_connected.after_open().await.unwrap();
    never_connected.set("k", b"v").await.unwrap();

    drop(server);
    never_connected.after_open().await.unwrap(); // spends the closed connection's failure
    let waited = tokio::time::timeout(Duration::from_secs(5), never_connected.get("k")).await;
    assert!(
        matches!(&waited, Ok(Err(KvError(m))) if m.starts_with("redis:")),
        "{waited:?}"
    );

    // The failure started a new round, which may itself run out before
    // redis-server is up: then the next failure starts another, whose first
    // attempt (at once) connects.
    let _server = RedisServer::start_persistent(port, dir.path());
    let mut results = Vec::new();
    for _ in 0..2 {
        let result = tokio::time::timeout(Duration::from_secs(5), never_connected.get("k")).await;
        let done = matches!(result, Ok(Ok(_)));
        results.push(result);
        if done {
            break;
        }
    }
    assert_eq!(
        results.last().and_then(|r| r.as_ref().ok()),
        Some(&Ok(Some(b"v".to_vec()))),
        "{results:?}"
    );
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
"#,
    )
    .unwrap();
    assert!(stores.contains("default") && stores.contains("cache"));
    // Not connected at start-up (as Spin): a dead Redis makes the first open
    // wait through the retries, not the host fail to start.
    let default = stores.get("default").unwrap();
    let open = tokio::time::timeout(Duration::from_millis(300), default.after_open()).await;
    assert!(open.is_err(), "the open waits for Redis: {open:?}");
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

/// A directory under the system's temp dir, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new(what: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "spin-test-host-redis-{what}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throwaway `redis-server`, killed (SIGKILL) on drop, also when the test
/// panics: without persistence, or with an append-only file written on every
/// command, so a server started again on the same directory has the data.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(port: u16) -> Self {
        Self::spawn(port, &["--save", "", "--appendonly", "no"], None)
    }

    fn start_persistent(port: u16, dir: &Path) -> Self {
        let aof = ["--appendonly", "yes", "--appendfsync", "always"];
        Self::spawn(port, &[&["--save", ""][..], &aof[..]].concat(), Some(dir))
    }

    fn spawn(port: u16, persistence: &[&str], dir: Option<&Path>) -> Self {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(persistence)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(dir) = dir {
            command.arg("--dir").arg(dir);
        }
        let child = command.spawn().unwrap_or_else(|e| {
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

    /// Sends `signal` (`STOP`, `CONT`, ...) to the server.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
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
