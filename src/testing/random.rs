//! Randomness that is different on every call, and the same on every run.

use crate::ports::Random;
use std::cell::Cell;

/// Counter-based bytes: every call yields different output, reproducibly.
#[derive(Default)]
pub struct CountingRandom(pub Cell<u64>);

impl Random for CountingRandom {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            let n = self.0.get().wrapping_add(1);
            self.0.set(n);
            *b = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8;
        }
    }
}
