//! A confidential OpenID Connect client (relying party) as one Spin HTTP component.
//!
//! All per-user state lives server-side in Spin's key-value store (`default`);
//! the browser holds only an opaque session cookie. This file adapts Spin's
//! request to the app's and back; the routing table is in `app`.

pub mod app;
pub mod config;
pub mod cookies;
mod error_page;
pub mod handlers;
pub mod keys;
pub mod lock;
pub mod oidc;
pub mod pages;
pub mod platform;
pub mod ports;
pub mod request;
pub mod response;
pub mod secret;
mod security_headers;
pub mod session;
pub mod session_index;
mod session_record;
pub mod ticket;
pub mod timefmt;
pub mod upkeep;

#[cfg(any(test, feature = "test-support"))]
pub mod testing;

#[cfg(test)]
mod flow_tests;

#[cfg(target_arch = "wasm32")]
mod entry;
