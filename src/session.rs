//! Server-side sessions in the key-value store.
//!
//! The browser's cookie holds a [`Ticket`]: the record lives under
//! `sess:<id>`, so `redis-cli keys 'sess:*'` shows one key per logged-in
//! browser, and its identity, tokens and CSRF token are sealed with the
//! ticket's secret, which the store never sees. The times, a revision number
//! and the back-channel index keys stay readable for operators and upkeep.
//! Spin key-value has no TTL: expiry is enforced on read, an expired record is
//! deleted when found, and `upkeep` removes those nobody reads again.
//!
//! The idle lifetime slides with activity, but a visit records it only when
//! `last_seen` is more than a tenth of the idle lifetime old ([`Sessions::touch`]):
//! a write per request would cost far more than the page. So `GET /user` is
//! one store read, plus a write per session per tenth of the idle timeout.
//!
//! Concurrency (see `lock` for the lock itself):
//! - Writers of an existing record (a refresh, a visit's `touch`) hold the
//!   session's lock and read the record again under it, so neither writes back
//!   what the other replaced: a visit never restores old tokens.
//! - Logout wins. Ending a session writes the tombstone `ended:<id>` and then
//!   deletes the record; a writer writes the record and then checks for the
//!   tombstone, deleting what it wrote if it finds one. Redis orders the four
//!   operations: if the writer's check comes after the tombstone, it deletes;
//!   if it comes before, the writer's write came before the tombstone too, and
//!   the logout's delete comes after both. Either way the record is gone.

use crate::log::log_line;
use crate::keys;
use crate::keys::LockSubject;
use crate::lock::{Held, Lock};
use crate::ports::{Clock, Random};
use crate::ports::{KeyValue, StoreError};
use crate::secret::random_token;
use crate::secret::{AccessToken, CsrfToken, IdToken, RefreshToken};
use crate::session_record::{Envelope, FORMAT, Header};
use crate::ticket::{RecordId, Ticket};
use crate::upkeep::Upkeep;
pub use crate::pretty_json::PrettyJson;
use crate::jwt_view::JwtView;
use crate::oidc::dpop::DpopBinding;
use crate::store_backend::StoreBackend;
use serde::{Deserialize, Serialize};

/// A visit records activity once `last_seen` is older than the idle lifetime
/// divided by this: a session then lives at least 90% of the idle timeout past
/// its last visit, for one write per session per tenth of it.
const TOUCH_DIVISOR: i64 = 10;

/// The tokens a login or refresh produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    /// The last ID token (sent as `id_token_hint` at logout).
    pub id_token: IdToken,
    /// The access token.
    pub access_token: AccessToken,
    /// The refresh token, if the IdP issued one.
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// `Bearer`, or `DPoP` when the tokens are bound to [`Tokens::dpop`].
    pub token_type: String,
    /// When the access token expires, if the IdP said.
    #[serde(default)]
    pub access_token_expires_at: Option<i64>,
    /// The access token's header and claims when it is a JWT, to show (never
    /// trusted: see `jwt_view`).
    #[serde(default)]
    pub access_token_jwt: Option<JwtView>,
    /// When the ID token expires (its `exp`).
    #[serde(default)]
    pub id_token_expires_at: Option<i64>,
    /// The scope granted.
    #[serde(default)]
    pub scope: Option<String>,
    /// With DPoP: the session's key, which every use of these tokens must
    /// prove (kept across refreshes; sealed like the tokens themselves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop: Option<DpopBinding>,
}

/// Who logged in, from the validated ID token (and userinfo).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The issuer.
    pub iss: String,
    /// The user, at the issuer.
    pub sub: String,
    /// The IdP's session id (`sid`), for back-channel logout.
    #[serde(default)]
    pub sid: Option<String>,
    /// The name pages greet the user by.
    pub username: String,
    /// The ID token's claims.
    pub claims: PrettyJson,
    /// The userinfo response, when the IdP has the endpoint.
    #[serde(default)]
    pub userinfo: Option<PrettyJson>,
}

impl Identity {
    /// The back-channel index keys this session is listed under.
    pub fn index_keys(&self) -> Vec<String> {
        let mut out = vec![keys::index(keys::IndexKind::Sub, &self.iss, &self.sub)];
        if let Some(sid) = &self.sid {
            out.push(keys::index(keys::IndexKind::Sid, &self.iss, sid));
        }
        out
    }
}

/// A live session, opened with its ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Who logged in.
    pub identity: Identity,
    /// Their tokens.
    pub tokens: Tokens,
    /// Per-session token required by state-changing forms (CSRF defence).
    pub csrf: CsrfToken,
    /// When the user logged in.
    pub created_at: i64,
    /// Last recorded activity (login, refresh, or a visit when due): the idle
    /// lifetime counts from here.
    pub last_seen: i64,
    /// When the session ends at the latest (idle and absolute limits combined).
    pub expires_at: i64,
    /// Bumped by every refresh: how a waiting request sees that one finished.
    pub rev: u64,
    /// Where the session began: shown on `/user` for the scaling exercise.
    pub origin: Origin,
}

/// Which replica created a session, and in which store: readable in the
/// record, since neither is a secret and both teach the exercise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    /// The `pod_name` of the replica that handled the login's callback.
    #[serde(default)]
    pub created_by: String,
    /// The backend that holds the session, as the callback saw it.
    #[serde(default)]
    pub store: StoreBackend,
    /// How the client proved itself at the token endpoint (a method name).
    #[serde(default)]
    pub client_auth: String,
    /// Whether the login's parameters were pushed to the IdP (RFC 9126).
    #[serde(default)]
    pub pushed: bool,
}

/// The sealed part of a record.
#[derive(Serialize, Deserialize)]
struct Private {
    identity: Identity,
    tokens: Tokens,
    csrf: CsrfToken,
}

/// What reading a record found. Matched as soon as it is made; boxing the
/// session would cost `/user` an allocation for nothing.
#[allow(clippy::large_enum_variant)]
enum Read {
    Missing,
    /// Not a record this ticket may read; left alone (a guessed or stale cookie).
    NotOurs,
    /// Expired, unreadable or tampered with: removed.
    Dropped,
    Found(Envelope, Session),
}

/// Idle and absolute lifetimes, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Seconds after the last recorded activity.
    pub idle: i64,
    /// Seconds after login.
    pub absolute: i64,
}

/// What a write under the lock found.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // matched at once, as `Read` is
pub enum Written {
    /// Written; the session as it now stands.
    Stored(Session),
    /// The session ended (logout, expiry) before or while writing: nothing kept.
    Ended,
}

/// The sessions in the store, and the rules they live by.
pub struct Sessions<'a> {
    /// Where they are stored.
    pub kv: &'a dyn KeyValue,
    /// Times logins, visits and expiry.
    pub clock: &'a dyn Clock,
    /// For tickets, CSRF tokens and sealing.
    pub rng: &'a dyn Random,
    /// How long a session lives.
    pub lifetimes: Lifetimes,
    /// Seconds a writer may hold the session's lock (see `lock`).
    pub lock_hold: i64,
}

impl Sessions<'_> {
    fn upkeep(&self) -> Upkeep<'_> {
        Upkeep {
            kv: self.kv,
            clock: self.clock,
        }
    }

    /// Stores a new session under a fresh ticket, never an id that existed before.
    /// Registered with upkeep first, so it cannot outlive its expiry unnoticed.
    pub fn create(
        &self,
        identity: Identity,
        tokens: Tokens,
        origin: Origin,
    ) -> Result<(Ticket, Session), StoreError> {
        let now = self.clock.now();
        let ticket = loop {
            let t = Ticket::generate(self.rng);
            if !self.kv.exists(&keys::session(t.id()))? {
                break t;
            }
        };
        let session = Session {
            identity,
            tokens,
            csrf: CsrfToken::new(random_token(self.rng, 32)),
            created_at: now,
            last_seen: now,
            expires_at: self.expiry(now, now),
            rev: 0,
            origin,
        };
        let key = keys::session(ticket.id());
        let index = session.identity.index_keys();
        let mut registered = vec![key.as_str()];
        registered.extend(index.iter().map(String::as_str));
        self.upkeep().register(session.expires_at, registered)?;
        self.kv.set(&key, &self.seal(&ticket, &session, index)?)?;
        Ok((ticket, session))
    }

    fn seal(
        &self,
        ticket: &Ticket,
        s: &Session,
        index: Vec<String>,
    ) -> Result<Vec<u8>, StoreError> {
        let key = keys::session(ticket.id());
        let private = serde_json::to_vec(&PrivateRef {
            identity: &s.identity,
            tokens: &s.tokens,
            csrf: &s.csrf,
        })
        .map_err(|e| StoreError(format!("encode: {e}")))?;
        Envelope {
            header: Header {
                v: FORMAT,
                created_at: s.created_at,
                last_seen: s.last_seen,
                expires_at: s.expires_at,
                rev: s.rev,
                index,
                created_by: s.origin.created_by.clone(),
                store: s.origin.store,
                client_auth: s.origin.client_auth.clone(),
                pushed: s.origin.pushed,
                check: ticket.verifier(),
            },
            sealed: ticket.seal_bytes(self.rng, &key, &private),
        }
        .to_bytes()
    }

    fn read(&self, ticket: &Ticket) -> Result<Read, StoreError> {
        let key = keys::session(ticket.id());
        let Some(bytes) = self.kv.get(&key)? else {
            return Ok(Read::Missing);
        };
        let envelope = match Envelope::parse(&bytes) {
            Some(e) => e,
            None => {
                log_line!("session: unreadable session record deleted");
                self.kv.delete(&key)?;
                return Ok(Read::Dropped);
            }
        };
        if !ticket.matches(&envelope.header.check) {
            return Ok(Read::NotOurs);
        }
        if envelope.header.expires_at <= self.clock.now() {
            self.kv.delete(&key)?;
            return Ok(Read::Dropped);
        }
        // UTF-8 checked once for the whole part: `from_slice` checks every
        // string again.
        let private = ticket
            .open_bytes(&key, &envelope.sealed)
            .ok()
            .and_then(|plain| String::from_utf8(plain).ok())
            .and_then(|text| serde_json::from_str::<Private>(&text).ok());
        let Some(p) = private else {
            log_line!("session: a record that does not open under its own ticket was deleted");
            self.kv.delete(&key)?;
            return Ok(Read::Dropped);
        };
        let session = Session {
            identity: p.identity,
            tokens: p.tokens,
            csrf: p.csrf,
            created_at: envelope.header.created_at,
            last_seen: envelope.header.last_seen,
            expires_at: envelope.header.expires_at,
            rev: envelope.header.rev,
            origin: Origin {
                created_by: envelope.header.created_by.clone(),
                store: envelope.header.store,
                client_auth: envelope.header.client_auth.clone(),
                pushed: envelope.header.pushed,
            },
        };
        Ok(Read::Found(envelope, session))
    }

    /// One store read. Expired, unreadable or tampered records are deleted;
    /// those and records the ticket cannot open read as absent.
    pub fn load(&self, ticket: &Ticket) -> Result<Option<Session>, StoreError> {
        Ok(match self.read(ticket)? {
            Read::Found(_, s) => Some(s),
            _ => None,
        })
    }

    /// The session's revision as stored, without opening it: what a request
    /// waiting for another's refresh polls. `None` once the record is gone.
    pub fn stored_rev(&self, id: &RecordId) -> Result<Option<u64>, StoreError> {
        Ok(self
            .kv
            .get(&keys::session(id))?
            .and_then(|b| Envelope::header(&b))
            .map(|h| h.rev))
    }

    /// Takes the session's write lock, if free (see `lock`).
    pub fn try_lock(&self, id: &RecordId) -> Result<Option<Held>, StoreError> {
        let upkeep = self.upkeep();
        Lock {
            kv: self.kv,
            clock: self.clock,
            upkeep: &upkeep,
            hold: self.lock_hold,
        }
        .try_acquire(&LockSubject::Session(id))
    }

    /// Records a visit to a live session, when due: moves `last_seen` to now and
    /// extends the idle lifetime (never past the absolute one). Otherwise, when
    /// the session is already at its absolute limit, or when another request
    /// holds its lock, it writes nothing: the next visit will.
    ///
    /// Under the lock the record is read again and only its times change, so
    /// a refresh that finished meanwhile keeps its tokens.
    pub fn touch(&self, ticket: &Ticket, session: &mut Session) -> Result<(), StoreError> {
        let now = self.clock.now();
        let due = now - session.last_seen >= (self.lifetimes.idle / TOUCH_DIVISOR).max(1);
        let expires_at = self.expiry(session.created_at, now);
        if !due || expires_at <= session.expires_at {
            return Ok(());
        }
        let Some(held) = self.try_lock(ticket.id())? else {
            return Ok(());
        };
        let result = self.touch_held(ticket, now, expires_at);
        held.release(self.kv);
        if let Some(fresh) = result? {
            *session = fresh;
        }
        Ok(())
    }

    fn touch_held(
        &self,
        ticket: &Ticket,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<Session>, StoreError> {
        let key = keys::session(ticket.id());
        let Read::Found(mut envelope, mut session) = self.read(ticket)? else {
            return Ok(None);
        };
        (envelope.header.last_seen, envelope.header.expires_at) = (now, expires_at);
        (session.last_seen, session.expires_at) = (now, expires_at);
        let bytes = envelope.to_bytes()?;
        self.kv.set(&key, &bytes)?;
        Ok(match self.unless_ended(ticket.id())? {
            true => Some(session),
            false => None,
        })
    }

    /// After a write: `true` if the session still stands, `false` if it was
    /// ended meanwhile and what was written has been removed again.
    fn unless_ended(&self, id: &RecordId) -> Result<bool, StoreError> {
        if self.kv.exists(&keys::ended(id))? {
            self.kv.delete(&keys::session(id))?;
            return Ok(false);
        }
        Ok(true)
    }

    /// The end of a session created at `created_at` and last active `now`: the
    /// idle or the absolute limit, whichever comes first.
    fn expiry(&self, created_at: i64, now: i64) -> i64 {
        (now + self.lifetimes.idle).min(created_at + self.lifetimes.absolute)
    }

    /// Reads the session again under its lock (`held`), for a refresh.
    pub fn reload(&self, ticket: &Ticket, _held: &Held) -> Result<Option<Session>, StoreError> {
        self.load(ticket)
    }

    /// Replaces the tokens after a refresh, under the session's lock, and
    /// extends the idle lifetime (never past the absolute one). `Ended` when
    /// the session was ended meanwhile: then nothing is left in the store.
    pub fn store_refreshed(
        &self,
        ticket: &Ticket,
        _held: &Held,
        mut session: Session,
        identity: Identity,
        tokens: Tokens,
    ) -> Result<Written, StoreError> {
        let now = self.clock.now();
        session.identity = identity;
        session.tokens = tokens;
        session.last_seen = now;
        session.expires_at = self.expiry(session.created_at, now);
        session.rev += 1;
        let index = session.identity.index_keys();
        let bytes = self.seal(ticket, &session, index)?;
        self.kv.set(&keys::session(ticket.id()), &bytes)?;
        Ok(match self.unless_ended(ticket.id())? {
            true => Written::Stored(session),
            false => Written::Ended,
        })
    }

    /// Ends a session for good: tombstone first, then the record (see the
    /// module's note on why a concurrent writer cannot bring it back). Both
    /// are registered with upkeep for when no write can matter any more.
    pub fn end(&self, id: &RecordId, created_at: i64) -> Result<(), StoreError> {
        let tomb = keys::ended(id);
        let key = keys::session(id);
        // A record written back by a writer that died before its check is
        // past its absolute end by then, and removed with the tombstone.
        let last = created_at.saturating_add(self.lifetimes.absolute);
        self.upkeep().register(
            last.max(self.clock.now() + self.lock_hold),
            [tomb.as_str(), key.as_str()],
        )?;
        self.kv.set(&tomb, b"1")?;
        self.kv.delete(&key)
    }

    /// Ends session `id` if its record lists every key of `index_keys` (a
    /// back-channel logout names sessions through the index, whose entries
    /// may be stale); `true` if it ended one.
    pub fn end_if_listed(&self, id: &RecordId, index_keys: &[String]) -> Result<bool, StoreError> {
        let Some(bytes) = self.kv.get(&keys::session(id))? else {
            return Ok(false);
        };
        match Envelope::header(&bytes) {
            Some(h) if index_keys.iter().all(|k| h.index.contains(k)) => {
                self.end(id, h.created_at)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// How long the cookie should live: until the absolute limit.
    pub fn cookie_max_age(&self, session: &Session) -> i64 {
        (session.created_at + self.lifetimes.absolute - self.clock.now()).max(0)
    }
}

/// [`Private`] by reference, so sealing does not clone the tokens.
#[derive(Serialize)]
struct PrivateRef<'s> {
    identity: &'s Identity,
    tokens: &'s Tokens,
    csrf: &'s CsrfToken,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::MemoryStore;
    use crate::testing::{CountingRandom, FixedClock};

    pub fn identity() -> Identity {
        Identity {
            iss: "https://idp.example".into(),
            sub: "alice".into(),
            sid: Some("sid-1".into()),
            username: "alice".into(),
            claims: PrettyJson::new(serde_json::json!({"sub": "alice"}).as_object().unwrap()),
            userinfo: None,
        }
    }

    pub fn tokens(access: &str) -> Tokens {
        Tokens {
            id_token: IdToken::new("id.token.sig"),
            access_token: AccessToken::new(access),
            refresh_token: Some(RefreshToken::new("refresh-1")),
            token_type: "Bearer".into(),
            access_token_expires_at: None,
            access_token_jwt: None,
            id_token_expires_at: None,
            scope: Some("openid".into()),
            dpop: None,
        }
    }

    pub fn session_with_claims(claims: serde_json::Value) -> Session {
        let mut identity = identity();
        identity.claims = PrettyJson::new(claims.as_object().unwrap());
        Session {
            identity,
            tokens: tokens("at"),
            csrf: CsrfToken::new("csrf-token"),
            created_at: 0,
            last_seen: 0,
            expires_at: 100,
            rev: 0,
            origin: Origin::default(),
        }
    }

    const LIFE: Lifetimes = Lifetimes {
        idle: 100,
        absolute: 250,
    };

    struct Fixture {
        kv: MemoryStore,
        clock: FixedClock,
        rng: CountingRandom,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                kv: MemoryStore::new(),
                clock: FixedClock::at(1_000_000),
                rng: CountingRandom::default(),
            }
        }

        /// Sessions over the fixture, idle lifetime 100 s, absolute 250 s.
        fn sessions(&self) -> Sessions<'_> {
            Sessions {
                kv: &self.kv,
                clock: &self.clock,
                rng: &self.rng,
                lifetimes: LIFE,
                lock_hold: 25,
            }
        }

        /// A new session for alice.
        fn created(&self) -> (Ticket, Session) {
            self.sessions().create(identity(), tokens("a"), Origin::default()).unwrap()
        }

        fn session_keys(&self) -> Vec<String> {
            self.kv.keys_with_prefix(keys::SESSION_PREFIX)
        }

        /// The record's readable line, as JSON.
        fn raw(&self, t: &Ticket) -> serde_json::Value {
            let bytes = self.kv.get(&keys::session(t.id())).unwrap().unwrap();
            let line = bytes.split(|&b| b == b'\n').next().unwrap();
            serde_json::from_slice(line).unwrap()
        }
    }

    /// The same id with another (valid-looking) secret.
    fn forged(t: &Ticket) -> Ticket {
        let other = Ticket::generate(&CountingRandom(std::cell::Cell::new(7777)));
        let secret = other.cookie_value().split_once('.').unwrap().1.to_owned();
        Ticket::parse(&format!("{}.{secret}", t.id().as_str())).unwrap()
    }

    const T0: i64 = 1_000_000;

    #[test]
    fn create_then_load_reads_once_and_never_writes() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, created) = s.create(identity(), tokens("at-1"), Origin::default()).unwrap();
        assert_eq!(created.expires_at, T0 + 100);
        let (reads, writes) = (f.kv.reads.get(), f.kv.writes.get());
        let loaded = s.load(&t).unwrap().unwrap();
        assert_eq!(loaded, created);
        assert_eq!(f.kv.reads.get(), reads + 1);
        assert_eq!(f.kv.writes.get(), writes);
        assert_eq!(f.session_keys(), vec![keys::session(t.id())]);
    }

    #[test]
    fn the_store_holds_times_in_clear_and_nothing_that_acts_as_the_user() {
        let f = Fixture::new();
        let (t, _) = f
            .sessions()
            .create(identity(), tokens("at-secret"), Origin::default())
            .unwrap();
        let raw = f.raw(&t);
        assert_eq!(raw["created_at"], T0);
        assert_eq!(raw["expires_at"], T0 + 100);
        let everything: String =
            f.kv.snapshot()
                .iter()
                .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
                .collect();
        let cookie = t.cookie_value();
        let secret = cookie.split_once('.').unwrap().1;
        for leak in [
            secret,
            cookie.as_str(),
            "at-secret",
            "refresh-1",
            "id.token.sig",
            "alice",
        ] {
            assert!(
                !everything.contains(leak),
                "{leak} is readable in the store"
            );
        }
    }

    #[test]
    fn a_key_name_or_another_secret_opens_nothing_and_removes_nothing() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, _) = f.created();
        assert!(
            Ticket::parse(t.id().as_str()).is_none(),
            "a key name is no cookie"
        );
        let before = f.kv.snapshot();
        assert_eq!(s.load(&forged(&t)).unwrap(), None);
        assert_eq!(f.kv.snapshot(), before);
        assert!(s.load(&t).unwrap().is_some());
    }

    #[test]
    fn a_tampered_record_reads_as_logged_out_and_is_removed() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, _) = f.created();
        let mut bytes = f.kv.get(&keys::session(t.id())).unwrap().unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        f.kv.set(&keys::session(t.id()), &bytes).unwrap();
        assert_eq!(s.load(&t).unwrap(), None);
        assert!(f.session_keys().is_empty());
    }

    #[test]
    fn a_record_moved_to_another_key_does_not_open() {
        let f = Fixture::new();
        let s = f.sessions();
        let (a, _) = f.created();
        let (b, _) = f.created();
        // Copy a's record over b's: right secret check for a, wrong key.
        let copied = f.kv.get(&keys::session(a.id())).unwrap().unwrap();
        f.kv.set(&keys::session(b.id()), &copied).unwrap();
        assert_eq!(s.load(&b).unwrap(), None);
        assert_eq!(s.load(&forged(&a)).unwrap(), None);
    }

    #[test]
    fn records_of_the_previous_format_read_as_logged_out() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, _) = f.created();
        f.kv.set(
            &keys::session(t.id()),
            br#"{"identity":{},"tokens":{},"expires_at":9999999999}"#,
        )
        .unwrap();
        assert_eq!(s.load(&t).unwrap(), None);
    }

    #[test]
    fn claims_are_stored_as_the_pretty_text_shown() {
        let f = Fixture::new();
        let s = f.sessions();
        let mut who = identity();
        who.claims = PrettyJson::new(
            serde_json::json!({"sub": "alice", "name": "A \"q\" <b>"})
                .as_object()
                .unwrap(),
        );
        let (t, _) = s.create(who, tokens("a"), Origin::default()).unwrap();
        let loaded = s.load(&t).unwrap().unwrap();
        assert_eq!(
            loaded.identity.claims.text(),
            "{\n  \"name\": \"A \\\"q\\\" <b>\",\n  \"sub\": \"alice\"\n}"
        );
    }

    #[test]
    fn tickets_are_fresh_and_well_formed() {
        let f = Fixture::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let (t, _) = f.created();
            assert!(Ticket::parse(&t.cookie_value()).is_some());
            assert!(seen.insert(t.id().clone()));
        }
    }

    #[test]
    fn idle_expiry_deletes_on_read() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, _) = f.created();
        f.clock.advance(99);
        assert!(s.load(&t).unwrap().is_some());
        f.clock.advance(1);
        assert!(s.load(&t).unwrap().is_none());
        assert!(f.session_keys().is_empty());
    }

    fn refreshed(s: &Sessions, t: &Ticket, access: &str) -> Session {
        let held = s.try_lock(t.id()).unwrap().unwrap();
        let current = s.reload(t, &held).unwrap().unwrap();
        let out = s
            .store_refreshed(t, &held, current, identity(), tokens(access))
            .unwrap();
        held.release(s.kv);
        match out {
            Written::Stored(s) => s,
            Written::Ended => panic!("ended"),
        }
    }

    #[test]
    fn refresh_extends_idle_but_not_absolute_and_bumps_the_revision() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, _) = f.created();
        f.clock.advance(90);
        let sess = refreshed(&s, &t, "b");
        assert_eq!((sess.expires_at, sess.rev), (T0 + 190, 1));
        assert_eq!(s.stored_rev(t.id()).unwrap(), Some(1));
        f.clock.advance(90);
        let sess = refreshed(&s, &t, "c");
        assert_eq!(sess.expires_at, T0 + 250, "capped by the absolute lifetime");
        assert_eq!(
            s.load(&t).unwrap().unwrap().tokens.access_token.expose(),
            "c"
        );
        f.clock.advance(70);
        assert!(s.load(&t).unwrap().is_none());
    }

    #[test]
    fn visits_extend_the_idle_lifetime_with_one_write_per_tenth_of_it() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, mut sess) = f.created();
        let writes = f.kv.writes.get();
        for _ in 0..9 {
            f.clock.advance(1);
            sess = s.load(&t).unwrap().unwrap();
            s.touch(&t, &mut sess).unwrap();
        }
        assert_eq!(f.kv.writes.get(), writes, "not due: nothing written");
        assert_eq!(sess.expires_at, T0 + 100);
        f.clock.advance(1);
        s.touch(&t, &mut sess).unwrap();
        assert_eq!((sess.last_seen, sess.expires_at), (T0 + 10, T0 + 110));
        assert_eq!(s.load(&t).unwrap().unwrap(), sess, "what was written");
        let writes = f.kv.writes.get();
        s.touch(&t, &mut sess).unwrap();
        assert_eq!(f.kv.writes.get(), writes);
        f.clock.advance(95);
        assert!(s.load(&t).unwrap().is_some());
    }

    #[test]
    fn a_visit_never_writes_back_tokens_a_refresh_replaced() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, _) = f.created();
        f.clock.advance(50);
        // The page read the session before the refresh finished...
        let mut seen_by_the_page = s.load(&t).unwrap().unwrap();
        refreshed(&s, &t, "new-access");
        // ...and records the visit after it.
        s.touch(&t, &mut seen_by_the_page).unwrap();
        let stored = s.load(&t).unwrap().unwrap();
        assert_eq!(stored.tokens.access_token.expose(), "new-access");
        assert_eq!(stored.last_seen, T0 + 50);
        assert_eq!(seen_by_the_page, stored, "the page shows the newest tokens");
    }

    #[test]
    fn a_visit_while_a_refresh_holds_the_lock_writes_nothing() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, _) = f.created();
        f.clock.advance(50);
        let held = s.try_lock(t.id()).unwrap().unwrap();
        let mut sess = s.load(&t).unwrap().unwrap();
        let before = f.raw(&t);
        s.touch(&t, &mut sess).unwrap();
        assert_eq!(f.raw(&t), before);
        held.release(&f.kv);
    }

    #[test]
    fn visits_never_extend_past_the_absolute_lifetime() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, mut sess) = f.created();
        while f.clock.now() < T0 + 235 {
            f.clock.advance(9);
            sess = s.load(&t).unwrap().unwrap();
            s.touch(&t, &mut sess).unwrap();
        }
        assert_eq!(sess.expires_at, T0 + 250, "capped by the absolute lifetime");
        let writes = f.kv.writes.get();
        f.clock.0.set(T0 + 245);
        s.touch(&t, &mut s.load(&t).unwrap().unwrap()).unwrap();
        assert_eq!(f.kv.writes.get(), writes, "nothing to extend: no write");
        f.clock.0.set(T0 + 250);
        assert!(s.load(&t).unwrap().is_none());
    }

    #[test]
    fn a_visit_that_cannot_be_recorded_changes_nothing() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, _) = f.created();
        f.clock.advance(50);
        let mut sess = s.load(&t).unwrap().unwrap();
        let before = sess.clone();
        f.kv.down.set(true);
        assert!(s.touch(&t, &mut sess).is_err());
        assert_eq!(sess, before);
        f.kv.down.set(false);
        assert_eq!(s.load(&t).unwrap().unwrap(), before);
    }

    #[test]
    fn logout_wins_over_a_refresh_already_under_way() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, created) = f.created();
        let held = s.try_lock(t.id()).unwrap().unwrap();
        let current = s.reload(&t, &held).unwrap().unwrap();
        // The user logs out while the refresh waits for the IdP.
        s.end(t.id(), created.created_at).unwrap();
        let out = s
            .store_refreshed(&t, &held, current, identity(), tokens("late"))
            .unwrap();
        held.release(&f.kv);
        assert_eq!(out, Written::Ended);
        assert!(f.session_keys().is_empty());
        assert_eq!(s.load(&t).unwrap(), None);
    }

    #[test]
    fn logout_wins_over_a_visit_already_under_way() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, created) = f.created();
        f.clock.advance(50);
        let mut sess = s.load(&t).unwrap().unwrap();
        s.end(t.id(), created.created_at).unwrap();
        // The record reappears just as the visit reads it again (a write racing
        // the logout's delete): the check after the write removes it.
        f.kv.set(
            &keys::session(t.id()),
            &f.sessions()
                .seal(&t, &sess, sess.identity.index_keys())
                .unwrap(),
        )
        .unwrap();
        s.touch(&t, &mut sess).unwrap();
        assert!(f.session_keys().is_empty());
    }

    #[test]
    fn a_listed_session_is_ended_only_by_the_keys_it_names() {
        let f = Fixture::new();
        let s = f.sessions();
        let (t, _) = f.created();
        let listed = identity().index_keys();
        let other = vec![keys::index(
            keys::IndexKind::Sid,
            "https://idp.example",
            "sid-2",
        )];
        assert!(!s.end_if_listed(t.id(), &other).unwrap());
        assert!(s.load(&t).unwrap().is_some());
        assert!(s.end_if_listed(t.id(), &listed).unwrap());
        assert!(s.load(&t).unwrap().is_none());
    }

    #[test]
    fn store_failure_is_an_error_not_absence() {
        let f = Fixture::new();
        let (t, _) = f.created();
        f.kv.down.set(true);
        assert!(f.sessions().load(&t).is_err());
    }

    #[test]
    fn debug_hides_tickets_and_tokens() {
        let f = Fixture::new();
        let (t, _) = f.created();
        assert!(!format!("{t:?}").contains(t.id().as_str()));
        assert!(!format!("{:?}", tokens("topsecret")).contains("topsecret"));
    }
}
