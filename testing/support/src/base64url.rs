//! The one encoding every part of a compact JWS uses.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Base64url without padding, as JWS segments and JWK members are written.
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_url_safe_and_unpadded() {
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
