//! Test support shared by the component's unit tests, the fuzz targets and the
//! end-to-end fake IdP: keys that sign ID and logout tokens as an IdP would,
//! the JWKs that publish them, the hand-made tokens (`alg: none`, HS256 key
//! confusion) a relying party must refuse, an IdP's discovery document, and
//! the client's own `private_key_jwt` keys ([`client_keys`]).
//!
//! It does not depend on `oidc-client`, so the component can take it as a
//! dev-dependency; the component's own fakes (store, clock, randomness) live
//! behind its `test-support` feature.

mod base64url;
pub mod client_keys;
mod discovery;
mod forged;
mod keys;

pub use base64url::base64url;
pub use discovery::discovery;
pub use forged::{hs256_forgery, unsigned};
pub use keys::{KeyKind, TestKey, ec, ec_other, ed, rsa, rsa_other};
