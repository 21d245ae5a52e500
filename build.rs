//! Link settings for the component (wasm32 targets only).
//!
//! A 128 KiB shadow stack instead of Rust's default 1 MiB. Spin instantiates the
//! component for every request from Wasmtime's pooling allocator, which zeroes the
//! instance's linear memory (up to 2 MiB kept resident) when the request ends: with
//! the default stack that was 1.25 MiB per request, now 384 KiB, and every route
//! fits in it without growing memory. The deepest stack use is parsing JSON as deeply
//! nested as serde_json allows (128 levels), which needs less than 32 KiB; the e2e
//! test `deeply_nested_claims_are_shown_and_deeper_json_is_refused` covers it. An
//! overflow would trap (the stack sits below the data), never corrupt memory.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=131072");
    }
}
