//! Fixed keys for the client's `private_key_jwt` (made with `openssl genpkey`):
//! the P-256 key the component signs assertions with in tests, its JWK form
//! and RFC 7638 thumbprint (computed by Node's crypto), and keys the
//! component must refuse. Test keys only: they guard nothing.

/// A P-256 private key as PKCS#8 PEM.
pub const P256_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgGclLHYa7JC7cqbdX
gYfvFvHFXoVq2L4byrRFpeYiNHuhRANCAARdL9E3SUPe5j6cPr7rFLEKIpBMtqYT
aIRxJY7DnAQs2B3Udn7KIxDJUuC2VKDnFGx8K6N2UPopK6FlTgET885d
-----END PRIVATE KEY-----\n";

/// The same key as a private JWK.
pub const P256_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"XS_RN0lD3uY-nD6-6xSxCiKQTLamE2iEcSWOw5wELNg","y":"HdR2fsojEMlS4LZUoOcUbHwro3ZQ-ikroWVOARPzzl0","d":"GclLHYa7JC7cqbdXgYfvFvHFXoVq2L4byrRFpeYiNHs"}"#;
/// Its public coordinates.
pub const P256_X: &str = "XS_RN0lD3uY-nD6-6xSxCiKQTLamE2iEcSWOw5wELNg";
/// Its public coordinates.
pub const P256_Y: &str = "HdR2fsojEMlS4LZUoOcUbHwro3ZQ-ikroWVOARPzzl0";
/// Its private scalar, which must never leave the component.
pub const P256_D: &str = "GclLHYa7JC7cqbdXgYfvFvHFXoVq2L4byrRFpeYiNHs";
/// Its RFC 7638 thumbprint, the `kid` the component must derive.
pub const P256_THUMBPRINT: &str = "0lcTXbSrr8QDzpOLsO85OQ4kzUulU2ICVwGsbW4Oz3Y";

/// A P-384 key (PKCS#8): a curve the component refuses.
pub const P384_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDAgzaqKQdW+rt6CmNdY
bEjKWqN8GXBJkSu+aiZpKSD56cGsqZ1al9emUwROWM+kC82hZANiAAThFbZWOl0W
DAX5yBDqzRRmNpJpnxZisPikxayWfbaSFcF02s1B7OI9X3IR2yvb4EJEXcOnGmJ1
JyqagMyj5qjNJnJ7ZtfUwRpAo0jdWaebDJbrsuAsp07xBIxWzC76KQY=
-----END PRIVATE KEY-----\n";

/// A P-384 private JWK: refused too.
pub const P384_JWK: &str = r#"{"kty":"EC","x":"4RW2VjpdFgwF-cgQ6s0UZjaSaZ8WYrD4pMWsln22khXBdNrNQeziPV9yEdsr2-BC","y":"RF3DpxpidScqmoDMo-aozSZye2bX1MEaQKNI3VmnmwyW67LgLKdO8QSMVswu-ikG","crv":"P-384","d":"IM2qikHVvq7egpjXWGxIylqjfBlwSZErvmomaSkg-enBrKmdWpfXplMETljPpAvN"}"#;

/// A secp256k1 key (PKCS#8): refused.
pub const SECP256K1_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGEAgEAMBAGByqGSM49AgEGBSuBBAAKBG0wawIBAQQgYnyxSfDgeWpvGfp/vVm6
7pp093fEZX0IDc2luRjMfpChRANCAARRnHyqpLrIUuI56S4oDr/OUugGhlI8Vt5f
TAm2JNcJghKAB3yPN7D3hcmWiuM/QFpr864tzf6A49vqSI+vYwZZ
-----END PRIVATE KEY-----\n";

/// An Ed25519 key (PKCS#8): refused.
pub const ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIG03bi7sQ+i9uZNNpAnLGPHh2j1Qhpkw/ymcXjTHHYQx
-----END PRIVATE KEY-----\n";

/// A P-256 key in SEC1 form (`EC PRIVATE KEY`), which must be converted to PKCS#8.
pub const P256_SEC1_PEM: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIOr38w0ngei5dCyLFNZpSpJfMmKL4jq5tZrNmHfaDH1ZoAoGCCqGSM49
AwEHoUQDQgAExdy2rWudti1kvSTxFTN1VUVq2EZQ/rFh+mGB71PanHgwUPFV7fEn
iaYI0x1AuIsiJWO6Lf0YO+ztz62/V7OYcA==
-----END EC PRIVATE KEY-----\n";

/// A 1024-bit RSA key (PKCS#8): refused (only ES256 is supported).
pub const RSA_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALhJOHgd6i8ET5JA
ATuRhjVKCAuqRXzDmweJ/XSP/91IUbMw2H2g9dSSqmBQ0OC9StlLTVr6o7hAHhXu
ttqqdgyP5NrYWvqwVgpcDvIIZ1WQrHrm779E9i6dFtVlILgfp0UcgOQVL3LWxapW
kHBKz2zTV+NPD3tTv9NHvYCZ0avtAgMBAAECgYEAkHgORdQlz4AQpTV6AenejY4g
6owsd1edBHb/9E4jJqVYLyLexPXXYjMsT99rMJQUxm5LEUSl7n6NV2JRhPDXI0HB
v6E0WQuZgyayQGOmXeqh9SciDvD0FgQmfqgV+bV/2q0ta9SkLdzeTONVvnBote3j
7SUqVZmPHn7FD1PPxf0CQQDvso/7JQtbl/b+057nPk13Sva9A+S1PP7YxeqDoVFX
lxWJOIsskMI3BAvd4FgIv61sU7Et++Zm0X7Mw+VF3vs3AkEAxNHfsya0zwCFrY6Z
9c0oCzDLt0gUXdSqr4zhlIFzT5Ek5u2OXlkMVO8l2aoaAt/L90nR6AlJ2wY3lz6Z
BsoL+wJAZ6T8YQopmRdis9lpkm/8KyL9AcoXMM8JG06pEvXEKG2p4EXU2BZYBFX5
k50YM+A96uNdb5bGj5ryizQBhW7fjQJAQBgQfyjVrKuA3NoZbSBYL/y9+nuwljXR
N8XrGA9n27tqhwFJYZQiHe6bJtzsB4+Vvnv9rVCJCphltg0ejEVzzQJAKzQH78sz
Dq4gv/u56TAoQYXgIXXuKUquAGn58oPMkbWYauhZRYqLSmdpnYR0KLF9HPTywF1p
brjVEBgClZTEyw==
-----END PRIVATE KEY-----\n";
