//! Every fuzz target on its checked-in seeds and on a fixed number of
//! deterministic mutants of them (stable Rust, part of the one test command).
//! `FUZZ_ITERATIONS` sets the mutants per target (default 20,000);
//! `FUZZ_SEED` picks another deterministic sequence. Inputs that panic are
//! saved under `target/fuzz-findings/<target>/` and named in the failure.

use std::path::PathBuf;
use std::time::Instant;

use fuzz::{TARGETS, mutate};
use test_support::base64url;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}")),
        Err(_) => default,
    }
}

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

#[test]
fn no_target_panics_on_its_seeds_or_their_mutants() {
    let iterations = env_number("FUZZ_ITERATIONS", 20_000) as usize;
    let rng_seed = env_number("FUZZ_SEED", 0x5eed);
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-findings");
    let mut findings = Vec::new();
    for (name, target) in TARGETS {
        let seeds = mutate::seeds(&seeds_dir(), name)
            .unwrap_or_else(|e| panic!("seeds/{name}/ cannot be read: {e}"));
        assert!(!seeds.is_empty(), "seeds/{name}/ is empty");
        let started = Instant::now();
        let summary = mutate::run(name, *target, &seeds, iterations, rng_seed, &out);
        println!(
            "fuzz {name}: {} seeds, {} executions in {:.1} s, {} findings",
            seeds.len(),
            summary.executions,
            started.elapsed().as_secs_f64(),
            summary.findings.len()
        );
        findings.extend(summary.findings);
    }
    let report: Vec<String> = findings
        .iter()
        .map(|f| format!("{}: {} (input: {})", f.target, f.message, f.saved.display()))
        .collect();
    assert!(report.is_empty(), "findings:\n{}", report.join("\n"));
}

/// Every seeds folder belongs to a target and every target has a fuzz_targets/ file,
/// so `cargo fuzz` and this test run the same set.
#[test]
fn seeds_and_cargo_fuzz_targets_match_the_list() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut folders: Vec<String> = std::fs::read_dir(seeds_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    folders.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(folders, names);
    for name in &names {
        let source = std::fs::read_to_string(root.join(format!("fuzz_targets/{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz_targets/{name}.rs: {e}"));
        assert!(
            source.contains(&format!("fuzz::targets::{name}(")),
            "{name}"
        );
    }
}

/// The request seeds get past the checks they are meant to exercise beyond
/// (cookie, CSRF token, state, logout token), so mutants start deep in the
/// handlers; a change to the fixed world that breaks them fails here.
#[test]
fn app_seeds_reach_the_pages_they_name() {
    let seeds = seeds_dir().join("app_request");
    for (seed, status) in [
        ("get_user", 200),
        ("get_home", 200),
        ("post_login", 303),
        ("logout", 303),
        ("backchannel", 200),
        ("health", 200),
    ] {
        let data = std::fs::read(seeds.join(seed)).unwrap();
        let (_, response) = fuzz::targets::app_response(&data);
        assert_eq!(response.status, status, "{seed}");
    }
    let user = std::fs::read(seeds.join("get_user")).unwrap();
    let (_, page) = fuzz::targets::app_response(&user);
    assert!(
        page.body_text().contains(fuzz::world::ACCESS_TOKEN),
        "the owner sees the tokens"
    );
    // Logging out, here or at the IdP (the back-channel logout token names the
    // seeded session's IdP session), ends the seeded session; looking does not.
    for (seed, left) in [
        ("logout", (false, true)),
        ("backchannel", (false, true)),
        ("get_user", (true, false)),
    ] {
        let data = std::fs::read(seeds.join(seed)).unwrap();
        assert_eq!(fuzz::targets::app_leaves_session(&data), left, "{seed}");
    }
    // A login completes, a refresh succeeds, and the user denying consent ends at a 403.
    for (seed, status, location) in [
        ("callback", 303, Some("/user")),
        ("refresh", 303, Some("/user")),
        ("callback_error", 403, None),
    ] {
        let data = std::fs::read(seeds.join(seed)).unwrap();
        let (_, response) = fuzz::targets::app_response(&data);
        assert_eq!(response.status, status, "{seed}");
        assert_eq!(response.header("location"), location, "{seed}");
    }
}

/// The IdP-answer seeds are answers the app accepts: each step succeeds.
#[test]
fn idp_answer_seeds_are_accepted() {
    for seed in [
        "token_at_callback",
        "userinfo_at_callback",
        "jwks_at_callback",
        "token_at_refresh",
        "discovery_at_login",
    ] {
        let data = std::fs::read(seeds_dir().join("idp_response").join(seed)).unwrap();
        let status = fuzz::targets::idp_response_status(&data);
        assert_eq!(status, 303, "{seed}");
    }
}

/// The store-record seeds are records the world's tickets open (the session's
/// and the login's, sealed as the component seals them), so mutants start from
/// records that get past the envelope and the secret's check; a session of the
/// previous format (plain JSON) reads as logged out.
#[test]
fn store_seeds_open_under_the_world_tickets() {
    let seeds = seeds_dir().join("store_records");
    let reach =
        |seed: &str| fuzz::targets::store_records_reach(&std::fs::read(seeds.join(seed)).unwrap());
    assert_eq!(reach("session_record"), (true, false), "session_record");
    assert_eq!(reach("login_record"), (false, true), "login_record");
    assert_eq!(reach("session_record_previous_format"), (false, false));
}

/// The cookie seeds carry the world's tickets, well-formed.
#[test]
fn cookie_seeds_carry_tickets() {
    let data = std::fs::read(seeds_dir().join("cookie_header").join("both")).unwrap();
    let text = String::from_utf8(data).unwrap();
    let rng = fuzz::world::CountingRandom::default();
    let seeded = fuzz::world::seeded_store(&rng);
    for (base, cookie) in [
        (oidc_client::cookies::SESSION, seeded.session_cookie()),
        (oidc_client::cookies::LOGIN, seeded.login_cookie()),
    ] {
        let name = oidc_client::cookies::name(base, true);
        let ticket = oidc_client::cookies::read(std::iter::once(text.as_str()), &name)
            .unwrap_or_else(|| panic!("{name} is read"));
        assert_eq!(ticket.cookie_value(), cookie, "{name}");
    }
}

/// The bounded run of `jwt_compact` gets to every check it makes, counted over
/// the seeds and their mutants (the same deterministic sequence as the fuzz
/// run, fewer of them): tokens that are not a JWS, JWSs whose signature fails,
/// mutants that still verify (a changed signature encoding: they must carry
/// the IdP's own header and payload), and valid ID and logout tokens. A target
/// whose checks sat behind a branch no input reaches would pass for nothing.
#[test]
fn jwt_compact_inputs_reach_every_check() {
    // A quarter of the fuzz run's mutants reach every branch random mutation
    // reaches; the run itself covers the rest.
    let iterations = env_number("FUZZ_ITERATIONS", 20_000).min(5_000) as usize;
    let mut rng = mutate::Rng::new(env_number("FUZZ_SEED", 0x5eed));
    let seeds = mutate::seeds(&seeds_dir(), "jwt_compact").unwrap();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut count = |input: &[u8], mutant: bool| {
        let reach = fuzz::targets::jwt_compact_reach(input);
        let is_seed = seeds.iter().any(|s| s == input);
        let branch = match reach {
            r if !r.well_formed => "not a JWS",
            r if !r.verified => "signature refused",
            _ if mutant && !is_seed => "a mutant that verifies",
            _ => "a seed that verifies",
        };
        *counts.entry(branch).or_default() += 1;
        if reach.valid_id_token {
            *counts.entry("valid ID token").or_default() += 1;
        }
        if reach.valid_logout_token {
            *counts.entry("valid logout token").or_default() += 1;
        }
    };
    for seed in &seeds {
        count(seed, false);
    }
    for _ in 0..iterations {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate::mutate(&mut rng, &mut input, &seeds, 8192);
        count(&input, true);
    }
    // Random byte changes almost never leave a signature valid, so the mutants
    // that should still verify are made on purpose: each signed seed with its
    // ECDSA signature's twin (s replaced by n - s, as valid as s for P-256)
    // and with the last character of the signature changed in its unused bits
    // (a non-canonical encoding of the same bytes, which must be refused).
    for seed in &seeds {
        let text = String::from_utf8(seed.clone()).unwrap();
        let Some((signed, signature)) = text.rsplit_once('.') else {
            continue;
        };
        let Some(sig) = base64url_decode(signature) else {
            continue;
        };
        if sig.len() != 64 {
            continue;
        }
        let mut twin = sig.clone();
        twin[32..].copy_from_slice(&p256_order_minus(&sig[32..]));
        count(format!("{signed}.{}", base64url(&twin)).as_bytes(), true);
        let mut loose = signature.to_owned();
        let last = loose.pop().unwrap();
        let index = BASE64URL.iter().position(|&c| c as char == last).unwrap();
        loose.push(BASE64URL[index ^ 1] as char);
        count(format!("{signed}.{loose}").as_bytes(), true);
    }
    println!("jwt_compact: {counts:?}");
    for branch in [
        "not a JWS",
        "signature refused",
        "a mutant that verifies",
        "a seed that verifies",
        "valid ID token",
        "valid logout token",
    ] {
        assert!(
            counts.get(branch).is_some_and(|n| *n > 0),
            "no input reached {branch:?}: {counts:?}"
        );
    }
}

/// `n - s` for the order `n` of P-256, big-endian, 32 bytes.
fn p256_order_minus(s: &[u8]) -> [u8; 32] {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = N[i] as i16 - s[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0, "s is below the order");
    out
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding, decoded; None for a character outside the
/// alphabet (unused trailing bits are dropped).
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let (mut out, mut bits, mut acc) = (Vec::new(), 0u32, 0u32);
    for c in text.bytes() {
        acc = (acc << 6) | BASE64URL.iter().position(|&a| a == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
