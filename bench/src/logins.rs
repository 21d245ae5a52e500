//! The login round trip as a load: each client is a fresh browser that opens
//! `/`, posts `/login`, signs in and consents at the IdP, comes back through
//! `/callback` and lands on `/user`, again and again until the time is up.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use e2e::{Browser, Idp, LoginOptions};

use crate::measure::Measurement;

/// Runs `clients` login loops against the app at `base` for `duration`. A login
/// that fails any step (wrong status, missing form or cookie, transport error)
/// counts as an error.
pub fn run(base: &str, idp: &Idp, clients: u32, duration: Duration) -> Measurement {
    let started = Instant::now();
    let deadline = started + duration;
    let errors = AtomicU64::new(0);
    let serial = AtomicU64::new(0);
    let latencies: Vec<Duration> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    while Instant::now() < deadline {
                        let user = format!("bench{}", serial.fetch_add(1, Ordering::Relaxed));
                        let began = Instant::now();
                        match one_login(base, idp, &user) {
                            true => mine.push(began.elapsed()),
                            false => _ = errors.fetch_add(1, Ordering::Relaxed),
                        }
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    Measurement::from_samples(latencies, errors.into_inner(), started.elapsed())
}

/// One full login with a fresh browser; true when it ended on `/user`.
fn one_login(base: &str, idp: &Idp, user: &str) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        let mut browser = Browser::new();
        let signed = e2e::app::sign_in(&mut browser, base, idp, &LoginOptions::new(user), None);
        signed.user_page.status == 200
    }))
    .unwrap_or(false)
}
