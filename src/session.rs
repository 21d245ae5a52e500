//! Server-side sessions in the key-value store.
//!
//! Key `sess:<id>`, where `<id>` is the opaque cookie value (256 bits from the
//! CSPRNG), so `redis-cli keys '*'` shows one key per logged-in browser. The
//! value is readable JSON. Spin key-value has no TTL: expiry is enforced on read
//! and an expired record is deleted when found.
//!
//! The idle lifetime slides with activity, but a visit records it only when
//! `last_seen` is more than a tenth of the idle lifetime old ([`Sessions::touch`]):
//! a write per request would cost far more than the page (Spin's default SQLite
//! store manages a few hundred writes per second). So `GET /user` is one store
//! read, plus one write per session per tenth of the idle timeout.

use crate::seams::{Clock, Random, random_token};
use crate::secret::Secret;
use crate::store::{KeyValue, Record, StoreError, get_json, set_json};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub const KEY_PREFIX: &str = "sess:";

/// A visit records activity once `last_seen` is older than the idle lifetime
/// divided by this: a session then lives at least 90% of the idle timeout past
/// its last visit, for one write per session per tenth of it.
const TOUCH_DIVISOR: i64 = 10;

/// The opaque session id; `Debug` hides it because it is a bearer credential.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    /// Accepts only well-formed ids, so garbage never reaches the store.
    pub fn parse(raw: &str) -> Option<Self> {
        crate::cookies::is_opaque_id(raw).then(|| Self(raw.to_owned()))
    }

    fn generate(rng: &dyn Random) -> Self {
        Self(random_token(rng, 32))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        format!("{KEY_PREFIX}{}", self.0)
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

/// The tokens a login or refresh produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    pub id_token: Secret,
    pub access_token: Secret,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    pub token_type: String,
    /// When the access token expires, if the IdP said.
    #[serde(default)]
    pub access_token_expires_at: Option<i64>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// A JSON object kept as the pretty-printed text `/user` shows, so the hot
/// path neither builds a tree from it nor serializes it again: the record stays
/// plain JSON, and reading it only checks this part's syntax.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrettyJson(Box<RawValue>);

impl PrettyJson {
    pub fn new(object: &Map<String, Value>) -> Self {
        let text = serde_json::to_string_pretty(object).unwrap_or_else(|_| "{}".into());
        Self(RawValue::from_string(text).unwrap_or_else(|_| empty_object()))
    }

    /// The JSON text, as stored.
    pub fn text(&self) -> &str {
        self.0.get()
    }
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".into()).expect("{} is JSON")
}

impl PartialEq for PrettyJson {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl std::fmt::Debug for PrettyJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

/// Who logged in, from the validated ID token (and userinfo).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub iss: String,
    pub sub: String,
    /// The IdP's session id (`sid`), for back-channel logout.
    #[serde(default)]
    pub sid: Option<String>,
    pub username: String,
    /// The ID token's claims.
    pub claims: PrettyJson,
    #[serde(default)]
    pub userinfo: Option<PrettyJson>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub identity: Identity,
    pub tokens: Tokens,
    /// Per-session token required by state-changing forms (CSRF defence).
    pub csrf: Secret,
    pub created_at: i64,
    /// Last recorded activity (login, refresh, or a visit when due): the idle
    /// lifetime counts from here.
    pub last_seen: i64,
    /// When the session ends at the latest (idle and absolute limits combined).
    pub expires_at: i64,
}

/// Idle and absolute lifetimes, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: i64,
    pub absolute: i64,
}

pub struct Sessions<'a> {
    pub kv: &'a dyn KeyValue,
    pub clock: &'a dyn Clock,
    pub lifetimes: Lifetimes,
}

impl Sessions<'_> {
    /// Stores a new session under a fresh id, never one that existed before.
    pub fn create(
        &self,
        rng: &dyn Random,
        identity: Identity,
        tokens: Tokens,
    ) -> Result<(SessionId, Session), StoreError> {
        let now = self.clock.now();
        let id = loop {
            let id = SessionId::generate(rng);
            if !self.kv.exists(&id.key())? {
                break id;
            }
        };
        let session = Session {
            identity,
            tokens,
            csrf: Secret::new(random_token(rng, 32)),
            created_at: now,
            last_seen: now,
            expires_at: self.expiry(now, now),
        };
        set_json(self.kv, &id.key(), &session)?;
        Ok((id, session))
    }

    /// One store read. Expired or unreadable records are deleted and reported absent.
    pub fn load(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        match get_json::<Session>(self.kv, &id.key())? {
            Record::Missing => Ok(None),
            Record::Corrupt => {
                eprintln!("session: unreadable session record deleted");
                self.kv.delete(&id.key())?;
                Ok(None)
            }
            Record::Found(s) if s.expires_at <= self.clock.now() => {
                self.kv.delete(&id.key())?;
                Ok(None)
            }
            Record::Found(s) => Ok(Some(s)),
        }
    }

    /// Records a visit to a live session, when due: moves `last_seen` to now and
    /// extends the idle lifetime (never past the absolute one). Otherwise, and
    /// when the session is already at its absolute limit, it writes nothing.
    pub fn touch(&self, id: &SessionId, session: &mut Session) -> Result<(), StoreError> {
        let now = self.clock.now();
        let due = now - session.last_seen >= (self.lifetimes.idle / TOUCH_DIVISOR).max(1);
        let expires_at = self.expiry(session.created_at, now);
        if !due || expires_at <= session.expires_at {
            return Ok(());
        }
        let before = (session.last_seen, session.expires_at);
        (session.last_seen, session.expires_at) = (now, expires_at);
        set_json(self.kv, &id.key(), session).inspect_err(|_| {
            (session.last_seen, session.expires_at) = before;
        })
    }

    /// The end of a session created at `created_at` and last active `now`: the
    /// idle or the absolute limit, whichever comes first.
    fn expiry(&self, created_at: i64, now: i64) -> i64 {
        (now + self.lifetimes.idle).min(created_at + self.lifetimes.absolute)
    }

    /// Replaces the tokens after a refresh and extends the idle lifetime,
    /// never past the absolute one.
    pub fn update_tokens(
        &self,
        id: &SessionId,
        mut session: Session,
        identity: Identity,
        tokens: Tokens,
    ) -> Result<Session, StoreError> {
        let now = self.clock.now();
        session.identity = identity;
        session.tokens = tokens;
        session.last_seen = now;
        session.expires_at = self.expiry(session.created_at, now);
        set_json(self.kv, &id.key(), &session)?;
        Ok(session)
    }

    pub fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.kv.delete(&id.key())
    }

    /// How long the cookie should live: until the absolute limit.
    pub fn cookie_max_age(&self, session: &Session) -> i64 {
        (session.created_at + self.lifetimes.absolute - self.clock.now()).max(0)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::seams::fakes::{CountingRandom, FixedClock};
    use crate::store::MemoryStore;

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
            id_token: Secret::new("id.token.sig"),
            access_token: Secret::new(access),
            refresh_token: Some(Secret::new("refresh-1")),
            token_type: "Bearer".into(),
            access_token_expires_at: None,
            scope: Some("openid".into()),
        }
    }

    pub fn session_with_claims(claims: serde_json::Value) -> Session {
        let mut identity = identity();
        identity.claims = PrettyJson::new(claims.as_object().unwrap());
        Session {
            identity,
            tokens: tokens("at"),
            csrf: Secret::new("csrf-token"),
            created_at: 0,
            last_seen: 0,
            expires_at: 100,
        }
    }

    const LIFE: Lifetimes = Lifetimes {
        idle: 100,
        absolute: 250,
    };

    /// A new session for alice in `s`.
    fn created(s: &Sessions) -> (SessionId, Session) {
        s.create(&CountingRandom::default(), identity(), tokens("a"))
            .unwrap()
    }

    /// Sessions over `kv` at `clock`, idle lifetime 100 s, absolute 250 s.
    fn sessions<'a>(kv: &'a MemoryStore, clock: &'a FixedClock) -> Sessions<'a> {
        Sessions {
            kv,
            clock,
            lifetimes: LIFE,
        }
    }

    #[test]
    fn create_then_load_reads_once_and_never_writes() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let rng = CountingRandom::default();
        let s = sessions(&kv, &clock);
        let (id, created) = s.create(&rng, identity(), tokens("at-1")).unwrap();
        assert_eq!(created.expires_at, 1100);
        let (reads, writes) = (kv.reads.get(), kv.writes.get());
        let loaded = s.load(&id).unwrap().unwrap();
        assert_eq!(loaded, created);
        assert_eq!(kv.reads.get(), reads + 1);
        assert_eq!(kv.writes.get(), writes);
        assert_eq!(kv.keys_with_prefix("sess:"), vec![id.key()]);
    }

    #[test]
    fn stored_json_is_readable() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let s = sessions(&kv, &clock);
        let (id, _) = s
            .create(&CountingRandom::default(), identity(), tokens("at-1"))
            .unwrap();
        let raw: serde_json::Value =
            serde_json::from_slice(&kv.get(&id.key()).unwrap().unwrap()).unwrap();
        assert_eq!(raw["tokens"]["access_token"], "at-1");
        assert_eq!(raw["identity"]["sub"], "alice");
        assert_eq!(raw["created_at"], 1000);
    }

    #[test]
    fn claims_are_stored_as_the_pretty_text_shown_and_stay_json() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let s = sessions(&kv, &clock);
        let mut who = identity();
        who.claims = PrettyJson::new(
            serde_json::json!({"sub": "alice", "name": "A \"q\" <b>"})
                .as_object()
                .unwrap(),
        );
        let (id, _) = s
            .create(&CountingRandom::default(), who, tokens("a"))
            .unwrap();
        let loaded = s.load(&id).unwrap().unwrap();
        assert_eq!(
            loaded.identity.claims.text(),
            "{\n  \"name\": \"A \\\"q\\\" <b>\",\n  \"sub\": \"alice\"\n}"
        );
        let raw: serde_json::Value =
            serde_json::from_slice(&kv.get(&id.key()).unwrap().unwrap()).unwrap();
        assert_eq!(
            raw["identity"]["claims"]["sub"], "alice",
            "still plain JSON"
        );
    }

    #[test]
    fn records_with_compact_claims_still_load() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let s = sessions(&kv, &clock);
        let (id, _) = created(&s);
        let mut raw: serde_json::Value =
            serde_json::from_slice(&kv.get(&id.key()).unwrap().unwrap()).unwrap();
        raw["identity"]["claims"] = serde_json::json!({"sub": "alice"});
        raw["identity"]["userinfo"] = serde_json::json!({"email": "a@example.test"});
        kv.set(&id.key(), raw.to_string().as_bytes()).unwrap();
        let loaded = s.load(&id).unwrap().unwrap();
        assert_eq!(loaded.identity.claims.text(), r#"{"sub":"alice"}"#);
        assert_eq!(
            loaded.identity.userinfo.unwrap().text(),
            r#"{"email":"a@example.test"}"#
        );
    }

    #[test]
    fn ids_are_fresh_and_well_formed() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let rng = CountingRandom::default();
        let s = sessions(&kv, &clock);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let (id, _) = s.create(&rng, identity(), tokens("a")).unwrap();
            assert!(SessionId::parse(id.as_str()).is_some());
            assert!(seen.insert(id.as_str().to_owned()));
        }
    }

    #[test]
    fn idle_expiry_deletes_on_read() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let s = sessions(&kv, &clock);
        let (id, _) = created(&s);
        clock.advance(99);
        assert!(s.load(&id).unwrap().is_some());
        clock.advance(1);
        assert!(s.load(&id).unwrap().is_none());
        assert!(kv.keys_with_prefix("sess:").is_empty());
    }

    #[test]
    fn refresh_extends_idle_but_not_absolute() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let s = sessions(&kv, &clock);
        let (id, sess) = created(&s);
        clock.advance(90);
        let sess = s.update_tokens(&id, sess, identity(), tokens("b")).unwrap();
        assert_eq!(sess.expires_at, 1190);
        clock.advance(90);
        let sess = s.update_tokens(&id, sess, identity(), tokens("c")).unwrap();
        assert_eq!(sess.expires_at, 1250, "capped by the absolute lifetime");
        clock.advance(70);
        assert!(s.load(&id).unwrap().is_none());
    }

    #[test]
    fn visits_extend_the_idle_lifetime_with_one_write_per_tenth_of_it() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let s = sessions(&kv, &clock);
        let (id, mut sess) = created(&s);
        let writes = kv.writes.get();
        // A visit every second for 9 s: not due yet, nothing written.
        for _ in 0..9 {
            clock.advance(1);
            sess = s.load(&id).unwrap().unwrap();
            s.touch(&id, &mut sess).unwrap();
        }
        assert_eq!(kv.writes.get(), writes);
        assert_eq!(sess.expires_at, 1100);
        // At a tenth of the idle lifetime (10 s) the visit is recorded, once.
        clock.advance(1);
        s.touch(&id, &mut sess).unwrap();
        assert_eq!((sess.last_seen, sess.expires_at), (1010, 1110));
        assert_eq!(kv.writes.get(), writes + 1);
        assert_eq!(s.load(&id).unwrap().unwrap(), sess, "what was written");
        s.touch(&id, &mut sess).unwrap();
        assert_eq!(kv.writes.get(), writes + 1);
        // So a session visited now and then outlives its first idle deadline.
        clock.advance(95);
        assert!(s.load(&id).unwrap().is_some());
    }

    #[test]
    fn visits_never_extend_past_the_absolute_lifetime() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let s = sessions(&kv, &clock);
        let (id, mut sess) = created(&s);
        while clock.now() < 1235 {
            clock.advance(9);
            sess = s.load(&id).unwrap().unwrap();
            s.touch(&id, &mut sess).unwrap();
        }
        assert_eq!(sess.expires_at, 1250, "capped by the absolute lifetime");
        let writes = kv.writes.get();
        clock.0.set(1245);
        s.touch(&id, &mut s.load(&id).unwrap().unwrap()).unwrap();
        assert_eq!(kv.writes.get(), writes, "nothing to extend: no write");
        clock.0.set(1250);
        assert!(s.load(&id).unwrap().is_none());
    }

    #[test]
    fn a_visit_that_cannot_be_recorded_changes_nothing() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let s = sessions(&kv, &clock);
        let (id, _) = created(&s);
        clock.advance(50);
        let mut sess = s.load(&id).unwrap().unwrap();
        let before = sess.clone();
        kv.down.set(true);
        assert!(s.touch(&id, &mut sess).is_err());
        assert_eq!(sess, before);
        kv.down.set(false);
        assert_eq!(s.load(&id).unwrap().unwrap(), before);
    }

    #[test]
    fn corrupt_record_is_absent_and_removed() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let s = sessions(&kv, &clock);
        let id = SessionId::parse(&"a".repeat(43)).unwrap();
        kv.set(&id.key(), b"{not json").unwrap();
        assert!(s.load(&id).unwrap().is_none());
        assert!(kv.get(&id.key()).unwrap().is_none());
    }

    #[test]
    fn store_failure_is_an_error_not_absence() {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let s = sessions(&kv, &clock);
        let id = SessionId::parse(&"a".repeat(43)).unwrap();
        kv.down.set(true);
        assert!(s.load(&id).is_err());
    }

    #[test]
    fn debug_hides_ids_and_tokens() {
        let id = SessionId::parse(&"a".repeat(43)).unwrap();
        assert!(!format!("{id:?}").contains("aaaa"));
        assert!(!format!("{:?}", tokens("topsecret")).contains("topsecret"));
    }
}
