//! Attacks on the component's sessions, end to end against the fake OpenID Provider
//! (`e2e::fake_idp`), which answers instantly and lets a test change the user.
//!
//! Proves: no session fixation (a planted id or an earlier real session is never the
//! one after login, and the earlier one ends); a used login-transaction cookie cannot be
//! replayed; cross-site POSTs to /logout and /refresh are refused and the session
//! survives; cookies are HttpOnly, SameSite=Lax, Path=/, and on an https base URL Secure
//! with the `__Host-` prefix; session tickets never repeat over many logins, are a
//! 128-bit id and a 256-bit secret in base64url, both halves passing simple statistical
//! checks; and no parameter or path makes any
//! route redirect off-site (only to the IdP's own authorization and end-session
//! endpoints, with our own redirect URIs).

use std::collections::HashSet;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e::fake_idp::{Endpoint, FakeIdp};
use e2e::records::{ID_CHARS, SECRET_CHARS, ended_key, login_key, session_key, ticket_parts};
use e2e::rig::{Rig, RigOptions};
use e2e::{Browser, Cookie, Host, Response};
use url::Url;

const SESSION: &str = "oidc_session";
const LOGIN: &str = "oidc_login";

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// The value of the session cookie a response sets (panics when it sets none).
#[track_caller]
fn session_set_by(response: &Response) -> String {
    response
        .set_cookie(SESSION)
        .unwrap_or_else(|| panic!("no {SESSION} cookie set: {}", response.describe()))
        .value
}

/// A session cookie of the right shape (`<id>.<secret>`, 128 and 256 random bits)
/// that the component never issued.
fn fake_id() -> String {
    let ticket = format!(
        "{}.{}",
        e2e::oidc::random_token(16),
        e2e::oidc::random_token(32)
    );
    ticket_parts(&ticket);
    ticket
}

// ---------------------------------------------------------------- fixation

#[test]
fn a_planted_session_id_is_not_the_one_after_login() {
    let mut rig = Rig::start();
    let planted = fake_id();
    rig.browser
        .jar
        .set_value(&url(rig.base()), SESSION, &planted);

    let callback = rig.login_callback();
    callback.assert_redirect(303, &rig.url("/user"));
    let issued = session_set_by(&callback);
    assert_ne!(issued, planted);
    assert_ne!(
        ticket_parts(&issued).0,
        ticket_parts(&planted).0,
        "not even the planted id is taken over"
    );
    assert_eq!(rig.session_keys(), vec![session_key(&issued)]);

    // The planted id leads nowhere.
    let mut attacker = Browser::new();
    attacker.jar.set_value(&url(rig.base()), SESSION, &planted);
    attacker
        .get(&rig.url("/user"))
        .assert_redirect(303, &rig.url("/"));
}

#[test]
fn an_earlier_real_session_is_replaced_and_ended_by_login() {
    let mut rig = Rig::start();
    // The attacker logs in as themselves and plants their cookie in the victim's browser.
    rig.idp.configure(|b| b.sub = "mallory".into());
    let mut attacker = Browser::new();
    std::mem::swap(&mut attacker, &mut rig.browser);
    let page = rig.login();
    assert_eq!(
        page.text_by_id("username").as_deref().map(str::trim),
        Some("mallory")
    );
    std::mem::swap(&mut attacker, &mut rig.browser);
    let attackers = attacker
        .cookie(rig.base(), SESSION)
        .expect("the attacker's session");

    rig.browser
        .jar
        .set_value(&url(rig.base()), SESSION, &attackers);
    rig.idp.configure(|b| b.sub = "alice".into());
    let callback = rig.login_callback();
    let victims = session_set_by(&callback);
    assert_ne!(victims, attackers);
    let page = rig.browser.follow(&callback);
    assert_eq!(
        page.text_by_id("username").as_deref().map(str::trim),
        Some("alice")
    );

    // The planted session ended: the attacker cannot ride the victim's login.
    assert_eq!(rig.session_keys(), vec![session_key(&victims)]);
    assert!(
        rig.redis
            .as_ref()
            .unwrap()
            .get(&ended_key(&attackers))
            .is_some(),
        "the planted session was ended (its tombstone is there)"
    );
    attacker
        .get(&rig.url("/user"))
        .assert_redirect(303, &rig.url("/"));

    // Logging in again in the same browser also yields a new id and ends the old one.
    let callback = rig.login_callback();
    let again = session_set_by(&callback);
    assert_ne!(again, victims);
    assert_eq!(rig.session_keys(), vec![session_key(&again)]);
}

// ---------------------------------------------------------------- login transaction replay

#[test]
fn a_stolen_login_transaction_cookie_cannot_be_replayed() {
    let mut rig = Rig::start();
    let to_idp = rig.begin_login();
    let stolen = rig
        .browser
        .cookie(rig.base(), LOGIN)
        .expect("the login cookie");
    let to_callback = rig.browser.follow(&to_idp);
    let callback_url = to_callback.expect_location();
    let callback = rig.browser.follow(&to_callback);
    callback.assert_redirect(303, &rig.url("/user"));
    assert!(
        callback.set_cookie(LOGIN).is_some_and(|c| c.is_expired()),
        "the callback clears the login cookie"
    );
    let sessions = rig.session_keys();
    assert_eq!(sessions.len(), 1);

    // The thief replays the cookie and the whole callback URL.
    let mut thief = Browser::new();
    thief.jar.set_value(&url(rig.base()), LOGIN, &stolen);
    let replay = thief.get(callback_url.as_str());
    replay.assert_status(400);
    let message = replay.error_message().expect("an error page");
    assert!(message.contains("Unknown login state"), "{message}");
    assert!(replay.set_cookie(SESSION).is_none());
    assert_eq!(rig.session_keys(), sessions, "no new session");
    assert_eq!(
        rig.keys(&login_key(&stolen)),
        Vec::<String>::new(),
        "the used transaction is gone"
    );
    thief
        .get(&rig.url("/user"))
        .assert_redirect(303, &rig.url("/"));
    assert_eq!(
        rig.idp.count(Endpoint::Token),
        1,
        "the code was not sent again"
    );
}

// ---------------------------------------------------------------- CSRF

#[test]
fn cross_site_posts_to_logout_and_refresh_are_refused_and_the_session_survives() {
    let mut rig = Rig::start();
    let page = rig.login();
    let csrf = e2e::app::UserPage::parse(&page)
        .csrf
        .expect("the csrf field");
    let sessions = rig.session_keys();
    let tokens_before = rig.idp.count(Endpoint::Token);

    for path in ["/logout", "/refresh"] {
        let target = url(&rig.url(path));
        let with_csrf = [("csrf", csrf.as_str())];
        let no_fields: [(&str, &str); 0] = [];
        let wrong_csrf = [("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")];
        // Another site's form (Origin of another site, or `null` from a sandboxed frame).
        for origin in ["https://evil.example", "http://127.0.0.1:1", "null"] {
            let r = rig
                .browser
                .post_form_from(Some(origin), &target, &with_csrf);
            r.assert_status(403);
            assert!(
                r.error_message().unwrap().contains("Cross-site"),
                "{}",
                r.describe()
            );
        }
        // No Origin, but a Referer from another site.
        let r = rig.browser.request(
            "POST",
            &target,
            &[("referer", "https://evil.example/page")],
            Some((
                "application/x-www-form-urlencoded",
                format!("csrf={csrf}").into_bytes(),
            )),
        );
        r.assert_status(403);
        // Same site but no or a wrong csrf field (e.g. a forged form on a sibling page).
        for fields in [&no_fields[..], &wrong_csrf[..]] {
            let r = rig.browser.post_form(target.as_str(), fields);
            r.assert_status(403);
            assert!(
                r.error_message().unwrap().contains("expired"),
                "{}",
                r.describe()
            );
        }
    }

    assert_eq!(rig.session_keys(), sessions, "the session survives");
    rig.browser.get(&rig.url("/user")).assert_status(200);
    assert_eq!(
        rig.idp.count(Endpoint::Token),
        tokens_before,
        "no refresh happened"
    );
    assert_eq!(rig.idp.count(Endpoint::EndSession), 0);

    // The genuine form still works.
    let form = page.form_with_action_path("/logout");
    let out = rig.browser.submit(&page, &form);
    out.assert_redirect(303, &rig.idp.url(Endpoint::EndSession));
    assert_eq!(rig.session_keys(), Vec::<String>::new());
}

// ---------------------------------------------------------------- cookie attributes

#[track_caller]
fn assert_attributes(cookie: &Cookie, name: &str, secure: bool) {
    assert_eq!(cookie.name, name, "{}", cookie.raw);
    assert!(cookie.http_only, "HttpOnly: {}", cookie.raw);
    assert_eq!(cookie.same_site.as_deref(), Some("Lax"), "{}", cookie.raw);
    assert_eq!(
        cookie.path_attribute.as_deref(),
        Some("/"),
        "{}",
        cookie.raw
    );
    assert_eq!(cookie.domain, None, "{}", cookie.raw);
    assert_eq!(cookie.secure, secure, "Secure: {}", cookie.raw);
}

#[test]
fn cookies_are_httponly_samesite_lax_path_root_on_http() {
    let mut rig = Rig::start();
    let to_idp = rig.begin_login();
    assert_attributes(
        &to_idp.set_cookie(LOGIN).expect("login cookie"),
        LOGIN,
        false,
    );
    let to_callback = rig.browser.follow(&to_idp);
    let callback = rig.browser.follow(&to_callback);
    assert_attributes(
        &callback.set_cookie(SESSION).expect("session cookie"),
        SESSION,
        false,
    );
    let cleared = callback.set_cookie(LOGIN).expect("login cookie cleared");
    assert_attributes(&cleared, LOGIN, false);
    assert!(cleared.is_expired());

    let page = rig.browser.follow(&callback);
    let out = rig
        .browser
        .submit(&page, &page.form_with_action_path("/logout"));
    let cleared = out.set_cookie(SESSION).expect("session cookie cleared");
    assert_attributes(&cleared, SESSION, false);
    assert!(cleared.is_expired());
}

#[test]
fn cookies_are_secure_with_the_host_prefix_on_https() {
    // The component believes it is served at https://app.example (behind a TLS proxy);
    // the test talks to the host directly over http and sends what the browser would.
    let idp = FakeIdp::start();
    let host = Host::start(idp.host_options("https://app.example"));
    let app_origin = "https://app.example";
    let mut browser = Browser::new();

    let home = browser.get(&host.url("/"));
    home.assert_status(200);
    let to_idp = browser.post_form_from(
        Some(app_origin),
        &url(&host.url("/login")),
        &[("scope", "openid profile")],
    );
    to_idp.assert_redirect(303, &idp.url(Endpoint::Authorization));
    assert_eq!(
        to_idp.location_param("redirect_uri").as_deref(),
        Some("https://app.example/callback")
    );
    assert_attributes(
        &to_idp
            .set_cookie("__Host-oidc_login")
            .expect("login cookie"),
        "__Host-oidc_login",
        true,
    );
    assert!(to_idp.set_cookie(LOGIN).is_none(), "no unprefixed cookie");

    let to_callback = browser.follow(&to_idp);
    let back = to_callback.assert_redirect(303, "https://app.example/callback");
    let callback = browser.get(&format!(
        "{}?{}",
        host.url("/callback"),
        back.query().unwrap()
    ));
    callback.assert_redirect(303, &host.url("/user"));
    let session = callback
        .set_cookie("__Host-oidc_session")
        .expect("session cookie");
    assert_attributes(&session, "__Host-oidc_session", true);
    assert!(
        callback.set_cookie(SESSION).is_none(),
        "no unprefixed cookie"
    );
    assert_attributes(
        &callback.set_cookie("__Host-oidc_login").unwrap(),
        "__Host-oidc_login",
        true,
    );

    let page = browser.get(&host.url("/user"));
    page.assert_status(200);

    // An unprefixed cookie carrying the same id is not honoured on https.
    let mut other = Browser::new();
    other
        .jar
        .set_value(&url(host.base_url()), SESSION, &session.value);
    other
        .get(&host.url("/user"))
        .assert_redirect(303, &host.url("/"));

    // Logout clears it with the same attributes.
    let csrf = e2e::app::UserPage::parse(&page).csrf.unwrap();
    let out = browser.post_form_from(
        Some(app_origin),
        &url(&host.url("/logout")),
        &[("csrf", csrf)],
    );
    out.assert_status(303);
    let cleared = out.set_cookie("__Host-oidc_session").expect("cleared");
    assert_attributes(&cleared, "__Host-oidc_session", true);
    assert!(cleared.is_expired());
}

// ---------------------------------------------------------------- session id quality

/// One login as fast as the component allows: POST /login, the fake's redirect, GET
/// /callback; returns the new session cookie's value (a ticket, `<id>.<secret>`).
fn quick_login(browser: &mut Browser, login: &Url, base_origin: &str) -> String {
    let to_idp = browser.post_form_from(Some(base_origin), login, &[("scope", "openid")]);
    assert_eq!(to_idp.status, 303, "{}", to_idp.describe());
    let to_callback = browser.follow(&to_idp);
    assert_eq!(to_callback.status, 303, "{}", to_callback.describe());
    let callback = browser.follow(&to_callback);
    assert_eq!(callback.status, 303, "{}", callback.describe());
    session_set_by(&callback)
}

fn bits(id: &[u8], i: usize) -> bool {
    id[i / 8] >> (7 - i % 8) & 1 == 1
}

fn hamming(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

fn common_prefix_bits(a: &[u8], b: &[u8]) -> usize {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x != y {
            return i * 8 + (x ^ y).leading_zeros() as usize;
        }
    }
    a.len() * 8
}

/// Decodes one half of a ticket: `chars` base64url characters (no padding) of
/// `bytes` random bytes, canonically encoded.
#[track_caller]
fn decode_half(what: &str, half: &str, chars: usize, bytes: usize) -> Vec<u8> {
    assert_eq!(
        half.len(),
        chars,
        "a ticket's {what} has {chars} characters"
    );
    assert!(
        half.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "a ticket's {what} is base64url"
    );
    let decoded = URL_SAFE_NO_PAD
        .decode(half)
        .unwrap_or_else(|e| panic!("a ticket's {what} is base64url without padding: {e}"));
    assert_eq!(
        decoded.len(),
        bytes,
        "a ticket's {what} is {} bits",
        bytes * 8
    );
    assert_eq!(URL_SAFE_NO_PAD.encode(&decoded), half, "canonical encoding");
    decoded
}

/// Decoded values, in the order one client got them.
type PerClient = Vec<Vec<u8>>;

/// Values from `per_client` (in the order each client got them) are all distinct and
/// show no visible structure: every bit position balanced, byte values uniform, no
/// long shared prefixes, and consecutive values of one client unrelated.
fn assert_look_random(what: &str, per_client: &[PerClient]) {
    let all: Vec<&Vec<u8>> = per_client.iter().flatten().collect();
    let n = all.len();
    let len = all[0].len();
    let nbits = len * 8;
    let distinct: HashSet<&Vec<u8>> = all.iter().copied().collect();
    assert_eq!(distinct.len(), n, "{what}s repeated");
    let nf = n as f64;

    // Each bit position is set in about half the values (5.5 sigma bounds: a false
    // alarm about once in 100,000 runs per half).
    let sigma = nf.sqrt() / 2.0;
    let worst = (0..nbits)
        .map(|i| {
            let ones = all.iter().filter(|v| bits(v, i)).count() as f64;
            ((ones - nf / 2.0).abs() / sigma, i)
        })
        .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a });
    eprintln!(
        "{what} bit balance: worst position {} at {:.2} sigma",
        worst.1, worst.0
    );
    assert!(
        worst.0 < 5.5,
        "{what} bit {} is biased ({:.2} sigma)",
        worst.1,
        worst.0
    );

    // Byte values are uniform (chi-square, 255 degrees of freedom, ~7 sigma bound).
    let mut histogram = [0u64; 256];
    for v in &all {
        for b in v.iter() {
            histogram[*b as usize] += 1;
        }
    }
    let expected = (n * len) as f64 / 256.0;
    let chi2: f64 = histogram
        .iter()
        .map(|&o| (o as f64 - expected).powi(2) / expected)
        .sum();
    eprintln!("{what} byte chi-square: {chi2:.1} (255 degrees of freedom)");
    assert!(
        chi2 < 255.0 + 7.0 * (2.0 * 255.0f64).sqrt(),
        "{what} bytes not uniform: chi2 {chi2:.1}"
    );

    // No two values share a longer prefix than chance allows: the longest common prefix
    // among n random values is about log2(n^2/2) bits; 24 more would be a
    // 1-in-16-million event.
    let mut sorted = all.clone();
    sorted.sort();
    let longest = sorted
        .windows(2)
        .map(|w| common_prefix_bits(w[0], w[1]))
        .max()
        .unwrap();
    let bound = (nf * (nf - 1.0) / 2.0).log2().ceil() as usize + 24;
    eprintln!("{what} longest shared prefix: {longest} bits (bound {bound})");
    assert!(longest <= bound, "two {what}s share a {longest}-bit prefix");

    // Consecutive values of one client are unrelated: Hamming distance ~ Binomial(nbits,
    // 1/2), never below a quarter of the bits (8 sigma for 256 bits; for 128 bits a
    // chance of 6.4e-9 per pair, about 1 in 15,000 runs of 10,000 logins); the mean
    // close to half; no repeated XOR or difference between neighbours (a counter or a
    // linear generator would repeat them).
    let mut distances = Vec::new();
    let mut xors = HashSet::new();
    let mut diffs = HashSet::new();
    let mut pairs = 0usize;
    for client in per_client {
        for w in client.windows(2) {
            pairs += 1;
            distances.push(hamming(&w[0], &w[1]));
            xors.insert(
                w[0].iter()
                    .zip(&w[1])
                    .map(|(a, b)| a ^ b)
                    .collect::<Vec<u8>>(),
            );
            let head = |v: &[u8]| u128::from_be_bytes(v[..16].try_into().unwrap());
            diffs.insert(head(&w[1]).wrapping_sub(head(&w[0])));
        }
    }
    let half = nbits as f64 / 2.0;
    let sd = (nbits as f64).sqrt() / 2.0;
    let min = *distances.iter().min().unwrap();
    let mean = distances.iter().map(|&d| d as f64).sum::<f64>() / pairs as f64;
    let mean_bound = 6.0 * sd / (pairs as f64).sqrt();
    eprintln!(
        "{what} consecutive Hamming distance: min {min}, mean {mean:.2} (expected {half}) \
         over {pairs} pairs"
    );
    assert!(
        min as usize >= nbits / 4,
        "two consecutive {what}s differ in only {min} of {nbits} bits"
    );
    assert!(
        (mean - half).abs() < mean_bound,
        "{what} mean Hamming distance {mean:.2}"
    );
    assert_eq!(
        xors.len(),
        pairs,
        "a repeated XOR between consecutive {what}s"
    );
    assert_eq!(
        diffs.len(),
        pairs,
        "a repeated difference between consecutive {what}s"
    );
}

/// Session tickets over many logins: `<id>.<secret>`, the id 22 base64url characters
/// (128 bits: the store key), the secret 43 (256 bits: never stored). Both halves are
/// all distinct and show no visible structure, and an id and its own secret are
/// unrelated. The count is `E2E_SESSION_ID_LOGINS` (default below).
#[test]
fn session_ids_never_repeat_and_look_random() {
    // The issue asks for 10,000 logins: 67 to 82 s on the 2-core test machine in full
    // runs (~125 logins/s with 4 clients, bounded by the node IdP).
    // E2E_SESSION_ID_LOGINS lowers it for quick local runs.
    let n: usize = std::env::var("E2E_SESSION_ID_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    const CLIENTS: usize = 4;
    let rig = Rig::start_with(RigOptions::default().in_memory());
    let login = url(&rig.url("/login"));
    let origin = rig.base().to_string();

    let started = Instant::now();
    let per_client: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let login = login.clone();
                let origin = origin.clone();
                s.spawn(move || {
                    let mut browser = Browser::new();
                    let count = n / CLIENTS + usize::from(c < n % CLIENTS);
                    (0..count)
                        .map(|_| quick_login(&mut browser, &login, &origin))
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let took = started.elapsed();
    eprintln!(
        "{n} logins with {CLIENTS} clients in {took:.1?}: {:.0} logins/s",
        n as f64 / took.as_secs_f64()
    );
    assert!(rig.idp.problems().is_empty(), "{:?}", rig.idp.problems());

    let all: Vec<&String> = per_client.iter().flatten().collect();
    assert_eq!(all.len(), n);
    let distinct: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(distinct.len(), n, "session cookies repeated");

    // Split every cookie into its halves (the shape ticket_parts documents), per client.
    let (ids, secrets): (Vec<PerClient>, Vec<PerClient>) = per_client
        .iter()
        .map(|client| {
            client
                .iter()
                .map(|cookie| {
                    assert_eq!(
                        cookie.len(),
                        ID_CHARS + 1 + SECRET_CHARS,
                        "the ticket's length"
                    );
                    let (id, secret) = ticket_parts(cookie);
                    (
                        decode_half("id", id, ID_CHARS, 16),
                        decode_half("secret", secret, SECRET_CHARS, 32),
                    )
                })
                .unzip()
        })
        .unzip();
    assert_look_random("id", &ids);
    assert_look_random("secret", &secrets);

    // No id is (a part of) any secret: the two halves are drawn independently.
    let id_set: HashSet<&[u8]> = ids.iter().flatten().map(Vec::as_slice).collect();
    for secret in secrets.iter().flatten() {
        assert!(
            !id_set.contains(&secret[..16]) && !id_set.contains(&secret[16..]),
            "a secret holds an id"
        );
    }
    // An id and its own secret are unrelated: over the first 128 bits, Hamming distance
    // ~ Binomial(128, 1/2), mean 64, never below 32.
    let distances: Vec<u32> = ids
        .iter()
        .flatten()
        .zip(secrets.iter().flatten())
        .map(|(id, secret)| hamming(id, &secret[..16]))
        .collect();
    let min = *distances.iter().min().unwrap();
    let mean = distances.iter().map(|&d| d as f64).sum::<f64>() / n as f64;
    eprintln!("id against its secret: Hamming distance min {min}, mean {mean:.2}");
    assert!(min >= 32, "an id and its secret differ in only {min} bits");
    assert!(
        (mean - 64.0).abs() < 6.0 * (128.0f64).sqrt() / 2.0 / (n as f64).sqrt(),
        "mean Hamming distance between ids and their secrets {mean:.2}"
    );
}

// ---------------------------------------------------------------- open redirects

const PARAMS: &[&str] = &[
    "redirect",
    "redirect_uri",
    "return_to",
    "returnTo",
    "next",
    "url",
    "continue",
    "goto",
    "post_logout_redirect_uri",
];
const TARGETS: &[&str] = &[
    "https://evil.example/",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "http://127.0.0.1.evil.example/",
];

/// Collects every `Location` seen and what is wrong with it.
struct RedirectAudit {
    app: Url,
    authorization: String,
    end_session: String,
    checked: usize,
    redirects: usize,
    violations: Vec<String>,
}

impl RedirectAudit {
    fn check(&mut self, request: &str, request_url: &Url, location: Option<&str>) {
        self.checked += 1;
        let Some(raw) = location else { return };
        self.redirects += 1;
        let mut bad = |why: String| {
            self.violations
                .push(format!("{request}: Location {raw:?}: {why}"))
        };
        // The attacker's host, raw or percent-encoded. (Not just "evil": the random
        // state and nonce are base64url and contain that by chance now and then.)
        let decoded = url::form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<String>();
        if [raw.to_ascii_lowercase(), decoded.to_ascii_lowercase()]
            .iter()
            .any(|s| s.contains("evil.example"))
        {
            bad("echoes the attacker's value".into());
        }
        let Ok(target) = request_url.join(raw) else {
            bad("does not resolve".into());
            return;
        };
        let param = |name: &str| {
            target
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let base = self.app.as_str().trim_end_matches('/').to_string();
        if target.origin() == self.app.origin() {
            // On-site.
        } else if target.as_str().starts_with(&self.authorization) {
            // A pushed request (RFC 9126) carries only a reference: the
            // redirect URI went to the IdP server to server.
            let keys: Vec<String> = target.query_pairs().map(|(k, _)| k.into_owned()).collect();
            if param("request_uri").is_some() {
                if keys != ["client_id", "request_uri"] {
                    bad(format!("pushed authorization request with {keys:?}"));
                }
            } else if param("redirect_uri") != Some(format!("{base}/callback")) {
                bad(format!(
                    "authorization request with redirect_uri {:?}",
                    param("redirect_uri")
                ));
            }
        } else if target.as_str().starts_with(&self.end_session) {
            // RP-initiated logout always names where the IdP sends the browser back:
            // our own start page, never a value from the request.
            match param("post_logout_redirect_uri") {
                Some(p) if p == format!("{base}/") => {}
                Some(p) => bad(format!("end-session with post_logout_redirect_uri {p:?}")),
                None => bad("end-session without post_logout_redirect_uri".into()),
            }
        } else {
            bad(format!(
                "off-site to {}",
                target.origin().ascii_serialization()
            ));
        }
    }

    fn response(&mut self, r: &Response) {
        let what = format!("{} {}", r.method, r.url);
        self.check(&what, &r.url, r.header("location"));
    }
}

/// GET `target` byte for byte (a client library would normalise `/\` and the like);
/// returns the status and the Location header, if any. Panics when there is no
/// complete HTTP response (a reset or closed connection is not "no redirect"), and
/// unless a Location comes exactly with a 3xx status.
fn raw_get(port: u16, target: &str) -> (u16, Option<String>) {
    let response = e2e::raw_http::send(port, &format!("GET {target} HTTP/1.1\r\n"), b"")
        .unwrap_or_else(|e| panic!("GET {target}: no complete HTTP response: {e}"));
    let location = response.header("location").map(str::to_owned);
    assert!(
        (100..600).contains(&response.status),
        "GET {target}: status {}",
        response.status
    );
    assert!(
        response.status < 500,
        "GET {target}: a server error {}: {}",
        response.status,
        response.body_text()
    );
    assert_eq!(
        (300..400).contains(&response.status),
        location.is_some(),
        "GET {target}: status {} with Location {location:?}",
        response.status
    );
    (response.status, location)
}

#[test]
fn no_parameter_or_path_redirects_off_site() {
    let mut rig = Rig::start();
    let mut audit = RedirectAudit {
        app: url(rig.base()),
        authorization: rig.idp.url(Endpoint::Authorization),
        end_session: rig.idp.url(Endpoint::EndSession),
        checked: 0,
        redirects: 0,
        violations: Vec::new(),
    };
    let get_routes = [
        "/",
        "/user",
        "/callback",
        "/healthz",
        "/readyz",
        "/style.css",
        "/nope",
        "/login",
        "/logout",
    ];
    let post_routes = ["/login", "/logout", "/refresh", "/backchannel-logout", "/"];
    let combos: Vec<(&str, &str)> = PARAMS
        .iter()
        .flat_map(|p| TARGETS.iter().map(move |t| (*p, *t)))
        .collect();
    let query = |p: &str, t: &str| e2e::browser::form_urlencode(&[(p, t)]);
    let base = rig.base().to_string();

    // Logged out, then logged in: every route, every parameter in the query (and in
    // the form of POSTs, with the csrf field when logged in).
    for logged_in in [false, true] {
        let csrf = if logged_in {
            let page = rig.login();
            Some(e2e::app::UserPage::parse(&page).csrf.unwrap())
        } else {
            None
        };
        for &(p, t) in &combos {
            for route in get_routes {
                let r = rig
                    .browser
                    .get(&format!("{}{route}?{}", rig.base(), query(p, t)));
                audit.response(&r);
            }
            for route in post_routes {
                if route == "/logout" && logged_in {
                    continue; // below, one login per attempt
                }
                let target = url(&format!("{}{route}?{}", rig.base(), query(p, t)));
                let mut fields = vec![(p, t)];
                if let Some(csrf) = &csrf {
                    fields.push(("csrf", csrf.as_str()));
                }
                let r = rig.browser.post_form_from(Some(&base), &target, &fields);
                audit.response(&r);
            }
        }
    }

    // Logout (logged in, genuine csrf) with each parameter: only to the end-session
    // endpoint, which sends the browser back to our own start page.
    for &(p, t) in &combos {
        let page = rig.login();
        let csrf = e2e::app::UserPage::parse(&page).csrf.unwrap();
        let target = url(&format!("{}/logout?{}", rig.base(), query(p, t)));
        let r =
            rig.browser
                .post_form_from(Some(&base), &target, &[("csrf", csrf.as_str()), (p, t)]);
        r.assert_redirect(303, &audit.end_session);
        audit.response(&r);
        let back = rig.browser.follow(&r);
        audit.response(&back);
    }

    // A genuine callback with each parameter added: only to /user.
    for &(p, t) in &combos {
        let to_idp = rig.begin_login();
        audit.response(&to_idp);
        let to_callback = rig.browser.follow(&to_idp);
        let mut callback = to_callback.expect_location();
        callback.query_pairs_mut().append_pair(p, t);
        let r = rig.browser.get(callback.as_str());
        r.assert_redirect(303, &rig.url("/user"));
        audit.response(&r);
    }

    // Paths that browsers or proxies may read as another host.
    let paths = [
        "//evil.example",
        "//evil.example/",
        "//evil.example/user",
        "///evil.example",
        "/\\evil.example",
        "/\\/evil.example/",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/.//evil.example",
        "//evil.example/%2e%2e/user",
        "/user/..//evil.example",
        "/callback//evil.example",
    ];
    for path in paths {
        let (status, location) = raw_get(rig.host.port(), path);
        let request_url = url(&rig.url("/"));
        audit.check(
            &format!("GET {path} ({status})"),
            &request_url,
            location.as_deref(),
        );
    }

    eprintln!(
        "open redirects: {} requests, {} redirects checked, {} violations",
        audit.checked,
        audit.redirects,
        audit.violations.len()
    );
    assert!(audit.violations.is_empty(), "{:#?}", audit.violations);
}
