//! Every fuzz target on its checked-in seeds and on a fixed number of
//! deterministic mutants of them (stable Rust, part of the one test command).
//! `FUZZ_ITERATIONS` sets the mutants per target (default 20,000);
//! `FUZZ_SEED` picks another deterministic sequence. Inputs that panic are
//! saved under `target/fuzz-findings/<target>/` and named in the failure.

use std::path::PathBuf;
use std::time::Instant;

use fuzz::{TARGETS, mutate};

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
