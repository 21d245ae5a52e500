//! Fuzz targets for every parser of outside input in the component: the
//! `Cookie` header, query strings and form bodies, compact JWTs (header,
//! payload, signature) and signed claims, discovery and JWKS JSON, records read
//! back from the key-value store, the client's own `private_key_jwt` key, whole requests through `app::handle`, and the
//! IdP's answers (token, userinfo, JWKS, discovery) during a login or refresh,
//! and the PAR endpoint's answer at login.
//!
//! Each target takes arbitrary bytes, must never panic, and checks what the
//! component promises about inputs it accepts (an accepted ID token names our
//! issuer, audience and nonce; an error page never shows a token; ...).
//! They run two ways:
//! - `cargo test -p fuzz` (part of the README's one test command): the checked-in
//!   seeds under `seeds/<target>/`, then a fixed number of deterministic
//!   mutations of them ([`mutate`]), on stable Rust;
//! - `cargo +nightly fuzz run --fuzz-dir testing/fuzz <target> --features libfuzzer`:
//!   libFuzzer, coverage-guided, for as long as you like (see README.md).

pub mod mutate;
pub mod targets;
pub mod world;

/// A fuzz target: any bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, as the seeds folders and `fuzz_targets/` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("cookie_header", targets::cookie_header),
    ("query_and_form", targets::query_and_form),
    ("jwt_compact", targets::jwt_compact),
    ("signed_claims", targets::signed_claims),
    ("discovery_json", targets::discovery_json),
    ("jwks_json", targets::jwks_json),
    ("client_private_key", targets::client_private_key),
    ("store_records", targets::store_records),
    ("app_request", targets::app_request),
    ("idp_response", targets::idp_response),
    ("par_response", targets::par_response),
];
