//! Time: the app reads it, and a request may wait.

use std::time::Duration;

/// Seconds since the Unix epoch, and waiting.
pub trait Clock {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
    /// Blocks this request for `d` (a request waiting for another's refresh).
    fn pause(&self, d: Duration);
}
