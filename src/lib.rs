//! A confidential OpenID Connect client (relying party) as one Spin HTTP component.
//!
//! All per-user state lives server-side in Spin's key-value store (`default`);
//! the browser holds only an opaque session cookie.
//!
//! Where things are, outside in (imports point down this list, never up):
//! - `entry`: Spin's request in, the app's response out (wasm only);
//! - [`app`]: the routing table; `security_headers` and `error_page` finish
//!   every response;
//! - `handlers`: one module per page, with their `Ctx` and the pages shown
//!   for errors;
//! - the domain: [`oidc`] (the protocol), [`session`] (server-side sessions,
//!   sealed with the cookie's [`ticket`]), [`session_index`] (back-channel
//!   logout), `lock` and `upkeep` (built on the store's atomic increment),
//!   [`config`], [`client_key`] (`private_key_jwt`), [`cookies`], [`keys`],
//!   [`secret`];
//! - [`ports`]: what the app needs of the platform, as traits; `platform`
//!   implements them on Spin, [`testing`](crate#test-support) with fakes.
//!
//! # Crate surface
//!
//! The product is the wasm component; as a Rust library it offers only [`app`]
//! and what [`app::handle`] takes and returns, to run the app natively.
//!
//! # Test support
//!
//! With the `test-support` feature the crate also exports `testing` (fakes of
//! every port) and the modules the fuzz targets and benchmarks drive directly:
//! the macro below makes each of them `pub` with the feature and
//! `pub(crate)` without, so the paths are the same in tests and product.

#![warn(missing_docs)]

/// Declares modules public with the `test-support` feature, crate-private otherwise.
macro_rules! exported_for_tests {
    ($($(#[$attr:meta])* mod $name:ident;)*) => {$(
        $(#[$attr])*
        #[cfg(feature = "test-support")]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "test-support"))]
        pub(crate) mod $name;
    )*};
}

pub mod app;
pub mod config;
pub mod ports;
pub mod request;
pub mod response;

exported_for_tests! {
    mod client_key;
    mod cookies;
    mod keys;
    mod lock;
    mod oidc;
    mod secret;
    mod session;
    mod session_index;
    mod ticket;
    mod timefmt;
    mod upkeep;
}

mod error_page;
mod es256;
mod handlers;
mod jwt_view;
mod log;
mod pages;
// Used only by `entry`, which is wasm only; compiled natively for its tests.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod platform;
mod pretty_json;
mod security_headers;
mod session_record;
mod store_backend;
mod truncate;

#[cfg(any(test, feature = "test-support"))]
pub mod testing;

#[cfg(test)]
mod flow_tests;

#[cfg(target_arch = "wasm32")]
mod entry;
