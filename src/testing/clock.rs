//! A clock that stands still until a test moves it.

use crate::ports::Clock;
use std::cell::Cell;
use std::time::Duration;

/// Seconds since the epoch, set by the test.
pub struct FixedClock(pub Cell<i64>);

impl FixedClock {
    /// A clock showing `t`.
    pub fn at(t: i64) -> Self {
        Self(Cell::new(t))
    }

    /// Moves the clock on by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.set(self.0.get() + secs);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0.get()
    }

    /// Time stands still: a request waiting for another never sees it finish
    /// unless the test changes the store meanwhile.
    fn pause(&self, _: Duration) {}
}
