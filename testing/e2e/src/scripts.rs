//! For tests that run the project's own scripts (`scripts/exercise.sh`,
//! `scripts/dev.sh`) as a person would: ports for them, and what they leave behind.

use std::path::Path;
use std::time::Duration;

use crate::process::{ChildGuard, stat_fields};

/// The live processes whose process group is `pgid`: what a script that was
/// stopped with Ctrl-C must not leave behind.
pub fn processes_in_group(pgid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // state ppid pgrp ...
        let fields = stat_fields(&stat);
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            found.push(pid);
        }
    }
    found
}

/// The first of `len` consecutive loopback ports that are free now, below the kernel's
/// ephemeral range: a script takes the ports after the one it is given, and there they
/// cannot collide with other tests' [`crate::free_port`]s or outgoing connections.
pub fn low_port_block(len: u16) -> u16 {
    let ephemeral_start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (20000u16, ephemeral_start.saturating_sub(len));
    assert!(
        high > low,
        "no room below the ephemeral range {ephemeral_start}"
    );
    for _ in 0..200 {
        let start = low + (getrandom::u32().expect("random") % u32::from(high - low)) as u16;
        let free =
            (start..start + len).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return start;
        }
    }
    panic!("no {len} free consecutive ports between {low} and {ephemeral_start}");
}

/// Sends the script Ctrl-C (SIGINT to its process group, as a terminal does)
/// and asserts it stopped everything it started: no process of its group is
/// left, none of `ports` accepts connections, its work directory is gone.
pub fn assert_ctrl_c_stops_everything(script: &mut ChildGuard, ports: &[u16], work_dir: &Path) {
    script.signal(libc::SIGINT);
    crate::wait_until(
        Duration::from_secs(20),
        "the script exits after Ctrl-C",
        || (!script.is_running()).then_some(()),
    )
    .unwrap();
    let left = processes_in_group(script.pid());
    assert!(left.is_empty(), "processes left behind: {left:?}");
    for port in ports {
        assert!(
            !crate::net::port_accepts(*port),
            "port {port} is still open"
        );
    }
    assert!(!work_dir.exists(), "{} was removed", work_dir.display());
}
