//! Prints the fixed world's values that seeds refer to: the seeded session's
//! and login transaction's cookie values (tickets) and the login's state, tokens
//! the IdP signed, its JWKS, and the store's records (`record_<key>`, `:` as `_`).
//! `cargo run -p fuzz --example world [-- --records DIR]`: with `--records`, each
//! record is also written, byte for byte, to `DIR/record_<key>` (session records
//! end in raw sealed bytes, which the printed line shows only lossily).

fn main() {
    let rng = fuzz::world::CountingRandom::default();
    let seeded = fuzz::world::seeded_store(&rng);
    println!("session {}", seeded.session_cookie());
    println!("login {}", seeded.login_cookie());
    println!("state {}", seeded.state);
    println!("csrf {}", seeded.csrf);
    let token = fuzz::world::key().sign(&fuzz::world::good_claims());
    println!("id_token {token}");
    let mut logout = serde_json::json!({
        "iss": fuzz::world::ISSUER, "aud": fuzz::world::CLIENT_ID, "iat": fuzz::world::NOW,
        "exp": fuzz::world::NOW + 120, "jti": "jti-1", "sid": "idp-session-1",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    println!("logout_token {}", fuzz::world::key().sign(&logout));
    logout["sub"] = "alice".into();
    println!("logout_claims {logout}");
    println!("jwks {}", fuzz::world::key().jwks());
    // Fill the discovery and JWKS caches as a login would.
    let idp = fuzz::world::Idp {
        nonce: seeded.nonce.clone(),
        fuzzed: None,
    };
    println!("token_response {}", idp.token_response());
    let meta = oidc_client::oidc::discovery::load(
        &seeded.kv,
        &idp,
        fuzz::world::clock(),
        fuzz::world::config(),
    )
    .unwrap();
    let key_set = oidc_client::oidc::jwks::KeySet {
        kv: &seeded.kv,
        http: &idp,
        clock: fuzz::world::clock(),
        ttl: 300,
        backchannel: false,
    };
    key_set.current(&meta.jwks_uri).unwrap();
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .iter()
        .position(|a| a == "--records")
        .and_then(|i| args.get(i + 1));
    for (key, value) in seeded.kv.snapshot() {
        let kind = key.replace(':', "_");
        println!("record_{kind} {}", String::from_utf8_lossy(&value));
        if let Some(dir) = dir {
            std::fs::write(
                std::path::Path::new(dir).join(format!("record_{kind}")),
                &value,
            )
            .expect("write a record");
        }
    }
}
