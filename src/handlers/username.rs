//! The name a page greets the user by.

use serde_json::{Map, Value};

/// The name to greet: preferred_username, else name, else sub; from the ID token, then userinfo.
pub(crate) fn username(
    claims: &Map<String, Value>,
    userinfo: Option<&Map<String, Value>>,
    sub: &str,
) -> String {
    for key in ["preferred_username", "name"] {
        for source in [Some(claims), userinfo].into_iter().flatten() {
            if let Some(v) = source
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.trim().is_empty())
            {
                return crate::truncate::truncate(v, 100);
            }
        }
    }
    sub.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn username_prefers_preferred_username_then_name_then_sub() {
        let m = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            username(
                &m(json!({"preferred_username": "al", "name": "Al"})),
                None,
                "s"
            ),
            "al"
        );
        assert_eq!(
            username(
                &m(json!({"name": "Al"})),
                Some(&m(json!({"preferred_username": "al"}))),
                "s"
            ),
            "al"
        );
        assert_eq!(username(&m(json!({"name": "Al"})), None, "s"), "Al");
        assert_eq!(username(&m(json!({})), None, "s"), "s");
    }
}
