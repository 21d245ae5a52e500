//! What the app needs of the platform, as traits: Spin implements them in
//! `platform`, tests with the fakes of `testing`. Nothing here depends on the
//! rest of the crate; everything else may depend on this.

mod clock;
mod http;
mod random;
mod store;
mod variables;

pub use clock::Clock;
pub use http::{HttpClient, HttpError, HttpRequest, HttpResponse, MAX_IDP_RESPONSE};
pub use random::Random;
pub use store::{KeyValue, StoreError};
pub use variables::Variables;
