//! Settings from a map, and a valid example configuration.

use crate::config::Config;
use crate::ports::Variables;
use std::collections::HashMap;

/// Variables from a map; an absent name is an unset variable.
pub struct MapVars(pub HashMap<String, String>);

impl Variables for MapVars {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.get(name).cloned())
    }
}

/// The required settings of an app at `https://app.example` whose IdP is
/// `https://idp.example/realms/demo`; everything else at its default.
pub fn vars() -> MapVars {
    MapVars(
        [
            ("client_id", "client1"),
            ("client_secret", "s3cret"),
            ("oidc_issuer_url", "https://idp.example/realms/demo"),
            ("oidc_idp_origin", "https://idp.example"),
            ("client_base_url", "https://app.example/"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    )
}

/// [`vars`], loaded.
pub fn config() -> Config {
    Config::load(&vars()).expect("the example configuration is valid")
}
