//! The test host's contract with Spin: one suite for the behaviours of `spin up`
//! (Spin 3.6.x / 4.0.x) that the component relies on, each case named after the
//! Spin behaviour it pins, with the Spin source it follows cited where the host
//! reproduces the rule. What the host does not reproduce, and why, is the table
//! in `testing/spin-test-host/README.md`.
//!
//! - `outbound`: outbound HTTP (chunked bodies, pooled connections, allowed
//!   hosts with ports and CIDR, templates resolved per request).
//! - `store_and_routing`: the default key-value store (a SQLite file in the
//!   state directory), routes and request headers, variables providers.
//! - How a response reaches the socket (the head alone before a body written
//!   after hand-over) is pinned by the unit tests of `src/response_order.rs`
//!   and, against the built component, by `testing/e2e/tests/response_order.rs`.

#[path = "spin_contract/outbound.rs"]
mod outbound;
#[path = "spin_contract/store_and_routing.rs"]
mod store_and_routing;
