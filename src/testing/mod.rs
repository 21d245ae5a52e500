//! Test support: in-memory fakes of every port, for the unit tests, the fuzz
//! targets and the benchmarks. Compiled only for tests or with the
//! `test-support` feature, so the released component ships none of it.

mod clock;
mod http;
mod random;
mod store;
mod variables;

pub use clock::FixedClock;
pub use http::{FakeHttp, json_response};
pub use random::CountingRandom;
pub use store::MemoryStore;
pub use variables::{MapVars, config, vars};
