//! Every response of the component is complete before it is handed to the host.
//!
//! Under `spin up` a response handed over before its body is written leaves
//! the head alone on the wire, and the body then waits for the client's
//! delayed ACK (40 ms per request). The test host decides that race as Spin
//! loses it and says in each request's log line whether the body was there at
//! hand-over (`body-ready`) or came after the head (`body-after-head`); see
//! testing/spin-test-host/src/response_order.rs. This test drives every route,
//! success and failure alike, and requires `body-ready` for each.

use e2e::app_stack::{AppStack, StoreKind};
use e2e::{Browser, wait_until};
use std::time::Duration;

#[test]
fn every_route_hands_over_its_response_with_the_body_already_written() {
    let stack = AppStack::start(StoreKind::Memory, |o| o);
    let mut browser = Browser::new();
    let get = |browser: &mut Browser, path: &str, status: u16| {
        browser.get(&stack.url(path)).assert_status(status);
    };
    get(&mut browser, "/healthz", 200);
    get(&mut browser, "/readyz", 200);
    get(&mut browser, "/style.css", 200);
    get(&mut browser, "/", 200);
    get(&mut browser, "/no-such-page", 404);
    get(&mut browser, "/callback?state=x&code=y", 400);
    // The login round trip: POST /login, the callback, /user.
    stack.sign_in(&mut browser, "dora.order", Some("openid offline_access"));
    get(&mut browser, "/user", 200);
    get(&mut browser, "/", 200);
    // Last, so that once its line is logged, every earlier one is too.
    get(&mut browser, "/the-end", 404);

    let log = || stack.host.log();
    let lines = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.starts_with("GET ") || l.starts_with("POST "))
            .map(str::to_owned)
            .collect()
    };
    // The host's log reaches the harness through a pipe: wait for the last line.
    wait_until(
        Duration::from_secs(10),
        "the host logged every request",
        || {
            lines(&log())
                .iter()
                .any(|l| l.starts_with("GET /the-end "))
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}; the host's log:\n{}", log()));
    let all = lines(&log());
    for route in [
        "GET /healthz ",
        "GET /user ",
        "POST /login ",
        "GET /callback ",
        "GET /no-such-page ",
    ] {
        assert!(
            all.iter().any(|l| l.starts_with(route)),
            "{route:?} was requested: {all:#?}"
        );
    }
    let late: Vec<&String> = all.iter().filter(|l| !l.ends_with(" body-ready")).collect();
    assert!(
        late.is_empty(),
        "responses handed over before their body was written: {late:#?}"
    );
}
