//! Resident memory of the server under load: the sum over its process group
//! (`spin up` may run its trigger in a child process), sampled five times a
//! second on a background thread; the peak is what gets reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes resident in the processes of group `pgid`, None if there are none.
pub fn group_rss(pgid: u32) -> Option<u64> {
    let page = 4096u64;
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if process_group(&stat) != Some(pgid) {
            continue;
        }
        let resident = std::fs::read_to_string(format!("/proc/{pid}/statm"))
            .ok()
            .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok());
        if let Some(pages) = resident {
            *total.get_or_insert(0) += pages * page;
        }
    }
    total
}

/// The process group in a `/proc/<pid>/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
fn process_group(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // state, ppid, pgrp
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Samples [`group_rss`] until stopped.
pub struct PeakRss {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl PeakRss {
    pub fn start(pgid: u32) -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(group_rss(pgid).unwrap_or(0)));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = group_rss(pgid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::park_timeout(Duration::from_millis(200));
                }
            })
        };
        PeakRss {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the highest resident size seen, in bytes.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_group_survives_odd_command_names() {
        assert_eq!(process_group("42 (a) b) S 1 77 77 0 -1"), Some(77));
        assert_eq!(process_group("42 (host) R 9 1234 1234"), Some(1234));
        assert_eq!(process_group("garbage"), None);
    }

    #[test]
    fn measures_this_processs_own_group() {
        let pgid = own_group();
        let rss = group_rss(pgid).expect("this test runs in some process group");
        assert!(rss > 1 << 20, "at least a MiB resident: {rss}");
        let sampler = PeakRss::start(pgid);
        assert!(sampler.finish() >= 1 << 20);
    }

    /// This process's group, read the way the sampler reads others'.
    fn own_group() -> u32 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        process_group(&stat).unwrap()
    }
}
