//! Polling until something is true, with a deadline. Readiness is always probed,
//! never assumed after a fixed sleep.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// Polls `probe` until it returns `Some`, for at most `timeout`; returns the value, or
/// an error naming `what` when the time runs out. Polls quickly at first (5 ms) and
/// backs off to 100 ms.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    wait_for(timeout, what, || probe().ok_or("not yet"))
}

/// Like [`wait_until`], with a probe that says why it is not ready yet: the last
/// reason is part of the error.
pub fn wait_for<T, E: Display>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<T, E>,
) -> Result<T, String> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        let last = match probe() {
            Ok(value) => return Ok(value),
            Err(e) => e.to_string(),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "{what}: still not the case after {:?} (last probe: {last})",
                now - start
            ));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
