//! The ports implemented on Spin: key-value, variables, outbound HTTP (WASI),
//! the system clock and the system CSPRNG. Only `entry` uses these.

pub(crate) mod kv;
pub(crate) mod outbound;

use crate::ports::Variables;
use crate::ports::{Clock, Random};
use std::time::Duration;

pub(crate) struct SpinVariables;

impl Variables for SpinVariables {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        match spin_sdk::variables::get(name) {
            Ok(v) => Ok(Some(v)),
            Err(spin_sdk::variables::Error::Undefined(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    fn pause(&self, d: Duration) {
        let nanos = d.as_nanos().min(u64::MAX as u128) as u64;
        wasi::clocks::monotonic_clock::subscribe_duration(nanos).block();
    }
}

pub(crate) struct SystemRandom;

impl Random for SystemRandom {
    fn fill(&self, buf: &mut [u8]) {
        // The WASI random interface does not fail; if it ever did, continuing
        // with predictable ids would be worse than stopping this request.
        getrandom::fill(buf).expect("system random source failed");
    }
}
