//! `bench --big-store`: what a shared Redis full of other data costs a login.
//! `POST /login` (discovery from the cache, a new login transaction, its
//! upkeep registration and one bounded upkeep run) at one connection, on an
//! empty Redis and on one holding a million keys of another app, in
//! interleaved rounds. The component never lists keys, so the two should
//! cost the same; `INFO commandstats` shows that no `KEYS` or `SCAN` was sent.

use e2e::{Idp, Redis};

use crate::measure::Measurement;
use crate::server::{Runtime, Server};
use crate::settings::Settings;
use crate::store_ops;
use crate::wrk;

/// Keys of "another app" put into Redis for the full case.
const OTHER_KEYS: u32 = 1_000_000;

pub fn run(idp: &Idp, port: u16, settings: &Settings) -> String {
    let redis = Redis::start();
    let server = Server::start(&Runtime::TestHost, idp, port, "host-big-store", |o| {
        o.redis(&redis)
    });
    let url = server.url("/login");
    let load = wrk::Load {
        url: &url,
        connections: 1,
        duration: settings.duration,
        headers: &[],
        form: Some("scope=openid"),
    };
    let mut empty = Vec::new();
    let mut full = Vec::new();
    let mut listed = 0;
    for round in 0..settings.rounds {
        for (fill, runs) in [(false, &mut empty), (true, &mut full)] {
            redis.flushall();
            if fill {
                seed(&redis);
            }
            wrk::run(&load.lasting(settings.warmup)).unwrap_or_else(|e| panic!("warm-up: {e}"));
            store_ops::reset(&redis);
            let measured = wrk::run(&load).unwrap_or_else(|e| panic!("POST /login: {e}"));
            listed += store_ops::command_calls(&redis)
                .iter()
                .filter(|(c, _)| c == "keys" || c == "scan")
                .map(|(_, n)| n)
                .sum::<u64>();
            eprintln!(
                "   POST /login, {} keys, round {}: {:.0} req/s, p50 {:?}",
                if fill { "1M other" } else { "no other" },
                round + 1,
                measured.rate(),
                measured.p50
            );
            runs.push(measured);
        }
    }
    let (e, _) = Measurement::median(&empty);
    let (f, _) = Measurement::median(&full);
    let ratio = f.rate() / e.rate().max(f64::MIN_POSITIVE);
    format!(
        "| POST /login, 1 connection | req/s | p50 | p99 | errors |\n|---|---:|---:|---:|---:|\n\
         | empty Redis | {:.0} | {:?} | {:?} | {} |\n\
         | {OTHER_KEYS} other keys | {:.0} | {:?} | {:?} | {} |\n\n\
         full ÷ empty: {ratio:.3} (target ≥ 0.90: {}); KEYS/SCAN commands sent: {listed}\n",
        e.rate(),
        e.p50,
        e.p99,
        e.errors,
        f.rate(),
        f.p50,
        f.p99,
        f.errors,
        if ratio >= 0.9 { "met" } else { "MISSED" },
    )
}

/// A million keys of another app, written by one server-side script (a
/// second or two, no client round trips).
fn seed(redis: &Redis) {
    let script = "for i = 1, tonumber(ARGV[1]) do \
                  redis.call('SET', 'other-app:' .. i, 'a value of another application, about sixty bytes long') \
                  end return 0";
    redis.command(&["EVAL", script, "0", &OTHER_KEYS.to_string()]);
    let e2e::RespValue::Integer(n) = redis.command(&["DBSIZE"]) else {
        panic!("DBSIZE did not answer a number");
    };
    assert!(n >= i64::from(OTHER_KEYS), "seeded {n} keys");
}
