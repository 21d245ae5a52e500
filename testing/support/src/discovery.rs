//! The discovery document of an IdP whose endpoints sit under its issuer, as
//! Keycloak lays them out (`{issuer}/auth`, `{issuer}/token`, ...).

use serde_json::{Value, json};

/// What `{issuer}/.well-known/openid-configuration` answers: every endpoint
/// the component uses, and the `iss` callback parameter supported. Callers add
/// what their IdP does beyond that (back-channel logout, say).
pub fn discovery(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "authorization_response_iss_parameter_supported": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_sit_under_the_issuer() {
        let doc = discovery("https://idp.example/realms/demo");
        assert_eq!(doc["issuer"], "https://idp.example/realms/demo");
        assert_eq!(
            doc["token_endpoint"],
            "https://idp.example/realms/demo/token"
        );
        assert_eq!(doc["jwks_uri"], "https://idp.example/realms/demo/jwks");
    }
}
