//! Child processes owned by guards: each runs in its own process group, which is
//! killed as a whole when the guard is dropped (also during a panic). Its stderr goes
//! straight to a log file; its stdout is copied to another log file and handed to the
//! test line by line, so readiness can be read from a line the process prints.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a process gets to exit after SIGTERM before its group gets SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// A running child process and its logs.
pub struct ChildGuard {
    name: String,
    child: Child,
    pgid: i32,
    stderr_log: PathBuf,
    stdout_log: PathBuf,
    /// In a mutex only so that a guard can be shared between threads (a load
    /// driver's workers read the IdP's address); reads take `&mut self` anyway.
    lines: Mutex<Receiver<String>>,
    reader: Option<JoinHandle<()>>,
    /// The leader's exit status, once seen. The leader is reaped only in `stop`, after
    /// its group has been killed: until then its zombie keeps the process-group id
    /// reserved, so the group kill cannot reach a new group that reused the id.
    exited: Option<ExitStatus>,
    reaped: bool,
}

/// A path `<dir>/<name>.<suffix>` that does not exist yet (`<name>-2.<suffix>`, ... when
/// the same process is started again in one test).
fn fresh_log_path(dir: &Path, name: &str, suffix: &str) -> PathBuf {
    let first = dir.join(format!("{name}.{suffix}"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| dir.join(format!("{name}-{n}.{suffix}")))
        .find(|p| !p.exists())
        .expect("an unused log file name")
}

impl ChildGuard {
    /// Spawns `command` as `name` (used for the log file names) in a new process group,
    /// with stdin closed, stderr to `<logs>/<name>.stderr.log` and stdout to
    /// `<logs>/<name>.stdout.log` (and to [`ChildGuard::wait_for_line`]).
    pub fn spawn(name: &str, mut command: Command) -> ChildGuard {
        let dir = crate::paths::logs_dir();
        let stderr_log = fresh_log_path(&dir, name, "stderr.log");
        let stdout_log = fresh_log_path(&dir, name, "stdout.log");
        let stderr_file = File::create(&stderr_log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_log.display()));
        let mut stdout_file = File::create(&stdout_log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stdout_log.display()));

        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file))
            .process_group(0);
        let description = format!("{command:?}");
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({description}): {e}"));
        let pgid = child.id() as i32;

        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(stdout_file, "{line}");
                    let _ = tx.send(line);
                }
            })
            .expect("spawn the stdout reader thread");

        ChildGuard {
            name: name.to_string(),
            child,
            pgid,
            stderr_log,
            stdout_log,
            lines: Mutex::new(lines),
            reader: Some(reader),
            exited: None,
            reaped: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr_log(&self) -> &Path {
        &self.stderr_log
    }

    pub fn stdout_log(&self) -> &Path {
        &self.stdout_log
    }

    /// Whether the process is still running (reaps it when it has exited).
    pub fn is_running(&mut self) -> bool {
        self.poll_exit().is_none()
    }

    fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = leader_exit_status(self.child.id());
        }
        self.exited
    }

    /// One line per thread of a running process: its name, scheduler state (R running,
    /// S sleeping, D in uninterruptible I/O, ...), the kernel function it waits in and
    /// the system call it is in, from /proc. Tells a stuck start-up from a slow one.
    pub fn thread_states(&self) -> String {
        let pid = self.child.id();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return format!("(no /proc/{pid}/task)");
        };
        let mut lines: Vec<String> = tasks
            .flatten()
            .map(|task| {
                let dir = task.path();
                let read = |name: &str| {
                    std::fs::read_to_string(dir.join(name))
                        .map(|s| s.trim().to_string())
                        .unwrap_or_else(|_| "?".to_string())
                };
                let stat = read("stat");
                let state = stat_fields(&stat)
                    .first()
                    .copied()
                    .unwrap_or("?")
                    .to_string();
                let syscall = read("syscall");
                let syscall = syscall.split_whitespace().next().unwrap_or("?");
                format!(
                    "tid {} {:<16} state {state} wchan {} syscall {syscall}",
                    task.file_name().to_string_lossy(),
                    read("comm"),
                    read("wchan"),
                )
            })
            .collect();
        lines.sort();
        lines.join("\n")
    }

    /// The last `lines` lines of the process's stderr log.
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail_of_file(&self.stderr_log, lines)
    }

    /// The last `lines` lines of the stderr log and of the stdout log, each under a
    /// heading naming the file (an empty log is left out).
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for path in [&self.stderr_log, &self.stdout_log] {
            let tail = tail_of_file(path, lines);
            if !tail.trim().is_empty() {
                out.push_str(&format!(
                    "--- last lines of {} ---\n{tail}\n",
                    path.display()
                ));
            }
        }
        if out.is_empty() {
            out.push_str("(its stdout and stderr logs are empty)\n");
        }
        out
    }

    /// Panics with `message`, the exit status if the process has ended, and the tails
    /// of its logs.
    pub fn fail(&mut self, message: &str) -> ! {
        panic!("{}--- end of logs ---", self.failure_report(message));
    }

    /// `message`, the exit status (or, while it runs, its threads' states) and the
    /// tails of its logs.
    pub fn failure_report(&mut self, message: &str) -> String {
        let status = match self.poll_exit() {
            Some(status) => format!("it exited: {status}"),
            None => format!(
                "it is still running; its threads:\n{}\n",
                self.thread_states()
            ),
        };
        format!(
            "{}: {message} ({status}).\n{}",
            self.name,
            self.log_tails(60)
        )
    }

    /// Reads stdout lines until `matcher` returns `Some`, for at most `timeout`. Panics
    /// (with the stderr tail) when the process exits first or the time runs out.
    pub fn wait_for_line<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        matcher: impl FnMut(&str) -> Option<T>,
    ) -> T {
        match self.try_wait_for_line(timeout, what, matcher) {
            Ok(found) => found,
            Err(WaitFailure::TimedOut(message) | WaitFailure::Ended(message)) => {
                self.fail(&message)
            }
        }
    }

    /// [`ChildGuard::wait_for_line`] that returns the failure instead of panicking, for
    /// a caller that can start the process again.
    pub fn try_wait_for_line<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut matcher: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, WaitFailure> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitFailure::TimedOut(format!(
                    "did not print {what} within {timeout:?}; stdout so far: {seen:?}"
                )));
            }
            let slice = (deadline - now).min(Duration::from_millis(100));
            match self.stdout_lines().recv_timeout(slice) {
                Ok(line) => {
                    if let Some(found) = matcher(&line) {
                        return Ok(found);
                    }
                    seen.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.poll_exit().is_some() {
                        return Err(WaitFailure::Ended(format!(
                            "exited before printing {what}; stdout: {seen:?}"
                        )));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process is ending. Give it a moment to be reaped
                    // so the failure names its exit status.
                    let until = Instant::now() + Duration::from_secs(2);
                    while self.poll_exit().is_none() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    return Err(WaitFailure::Ended(format!(
                        "closed its stdout before printing {what}; stdout: {seen:?}"
                    )));
                }
            }
        }
    }

    fn stdout_lines(&mut self) -> &mut Receiver<String> {
        self.lines.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// Stdout lines printed since the last read, without waiting.
    pub fn drain_lines(&mut self) -> Vec<String> {
        self.stdout_lines().try_iter().collect()
    }

    /// Sends `signal` to the whole process group.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with a negative pid signals the process group we created.
        unsafe {
            libc::kill(-self.pgid, signal);
        }
    }

    /// Stops the process group: SIGTERM, then SIGKILL after a grace period. Returns the
    /// exit status. Idempotent.
    pub fn stop(&mut self) -> ExitStatus {
        if !self.reaped {
            if self.poll_exit().is_none() {
                self.signal(libc::SIGTERM);
                let deadline = Instant::now() + TERM_GRACE;
                while self.poll_exit().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if self.exited.is_none() {
                    eprintln!(
                        "e2e: {} did not exit {TERM_GRACE:?} after SIGTERM; killing it",
                        self.name
                    );
                }
            }
            // The leader is dead or a zombie (its pid still reserves the group id), so
            // this reaches only what is left of our own group.
            self.signal(libc::SIGKILL);
            let status = self.child.wait().expect("wait for our child");
            self.exited = Some(status);
            self.reaped = true;
            if let Some(reader) = self.reader.take() {
                let _ = reader.join();
            }
        }
        self.exited.expect("set when reaped")
    }
}

/// Why [`ChildGuard::try_wait_for_line`] gave up.
#[derive(Debug)]
pub enum WaitFailure {
    /// The time ran out with the process still running.
    TimedOut(String),
    /// The process exited or closed its stdout first.
    Ended(String),
}

/// The fields of a `/proc/<pid>/stat` line after the command name (`pid (comm) state
/// ppid pgrp ...`): state first. The name may hold spaces and parentheses, so the
/// fields start after the last ')'.
pub fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// The exit status of process `pid` (our child) if it has exited, without reaping it.
fn leader_exit_status(pid: u32) -> Option<ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    // SAFETY: waitid writes into the zeroed siginfo we pass; WNOWAIT leaves the child
    // waitable, so `Child::wait` still reaps it later.
    let info = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        if rc != 0 || info.si_pid() == 0 {
            return None;
        }
        info
    };
    // Rebuild the wait(2) status word that ExitStatus wraps.
    let status = unsafe { info.si_status() };
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        _ => status & 0x7f,
    };
    Some(ExitStatus::from_raw(raw))
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "e2e: the test failed while {} was running:\n{}",
                self.name,
                self.log_tails(30)
            );
        }
        self.stop();
    }
}

/// The current run, if any, of a process that a test may stop and start again
/// (the test host, the IdP, Redis): one place for what they all do with it.
#[derive(Default)]
pub struct Restartable(Option<ChildGuard>);

impl Restartable {
    /// Checked before starting a run: a second one at once is a harness bug.
    pub fn assert_stopped(&self, what: &str) {
        assert!(self.0.is_none(), "{what} is already running");
    }

    /// Keeps a run that has just started (after `assert_stopped`).
    pub fn started(&mut self, guard: ChildGuard) {
        self.0 = Some(guard);
    }

    pub fn is_running(&mut self) -> bool {
        self.0.as_mut().is_some_and(ChildGuard::is_running)
    }

    /// The current run's guard, if any.
    pub fn guard(&self) -> Option<&ChildGuard> {
        self.0.as_ref()
    }

    /// The current run's stderr log so far ("" when stopped).
    pub fn stderr(&self) -> String {
        self.0
            .as_ref()
            .and_then(|g| std::fs::read_to_string(g.stderr_log()).ok())
            .unwrap_or_default()
    }

    /// Stops the current run, if any.
    pub fn stop(&mut self) {
        if let Some(mut guard) = self.0.take() {
            guard.stop();
        }
    }
}

/// The last `lines` lines of a file (reads at most its last 64 KiB).
pub fn tail_of_file(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(cannot open {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let _ = file.seek(SeekFrom::Start(start));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
