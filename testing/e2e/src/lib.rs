//! Shared harness for the end-to-end tests.
//!
//! Everything here runs real processes on loopback: the OpenID Provider in
//! `testing/idp` (node + oidc-provider), `redis-server`, the test host
//! `spin-test-host` running the built component, and nginx as a round-robin front.
//! Each process is owned by a guard that kills its whole process group on drop (also
//! when the test panics) and whose stderr goes to a log file under
//! `target/e2e-logs/<test name>/`.
//!
//! The [`Browser`] is a small browser-like HTTP client: a per-origin cookie jar,
//! redirects followed one hop at a time so tests can look at each hop, form posts that
//! carry an `Origin` header. [`Idp::login`] and [`Idp::logout`] drive the provider's
//! login, consent and logout pages with it; [`app::sign_in`] and [`app::sign_out`] walk
//! the component's own pages per its contract. [`records`] turns a cookie value into
//! its store key and checks what the store holds (and does not) for a session.

pub mod app;
pub mod app_stack;
pub mod browser;
pub mod chromium;
pub mod cookies;
pub mod echo;
pub mod fake_idp;
pub mod host;
pub mod html;
pub mod http_server;
pub mod idp;
pub mod net;
pub mod nginx;
pub mod oidc;
pub mod paths;
pub mod process;
pub mod raw_http;
pub mod records;
pub mod redis;
pub mod replicas;
pub mod rig;
pub mod runtime_config;
pub mod scripts;
pub mod wait;

pub use browser::{Browser, Response};
pub use cookies::{Cookie, CookieJar};
pub use echo::EchoServer;
pub use host::{Host, HostOptions, StateDir};
pub use html::Form;
pub use idp::{Consent, Idp, IdpOptions, LoginOptions};
pub use net::free_port;
pub use nginx::{Nginx, NginxOptions};
pub use paths::{component_wasm, host_binary, logs_dir, repo_root};
pub use process::ChildGuard;
pub use redis::{Redis, RespClient, RespValue};
pub use wait::{wait_for, wait_until};
