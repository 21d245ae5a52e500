//! `redis-server` on a free loopback port, and a client (the `redis` crate's) to
//! look inside it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::paths::TempDir;
use crate::process::{ChildGuard, Restartable};
use crate::wait::wait_for;

const STARTUP: Duration = Duration::from_secs(60);

/// A redis-server listening on 127.0.0.1 only: without persistence (`--save ''
/// --appendonly no`) from [`Redis::start`], with an append-only file from
/// [`Redis::start_with_aof`].
pub struct Redis {
    // Dropped first: the server stops before its directory goes.
    process: Restartable,
    port: u16,
    dir: TempDir,
    starts: u32,
    aof: bool,
}

impl Redis {
    /// Starts redis-server on a free port and waits until it answers PING.
    pub fn start() -> Redis {
        Self::start_persistent(false)
    }

    /// Like [`Redis::start`], with persistence as a Redis pod with a volume has it:
    /// an append-only file in the server's directory (`--appendonly yes`, fsync on
    /// every write so that even SIGKILL loses nothing), which a server started again
    /// by [`Redis::start_again_same_port`] loads: Redis comes back with its data.
    pub fn start_with_aof() -> Redis {
        Self::start_persistent(true)
    }

    fn start_persistent(aof: bool) -> Redis {
        let mut redis = Redis {
            port: crate::net::free_port(),
            dir: TempDir::new("e2e-redis"),
            starts: 0,
            process: Restartable::default(),
            aof,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        self.process.assert_stopped("redis-server");
        let binary = std::env::var_os("REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        let mut command = Command::new(&binary);
        command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", if self.aof { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .args(["--protected-mode", "yes"])
            .args(["--daemonize", "no"])
            .args(["--loglevel", "notice"])
            .args(["--logfile", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .current_dir(self.dir.path());
        self.starts += 1;
        let name = if self.starts == 1 {
            "redis".to_string()
        } else {
            format!("redis-start{}", self.starts)
        };
        let mut guard = ChildGuard::spawn(&name, command);
        let port = self.port;
        let answered = wait_for(STARTUP, "redis-server answers PING", || {
            if !guard.is_running() {
                return Ok(false);
            }
            RespClient::connect(port)
                .and_then(|mut c| c.command(&["PING"]))
                .map_err(|e| e.to_string())
                .and_then(|reply| match reply {
                    RespValue::Simple(s) if s == "PONG" => Ok(true),
                    other => Err(format!("unexpected PING reply {other:?}")),
                })
        });
        let problem = match answered {
            Ok(true) => None,
            Ok(false) => Some("exited before answering PING".to_string()),
            Err(e) => Some(e),
        };
        if let Some(e) = problem {
            guard.fail(&format!(
                "{e} (is redis-server installed? `apt-get install -y redis-server`)"
            ));
        }
        self.process.started(guard);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A Spin runtime config that puts the `default` key-value store in this Redis.
    pub fn runtime_config_toml(&self) -> String {
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            self.url()
        )
    }

    /// Whether the server is running (it may have been stopped by the test).
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Stops the server (SIGTERM; without AOF the data is gone, nothing is saved).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts the server again on the same port: empty without AOF, with the data it
    /// had when it stopped with AOF.
    pub fn start_again_same_port(&mut self) {
        self.stop();
        self.spawn();
    }

    /// A new connection to the server.
    pub fn client(&self) -> RespClient {
        RespClient::connect(self.port)
            .unwrap_or_else(|e| panic!("cannot connect to redis on port {}: {e}", self.port))
    }

    /// Runs one command and returns its reply (panics on I/O errors).
    pub fn command(&self, args: &[&str]) -> RespValue {
        self.client()
            .command(args)
            .unwrap_or_else(|e| panic!("redis command {args:?} failed: {e}"))
    }

    /// `KEYS pattern`, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys = match self.command(&["KEYS", pattern]) {
            RespValue::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    RespValue::Bulk(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    other => panic!("unexpected KEYS element {other:?}"),
                })
                .collect::<Vec<_>>(),
            other => panic!("unexpected KEYS reply {other:?}"),
        };
        keys.sort();
        keys
    }

    /// `GET key` as bytes (None when the key does not exist).
    pub fn get_bytes(&self, key: &str) -> Option<Vec<u8>> {
        match self.command(&["GET", key]) {
            RespValue::Bulk(bytes) => Some(bytes),
            RespValue::Nil => None,
            other => panic!("unexpected GET reply {other:?}"),
        }
    }

    /// `GET key` as UTF-8 text (lossy).
    pub fn get(&self, key: &str) -> Option<String> {
        self.get_bytes(key)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// `SET key value`.
    pub fn set(&self, key: &str, value: &str) {
        match self.command(&["SET", key, value]) {
            RespValue::Simple(s) if s == "OK" => {}
            other => panic!("unexpected SET reply {other:?}"),
        }
    }

    /// `DEL key...`; returns how many were deleted.
    pub fn del(&self, keys: &[&str]) -> i64 {
        let mut args = vec!["DEL"];
        args.extend_from_slice(keys);
        match self.command(&args) {
            RespValue::Integer(n) => n,
            other => panic!("unexpected DEL reply {other:?}"),
        }
    }

    /// `FLUSHALL`.
    pub fn flushall(&self) {
        match self.command(&["FLUSHALL"]) {
            RespValue::Simple(s) if s == "OK" => {}
            other => panic!("unexpected FLUSHALL reply {other:?}"),
        }
    }

    /// Where the server's log goes.
    pub fn log_path(&self) -> Option<PathBuf> {
        self.process.guard().map(|g| g.stdout_log().to_path_buf())
    }
}

/// A RESP reply, as the tests match on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespValue {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<RespValue>),
}

impl From<redis::Value> for RespValue {
    fn from(value: redis::Value) -> RespValue {
        use redis::Value;
        match value {
            Value::Nil => RespValue::Nil,
            Value::Int(n) => RespValue::Integer(n),
            Value::BulkString(bytes) => RespValue::Bulk(bytes),
            Value::Array(items) | Value::Set(items) => {
                RespValue::Array(items.into_iter().map(RespValue::from).collect())
            }
            Value::SimpleString(s) => RespValue::Simple(s),
            Value::Okay => RespValue::Simple("OK".to_string()),
            Value::ServerError(e) => RespValue::Error(match e.details() {
                Some(details) => format!("{} {details}", e.code()),
                None => e.code().to_string(),
            }),
            // RESP3 types; this client speaks RESP2 and never sees them.
            other => panic!("unexpected RESP3 reply {other:?}"),
        }
    }
}

/// One connection to the server.
pub struct RespClient {
    connection: redis::Connection,
}

impl RespClient {
    pub fn connect(port: u16) -> std::io::Result<RespClient> {
        // No `CLIENT SETINFO` on connect: the tests count the commands Redis ran.
        let info = redis::IntoConnectionInfo::into_connection_info(("127.0.0.1", port))
            .map_err(to_io)?
            .set_redis_settings(redis::RedisConnectionInfo::default().set_skip_set_lib_name());
        let connection = redis::Client::open(info)
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .map_err(to_io)?;
        connection
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(to_io)?;
        connection
            .set_write_timeout(Some(Duration::from_secs(10)))
            .map_err(to_io)?;
        Ok(RespClient { connection })
    }

    /// Sends one command and reads its reply (an error reply is a [`RespValue::Error`]).
    pub fn command(&mut self, args: &[&str]) -> std::io::Result<RespValue> {
        let (name, rest) = args
            .split_first()
            .ok_or_else(|| std::io::Error::other("an empty Redis command"))?;
        let mut command = redis::cmd(name);
        command.arg(rest);
        match redis::ConnectionLike::req_command(&mut self.connection, &command) {
            Ok(value) => Ok(RespValue::from(value)),
            Err(e) => match e.code() {
                Some(code) => Ok(RespValue::Error(match e.detail() {
                    Some(detail) => format!("{code} {detail}"),
                    None => code.to_string(),
                })),
                None => Err(to_io(e)),
            },
        }
    }
}

fn to_io(e: redis::RedisError) -> std::io::Error {
    std::io::Error::other(e)
}
