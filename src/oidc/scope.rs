//! Scope strings from the login form: checked against RFC 6749's grammar.

const MAX_SCOPES: usize = 20;
const MAX_LEN: usize = 512;

/// Returns the scopes space-separated, de-duplicated in order, or why they are unacceptable.
/// `openid` is required: without it this would not be an OpenID Connect login.
pub fn normalize(raw: &str) -> Result<String, String> {
    if raw.len() > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    let mut scopes: Vec<&str> = Vec::new();
    for s in raw.split_ascii_whitespace() {
        if !s
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        {
            return Err("contains characters a scope may not have".into());
        }
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    if scopes.len() > MAX_SCOPES {
        return Err(format!("must list at most {MAX_SCOPES} scopes"));
    }
    if !scopes.contains(&"openid") {
        return Err("must include `openid`".into());
    }
    Ok(scopes.join(" "))
}

/// Whether the space-separated `scopes` include `scope`.
pub fn contains(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(
            normalize("  openid   profile openid ").unwrap(),
            "openid profile"
        );
        assert_eq!(
            normalize("openid profile offline_access").unwrap(),
            "openid profile offline_access"
        );
    }

    #[test]
    fn rejects() {
        assert!(normalize("profile").is_err());
        assert!(normalize("openid \"quoted\"").is_err());
        assert!(normalize("openid pro\\file").is_err());
        assert!(normalize("openid é").is_err());
        assert!(normalize(&format!("openid {}", "a".repeat(600))).is_err());
        let many: Vec<String> = (0..25).map(|i| format!("s{i}")).collect();
        assert!(normalize(&format!("openid {}", many.join(" "))).is_err());
    }

    #[test]
    fn contains_whole_words() {
        assert!(contains("openid offline_access", "offline_access"));
        assert!(!contains("openid offline_accessx", "offline_access"));
    }
}
