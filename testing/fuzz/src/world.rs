//! A fixed, deterministic world for the targets: configuration, a signing key,
//! an IdP that answers from memory, a clock that never moves, counting
//! randomness, and a store holding one live session (listed in the back-channel
//! index, as a login leaves it) and one login transaction.
//! Fixed so that a failing input fails again when replayed.

use std::cell::Cell;
use std::sync::OnceLock;

use jsonwebtoken::jwk::Jwk;
use oidc_client::app::Platform;
use oidc_client::config::Config;
use oidc_client::oidc::{jwks, transaction};
use oidc_client::ports::{HttpClient, HttpError, HttpRequest, HttpResponse, KeyValue, Random};
use oidc_client::secret::{AccessToken, IdToken, RefreshToken};
use oidc_client::session::{Identity, Lifetimes, Origin, PrettyJson, Sessions, Tokens};
use oidc_client::session_index;
pub use oidc_client::testing::CountingRandom;
use oidc_client::testing::{FixedClock, MapVars, MemoryStore};
use oidc_client::ticket::Ticket;
use serde_json::{Value, json};
use test_support::TestKey;

pub const ISSUER: &str = "https://idp.example/realms/demo";
pub const IDP_ORIGIN: &str = "https://idp.example";
pub const CLIENT_ID: &str = "client1";
pub const CLIENT_SECRET: &str = "fuzz-client-secret-0123456789";
pub const NONCE: &str = "fuzz-nonce";
pub const KID: &str = "fuzz-es256";
/// The fixed "now" of every target.
pub const NOW: i64 = 1_800_000_000;

/// The session's tokens: they may appear on `/user` to their owner, nowhere else.
pub const ACCESS_TOKEN: &str = "fuzz-access-token-7c1e";
pub const REFRESH_TOKEN: &str = "fuzz-refresh-token-91b2";
pub const ID_TOKEN: &str = "fuzz.id-token.5d0a";

/// The example settings, with the world's names and a client secret long
/// enough that finding it on a page is no accident.
pub fn vars() -> MapVars {
    let mut vars = oidc_client::testing::vars();
    for (name, value) in [
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("oidc_issuer_url", ISSUER),
        ("oidc_idp_origin", IDP_ORIGIN),
    ] {
        vars.0.insert(name.to_owned(), value.to_owned());
    }
    vars
}

pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| Config::load(&vars()).expect("the fuzz configuration is valid"))
}

/// The world's clock: it shows [`NOW`], and nothing moves it. Time standing
/// still and nothing else running, a request waiting for another's refresh
/// polls without waiting.
pub fn clock() -> &'static FixedClock {
    thread_local! {
        static CLOCK: &'static FixedClock = Box::leak(Box::new(FixedClock::at(NOW)));
    }
    CLOCK.with(|clock| *clock)
}

/// The ES256 key the world's IdP signs with, under [`KID`]: a fixed scalar, so
/// its tokens are the same on every run.
pub struct IdpKey(TestKey);

impl IdpKey {
    pub fn sign(&self, claims: &Value) -> String {
        self.0.sign(Some(KID), claims)
    }

    /// The JWKS the IdP publishes.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.0.public_jwk_with_alg(KID)] })
    }
}

pub fn key() -> &'static IdpKey {
    static KEY: OnceLock<IdpKey> = OnceLock::new();
    KEY.get_or_init(|| IdpKey(TestKey::ec_from_scalar(&[0x42; 32])))
}

/// The IdP's keys, as the component holds them after fetching the JWKS.
pub fn keys() -> &'static [Jwk] {
    static KEYS: OnceLock<Vec<Jwk>> = OnceLock::new();
    KEYS.get_or_init(|| jwks::usable_keys(&key().jwks()).expect("the fuzz JWKS is usable"))
}

/// Claims the component accepts as an ID token at `NOW`.
pub fn good_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": CLIENT_ID, "sub": "alice", "nonce": NONCE,
        "iat": NOW - 10, "exp": NOW + 300, "sid": "idp-session-1",
    })
}

/// The IdP's discovery document: back-channel logout supported.
pub fn discovery() -> Value {
    let mut doc = test_support::discovery(ISSUER);
    doc["backchannel_logout_supported"] = json!(true);
    doc
}

/// Tokens the IdP issues at its token endpoint (for any code or refresh token):
/// like the session's, they may appear on no page.
pub const NEW_ACCESS_TOKEN: &str = "fuzz-new-access-token-3f9c";
pub const NEW_REFRESH_TOKEN: &str = "fuzz-new-refresh-token-a8d4";

/// An IdP that serves discovery and the JWKS, answers every token request with
/// tokens for alice (the ID token carrying `nonce`, the pending login's) and
/// her userinfo, and is otherwise unreachable. `fuzzed` replaces the answer at
/// one path with raw bytes.
pub struct Idp {
    pub nonce: String,
    pub fuzzed: Option<(&'static str, Vec<u8>)>,
}

impl Idp {
    pub fn token_response(&self) -> Value {
        json!({
            "access_token": NEW_ACCESS_TOKEN,
            "refresh_token": NEW_REFRESH_TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(),
        })
    }

    /// The ID token the token endpoint issues: like the other tokens, never
    /// on a page but the owner's `/user`, never in the store in clear.
    pub fn id_token(&self) -> String {
        // Every world's pending login has the same nonce (the randomness is
        // counted from zero), so the signature is made once, not per request.
        static ISSUED: OnceLock<(String, String)> = OnceLock::new();
        let sign = |nonce: &str| {
            let mut claims = good_claims();
            claims["nonce"] = json!(nonce);
            key().sign(&claims)
        };
        let (nonce, token) = ISSUED.get_or_init(|| (self.nonce.clone(), sign(&self.nonce)));
        if *nonce == self.nonce {
            token.clone()
        } else {
            sign(&self.nonce)
        }
    }
}

impl HttpClient for Idp {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let path = request.uri().path().to_owned();
        if let Some((fuzzed_path, body)) = &self.fuzzed
            && path == *fuzzed_path
        {
            return respond(200, body.clone());
        }
        let (status, body) = match path.as_str() {
            "/realms/demo/.well-known/openid-configuration" => (200, discovery()),
            "/realms/demo/jwks" => (200, key().jwks()),
            "/realms/demo/token" => (200, self.token_response()),
            "/realms/demo/userinfo" => (200, json!({"sub": "alice", "email": "alice@example.com"})),
            "/realms/demo/revoke" => (200, json!({})),
            _ => return Err(HttpError::Unreachable("connection refused".into())),
        };
        respond(status, body.to_string().into_bytes())
    }
}

fn respond(status: u16, body: Vec<u8>) -> Result<HttpResponse, HttpError> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
        .map_err(|e| HttpError::Other(e.to_string()))
}

pub const LIFETIMES: Lifetimes = Lifetimes {
    idle: 3600,
    absolute: 28800,
};

/// Seconds a refresh may hold a session's lock, as the app computes it.
pub fn lock_hold() -> i64 {
    2 * config().idp_timeout_secs as i64 + 5
}

/// The world's sessions over `kv`, as the app's would be.
pub fn sessions<'a>(kv: &'a dyn KeyValue, rng: &'a dyn Random) -> Sessions<'a> {
    Sessions {
        kv,
        clock: clock(),
        rng,
        lifetimes: LIFETIMES,
        lock_hold: lock_hold(),
    }
}

/// A store with one live session and one pending login transaction, with the
/// tickets their cookies carry and the values the flow needs.
pub struct Seeded {
    pub kv: MemoryStore,
    /// The live session's ticket (its cookie: `session.cookie_value()`).
    pub session: Ticket,
    /// The pending login's ticket (its cookie: `login.cookie_value()`).
    pub login: Ticket,
    pub state: String,
    pub nonce: String,
    /// The session's CSRF token, which its forms carry.
    pub csrf: String,
}

impl Seeded {
    pub fn session_cookie(&self) -> String {
        self.session.cookie_value()
    }

    pub fn login_cookie(&self) -> String {
        self.login.cookie_value()
    }
}

pub fn seeded_store(rng: &CountingRandom) -> Seeded {
    let kv = MemoryStore::new();
    let sessions = sessions(&kv, rng);
    let identity = Identity {
        iss: ISSUER.into(),
        sub: "alice".into(),
        sid: Some("idp-session-1".into()),
        username: "alice".into(),
        claims: PrettyJson::new(&good_claims().as_object().cloned().unwrap_or_default()),
        userinfo: None,
    };
    let tokens = Tokens {
        id_token: IdToken::new(ID_TOKEN),
        access_token: AccessToken::new(ACCESS_TOKEN),
        refresh_token: Some(RefreshToken::new(REFRESH_TOKEN)),
        token_type: "Bearer".into(),
        access_token_expires_at: Some(NOW + 300),
        access_token_jwt: None,
        id_token_expires_at: Some(NOW + 300),
        scope: Some("openid profile".into()),
        dpop: None,
    };
    let (session, record) = sessions
        .create(identity, tokens, Origin::default())
        .expect("the memory store is up");
    // As the callback does: a back-channel logout finds the session through these.
    session_index::add(&kv, &record.identity.index_keys(), session.id())
        .expect("the memory store is up");
    let (login, txn) = transaction::new(rng, clock(), "openid profile".into(), false);
    transaction::save(&kv, clock(), rng, &login, &txn).expect("the memory store is up");
    Seeded {
        kv,
        session,
        login,
        state: txn.state.expose().to_owned(),
        nonce: txn.nonce.expose().to_owned(),
        csrf: record.csrf.expose().to_owned(),
    }
}

/// The seeded world as [`seeded_store`] leaves it with fresh randomness: its
/// records, where the randomness has counted to, and the seeded values. Made
/// once: sealing records costs more than many a request, and every run starts
/// from exactly this state anyway.
struct Template {
    records: Vec<(String, Vec<u8>)>,
    counted: u64,
    session: Ticket,
    login: Ticket,
    state: String,
    nonce: String,
    csrf: String,
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let rng = CountingRandom::default();
        let seeded = seeded_store(&rng);
        Template {
            records: seeded.kv.snapshot().into_iter().collect(),
            counted: rng.0.get(),
            session: seeded.session,
            login: seeded.login,
            state: seeded.state,
            nonce: seeded.nonce,
            csrf: seeded.csrf,
        }
    })
}

/// A freshly seeded world: the same store and randomness as
/// `seeded_store(&CountingRandom::default())` makes, copied from [`template`].
fn fresh_world() -> (Seeded, CountingRandom) {
    let t = template();
    let kv = MemoryStore::new();
    for (key, value) in &t.records {
        kv.set(key, value).expect("the memory store is up");
    }
    let seeded = Seeded {
        kv,
        session: t.session.clone(),
        login: t.login.clone(),
        state: t.state.clone(),
        nonce: t.nonce.clone(),
        csrf: t.csrf.clone(),
    };
    (seeded, CountingRandom(Cell::new(t.counted)))
}

/// Runs `f` with a platform over a freshly seeded store.
pub fn with_platform<T>(f: impl FnOnce(&Platform, &Seeded) -> T) -> T {
    with_idp_answering(None, f)
}

/// Like [`with_platform`], with the IdP answering `fuzzed.1` at path `fuzzed.0`.
pub fn with_idp_answering<T>(
    fuzzed: Option<(&'static str, Vec<u8>)>,
    f: impl FnOnce(&Platform, &Seeded) -> T,
) -> T {
    let (seeded, rng) = fresh_world();
    let vars = vars();
    let idp = Idp {
        nonce: seeded.nonce.clone(),
        fuzzed,
    };
    let platform = Platform {
        vars: &vars,
        kv: &seeded.kv as &dyn KeyValue,
        http: &idp,
        clock: clock(),
        rng: &rng,
    };
    f(&platform, &seeded)
}

/// Every token of the world in clear: the seeded session's and those the IdP
/// issues. They may be shown to their owner, never stored in clear.
pub fn tokens_in_clear(seeded: &Seeded) -> Vec<String> {
    vec![
        ACCESS_TOKEN.to_owned(),
        REFRESH_TOKEN.to_owned(),
        ID_TOKEN.to_owned(),
        NEW_ACCESS_TOKEN.to_owned(),
        NEW_REFRESH_TOKEN.to_owned(),
        issued_id_token(seeded),
    ]
}

/// The ID token the world's IdP issues for the seeded login.
pub fn issued_id_token(seeded: &Seeded) -> String {
    Idp {
        nonce: seeded.nonce.clone(),
        fuzzed: None,
    }
    .id_token()
}
