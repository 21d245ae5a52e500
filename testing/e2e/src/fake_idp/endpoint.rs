//! The fake's endpoints and the paths below its issuer that they answer at.

/// The path of the fake's issuer.
pub const ISSUER_PATH: &str = "/realms/fake";

/// The fake's endpoints, for counting and faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Discovery,
    Jwks,
    Authorization,
    Token,
    Userinfo,
    EndSession,
    /// The pushed authorization request endpoint (RFC 9126); discovery names it only
    /// with `Behaviour::par_endpoint`.
    Par,
    /// Any other path (answered 404).
    Other,
}

impl Endpoint {
    pub const ALL: [Endpoint; 7] = [
        Endpoint::Discovery,
        Endpoint::Jwks,
        Endpoint::Authorization,
        Endpoint::Token,
        Endpoint::Userinfo,
        Endpoint::EndSession,
        Endpoint::Par,
    ];

    /// The path below the issuer.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Discovery => "/.well-known/openid-configuration",
            Endpoint::Jwks => "/protocol/openid-connect/certs",
            Endpoint::Authorization => "/protocol/openid-connect/auth",
            Endpoint::Token => "/protocol/openid-connect/token",
            Endpoint::Userinfo => "/protocol/openid-connect/userinfo",
            Endpoint::EndSession => "/protocol/openid-connect/logout",
            Endpoint::Par => "/protocol/openid-connect/ext/par/request",
            Endpoint::Other => "/",
        }
    }

    /// The endpoint a request path is for.
    pub(super) fn of_path(path: &str) -> Endpoint {
        let Some(rest) = path.strip_prefix(ISSUER_PATH) else {
            return Endpoint::Other;
        };
        Endpoint::ALL
            .into_iter()
            .find(|e| e.path() == rest)
            .unwrap_or(Endpoint::Other)
    }
}
