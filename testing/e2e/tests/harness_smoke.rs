//! The harness's process guards, Redis and nginx helpers, and the store-record checks
//! of `e2e::records`, without the component.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::net::port_accepts;
use e2e::process::stat_fields;
use e2e::{Browser, ChildGuard, EchoServer, Nginx, Redis, wait_until};

/// Whether `pid` is a live process (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat_fields(&stat).first(), Some(&("Z" | "X"))),
        Err(_) => false,
    }
}

/// A guarded shell that starts `sleep 1000` in its own group, then runs `then`:
/// (guard, the shell's pid, the sleep's pid).
fn shell_with_a_child(then: &str) -> (ChildGuard, i32, i32) {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("sleep 1000 & echo \"child $!\"; {then}"));
    let mut guard = ChildGuard::spawn("sh", command);
    let grandchild: i32 = guard.wait_for_line(Duration::from_secs(10), "the child's pid", |line| {
        line.strip_prefix("child ")
            .and_then(|p| p.trim().parse().ok())
    });
    let shell = guard.pid() as i32;
    (guard, shell, grandchild)
}

#[test]
fn guard_kills_the_whole_process_group() {
    let (guard, shell, grandchild) = shell_with_a_child("wait");
    assert!(alive(shell) && alive(grandchild));
    drop(guard);
    assert!(!alive(shell), "the shell is gone");
    wait_until(Duration::from_secs(5), "the grandchild is gone", || {
        (!alive(grandchild)).then_some(())
    })
    .unwrap();
}

#[test]
fn a_leader_that_exited_keeps_its_group_id_until_stop() {
    use std::os::unix::process::ExitStatusExt;

    let (mut guard, shell, grandchild) = shell_with_a_child("exit 3");
    wait_until(Duration::from_secs(10), "the shell has exited", || {
        (!guard.is_running()).then_some(())
    })
    .unwrap();
    let state = std::fs::read_to_string(format!("/proc/{shell}/stat")).unwrap();
    assert_eq!(
        stat_fields(&state).first(),
        Some(&"Z"),
        "seen to exit but not reaped, so the group id stays ours: {state}"
    );
    assert!(alive(grandchild), "the rest of the group runs until stop");
    let status = guard.stop();
    assert_eq!(status.code(), Some(3));
    assert!(!Path::new(&format!("/proc/{shell}")).exists(), "reaped");
    wait_until(Duration::from_secs(5), "the grandchild is gone", || {
        (!alive(grandchild)).then_some(())
    })
    .unwrap();
    assert_eq!(guard.stop().code(), Some(3), "stop is idempotent");

    let mut command = Command::new("sh");
    command.arg("-c").arg("kill -KILL $$");
    let mut killed = ChildGuard::spawn("killed", command);
    wait_until(Duration::from_secs(10), "the shell has died", || {
        (!killed.is_running()).then_some(())
    })
    .unwrap();
    assert_eq!(killed.stop().signal(), Some(libc::SIGKILL));
}

#[test]
fn redis_start_inspect_stop_restart() {
    let mut redis = Redis::start();
    assert!(
        redis
            .runtime_config_toml()
            .contains(&format!("url = \"redis://127.0.0.1:{}\"", redis.port()))
    );
    redis.set("sess:abc", r#"{"sub":"alice"}"#);
    redis.set("login:xyz", "{}");
    assert_eq!(redis.keys("sess:*"), vec!["sess:abc".to_string()]);
    assert_eq!(redis.keys("*").len(), 2);
    assert_eq!(redis.get("sess:abc").as_deref(), Some(r#"{"sub":"alice"}"#));
    assert_eq!(redis.get("nope"), None);
    assert_eq!(redis.del(&["login:xyz", "nope"]), 1);
    redis.flushall();
    assert!(redis.keys("*").is_empty());

    redis.set("k", "v");
    redis.stop();
    assert!(!port_accepts(redis.port()), "stopped");
    redis.start_again_same_port();
    assert!(redis.is_running());
    assert_eq!(redis.get("k"), None, "nothing was persisted");
}

#[test]
fn records_split_tickets_and_the_dump_check_finds_a_leak() {
    use e2e::records::{
        assert_store_reveals_none, ended_key, login_key, session_key, ticket_parts,
    };
    let id = "AbCdEfGhIjKlMnOpQrStUg";
    let secret = "0123456789abcdefghijklmnopqrstuvwxyzABCD-_Q";
    let cookie = format!("{id}.{secret}");
    assert_eq!(ticket_parts(&cookie), (id, secret));
    assert_eq!(session_key(&cookie), format!("sess:{id}"));
    assert_eq!(login_key(&cookie), format!("login:{id}"));
    assert_eq!(ended_key(&cookie), format!("ended:{id}"));
    for bad in [
        secret.to_string(),
        id.to_string(),
        format!("{id}.{secret}x"),
        format!("{id}x.{secret}"),
        format!("{secret}.{id}"),
        format!("{}+.{secret}", &id[1..]),
    ] {
        let refused = std::panic::catch_unwind(|| {
            ticket_parts(&bad);
        });
        assert!(refused.is_err(), "not a ticket: {bad:?}");
    }

    // The dump check looks at every key and every value.
    let redis = Redis::start();
    redis.set(&session_key(&cookie), "{\"v\":1}\nsealed-bytes");
    assert_store_reveals_none(&redis, &[("secret", secret), ("user", "alice")]);
    for (key, value) in [
        ("sess:other", format!(r#"{{"tokens":"{secret}"}}"#)),
        (&*format!("gc:{secret}"), "1".to_string()),
        ("bcl:sub:x", r#"{"sub":"alice"}"#.to_string()),
    ] {
        redis.set(key, &value);
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_store_reveals_none(&redis, &[("secret", secret), ("user", "alice")]);
        }));
        assert!(found.is_err(), "the leak in {key} is found");
        redis.del(&[key]);
    }
}

#[test]
fn nginx_strict_round_robin_with_forwarded_headers() {
    let a = EchoServer::start("a");
    let mut b = EchoServer::start("b");
    let nginx = Nginx::start(&[a.addr(), b.addr()]);
    // Readiness probes went through nginx too; count from here.
    let (a0, b0) = (a.requests().len(), b.requests().len());
    let (ac0, bc0) = (a.connections(), b.connections());

    let mut browser = Browser::new();
    let mut served = Vec::new();
    for i in 0..6 {
        let response = browser.get(&nginx.url(&format!("/page?i={i}")));
        response.assert_status(200);
        let json = response.json();
        served.push(json["server"].as_str().unwrap().to_string());
        let headers = &json["headers"];
        let host = format!("127.0.0.1:{}", nginx.port());
        assert_eq!(headers["host"], host.as_str());
        assert_eq!(headers["x-forwarded-host"], host.as_str());
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(
            headers["x-forwarded-port"],
            nginx.port().to_string().as_str()
        );
        assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
        assert_eq!(json["target"], format!("/page?i={i}").as_str());
    }
    for pair in served.windows(2) {
        assert_ne!(pair[0], pair[1], "strict alternation: {served:?}");
    }
    assert_eq!(a.requests().len() - a0, 3);
    assert_eq!(b.requests().len() - b0, 3);
    assert_eq!(
        a.connections() - ac0,
        3,
        "a new upstream connection per request"
    );
    assert_eq!(
        b.connections() - bc0,
        3,
        "a new upstream connection per request"
    );

    // A form POST carries Origin and its body through.
    let posted = browser.post_form(&nginx.url("/logout"), &[("csrf", "t0k&n")]);
    let json = posted.json();
    assert_eq!(json["method"], "POST");
    assert_eq!(json["headers"]["origin"], nginx.base_url().as_str());
    assert_eq!(
        json["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(json["body"], "csrf=t0k%26n");

    // The access log names the upstream of every request.
    let log = nginx.upstreams_served();
    assert!(log.len() >= 7, "{log:?}");

    // One upstream down: its turns fail with 502, nothing is retried on the other one,
    // and it is never taken out of the rotation.
    b.stop();
    let a_before = a.requests().len();
    let statuses: Vec<u16> = (0..6)
        .map(|_| browser.get(&nginx.url("/")).status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 502).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    for pair in statuses.windows(2) {
        assert_ne!(pair[0], pair[1], "alternating: {statuses:?}");
    }
    assert_eq!(a.requests().len() - a_before, 3, "no retries on a");
}
