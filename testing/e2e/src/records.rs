//! The component's records in the store, as the tests look at them (README, "What is
//! in the store").
//!
//! The session and login cookies carry a *ticket*, `<id>.<secret>`: 22 and 43
//! characters of base64url (128 and 256 random bits). The store key is `sess:<id>`
//! (`login:<id>` for a login in progress, `ended:<id>` for a logged-out session's
//! tombstone), the id half only: [`ticket_parts`] is the one place that turns a cookie
//! value into its key, through [`session_key`], [`login_key`] and [`ended_key`]. A session record is a JSON envelope whose times, revision and
//! back-channel index keys are readable and whose identity, claims, tokens and CSRF
//! token are sealed with a key derived from the secret, which the store never sees.
//!
//! The checks here read Redis as an operator would (`KEYS *`, then `GET` each): the
//! test may list keys, the component never does.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use url::Url;

use crate::app_stack::{redact_key, snapshot};
use crate::browser::Browser;
use crate::redis::Redis;

/// Characters of a ticket's id (16 bytes, 128 bits, base64url without padding).
pub const ID_CHARS: usize = 22;
/// Characters of a ticket's secret (32 bytes, 256 bits).
pub const SECRET_CHARS: usize = 43;
/// The fields of a session record's readable line, all of them: anything else
/// would be in clear. The sealed part follows the line as raw bytes.
pub const SESSION_FIELDS: &[&str] = &[
    "check",
    "client_auth",
    "created_at",
    "created_by",
    "expires_at",
    "index",
    "last_seen",
    "pushed",
    "rev",
    "store",
    "v",
];

/// A session record split into its readable line (as JSON) and its sealed bytes.
pub fn split_session_record(raw: &[u8]) -> (Value, Vec<u8>) {
    let at = raw
        .iter()
        .position(|&b| b == b'\n')
        .expect("a session record is a readable line, then its sealed part");
    let line = serde_json::from_slice(&raw[..at])
        .unwrap_or_else(|e| panic!("a session record's first line is not JSON: {e}"));
    (line, raw[at + 1..].to_vec())
}

fn is_b64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The id and secret halves of a ticket cookie value. Panics (naming the lengths,
/// never the value) unless it is `<22 chars>.<43 chars>` of base64url.
#[track_caller]
pub fn ticket_parts(cookie: &str) -> (&str, &str) {
    let parts = cookie.split_once('.');
    let ok = parts.is_some_and(|(id, secret)| {
        id.len() == ID_CHARS && secret.len() == SECRET_CHARS && is_b64url(id) && is_b64url(secret)
    });
    assert!(
        ok,
        "a ticket cookie is <{ID_CHARS} chars>.<{SECRET_CHARS} chars> of base64url; this \
         value has {} characters, split {:?}",
        cookie.len(),
        parts.map(|(a, b)| (a.len(), b.len()))
    );
    parts.unwrap()
}

/// The store key of the session a session cookie value names: `sess:<id>`.
#[track_caller]
pub fn session_key(cookie: &str) -> String {
    format!("sess:{}", ticket_parts(cookie).0)
}

/// The store key of the login a login cookie value names: `login:<id>`.
#[track_caller]
pub fn login_key(cookie: &str) -> String {
    format!("login:{}", ticket_parts(cookie).0)
}

/// The tombstone a logged-out session leaves: `ended:<id>`.
#[track_caller]
pub fn ended_key(cookie: &str) -> String {
    format!("ended:{}", ticket_parts(cookie).0)
}

/// The readable line of `cookie`'s session record as JSON, if there is a record
/// (panics if the line is not JSON).
#[track_caller]
pub fn session_record(redis: &Redis, cookie: &str) -> Option<Value> {
    redis
        .get_bytes(&session_key(cookie))
        .map(|raw| split_session_record(&raw).0)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Panics unless no key and no value in `redis` contains any of `secrets` (named by
/// what they are). Messages name the key, shortened, never a value.
#[track_caller]
pub fn assert_store_reveals_none(redis: &Redis, secrets: &[(&str, &str)]) {
    let dump = snapshot(redis);
    assert!(!dump.is_empty(), "the store is empty: nothing to look at");
    for (what, secret) in secrets {
        assert!(secret.len() >= 5, "{what} is too short to search for");
        for (key, value) in &dump {
            assert!(
                !key.contains(secret),
                "the key {} contains the {what}",
                redact_key(key)
            );
            assert!(
                !String::from_utf8_lossy(value).contains(secret),
                "the value of {} contains the {what}",
                redact_key(key)
            );
        }
    }
}

/// Checks the session record of `cookie` in Redis and returns it: it exists under the
/// id half of the cookie; it is the documented envelope and nothing more (format 1,
/// readable `created_at <= last_seen < expires_at` around now, revision `rev`,
/// back-channel index keys that exist and list this session, a 256-bit verifier, a
/// sealed part); and nothing in the whole store shows the cookie, its secret half, or
/// any of `secrets` (the tokens and CSRF token the /user page shows, the user name).
#[track_caller]
pub fn assert_sealed_session(
    redis: &Redis,
    cookie: &str,
    rev: u64,
    secrets: &[(&str, &str)],
) -> Value {
    let (id, secret) = ticket_parts(cookie);
    let record = session_record(redis, cookie).expect("sess:<cookie's id> exists in Redis");
    let fields: Vec<&str> = record
        .as_object()
        .expect("the session record is a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut fields = fields;
    fields.sort_unstable();
    assert_eq!(
        fields, SESSION_FIELDS,
        "the session record has exactly the envelope's fields"
    );
    assert_eq!(record["v"], 1, "format 1");
    let time = |name: &str| {
        record[name]
            .as_i64()
            .unwrap_or_else(|| panic!("{name} is a readable number: {}", record[name]))
    };
    let (created, seen, expires) = (time("created_at"), time("last_seen"), time("expires_at"));
    let now = now();
    assert!(
        (now - 3600..=now + 60).contains(&created),
        "created_at {created} is about now ({now})"
    );
    assert!(
        created <= seen && seen <= now + 60,
        "created_at {created} <= last_seen {seen} <= now {now}"
    );
    assert!(expires > now, "expires_at {expires} is after now {now}");
    assert_eq!(record["rev"].as_u64(), Some(rev), "the revision");
    let index = record["index"].as_array().expect("index is a list");
    assert!(
        index
            .iter()
            .any(|k| k.as_str().is_some_and(|k| k.starts_with("bcl:sub:"))),
        "the session is indexed under its user: {index:?}"
    );
    for key in index {
        let key = key.as_str().expect("index keys are strings");
        assert!(
            key.starts_with("bcl:sub:") || key.starts_with("bcl:sid:"),
            "an index key: {}",
            redact_key(key)
        );
        let entry: Value = redis
            .get(key)
            .and_then(|raw| serde_json::from_str(&raw).ok())
            .unwrap_or_else(|| panic!("the index entry {} exists as JSON", redact_key(key)));
        assert!(
            entry["sessions"]
                .as_array()
                .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(id))),
            "the index entry {} lists the session's id",
            redact_key(key)
        );
    }
    let check = record["check"].as_str().expect("check is a string");
    assert!(
        check.len() == SECRET_CHARS && URL_SAFE_NO_PAD.decode(check).is_ok_and(|b| b.len() == 32),
        "check is a 256-bit verifier"
    );
    assert_ne!(check, secret, "the verifier is not the secret");
    let raw = redis.get_bytes(&session_key(cookie)).expect("the record");
    let (_, sealed) = split_session_record(&raw);
    assert!(
        sealed.len() > 24 + 16,
        "the sealed part holds a nonce, a ciphertext and its tag"
    );
    let mut hidden = vec![("session cookie", cookie), ("cookie's secret half", secret)];
    hidden.extend_from_slice(secrets);
    assert_store_reveals_none(redis, &hidden);
    record
}

/// `GET user_url` with `Cookie: <name>=<value>` from a browser without cookies.
fn get_with_cookie(user_url: &str, name: &str, value: &str) -> crate::browser::Response {
    let url = Url::parse(user_url).unwrap();
    Browser::new().request("GET", &url, &[("cookie", &format!("{name}={value}"))], None)
}

/// Nothing the store holds for the session of `cookie` works as a session cookie: the
/// id half alone, the key name, the id with the record's verifier (`check`) in the
/// secret's place, and the id with a made-up secret each get a redirect from
/// `user_url` to `home_url`; none of them changes or removes the record (a wrong
/// secret removes nothing); the real cookie still works afterwards.
#[track_caller]
pub fn assert_store_values_are_not_cookies(
    redis: &Redis,
    cookie_name: &str,
    cookie: &str,
    user_url: &str,
    home_url: &str,
) {
    let (id, secret) = ticket_parts(cookie);
    let key = session_key(cookie);
    let before = redis.get_bytes(&key).expect("the session is stored");
    let (record, _) = split_session_record(&before);
    let check = record["check"].as_str().expect("check is a string");
    let mut guessed: Vec<char> = secret.chars().collect();
    guessed[SECRET_CHARS / 2] = if guessed[SECRET_CHARS / 2] == 'A' {
        'B'
    } else {
        'A'
    };
    let guessed: String = guessed.into_iter().collect();
    for (what, value) in [
        ("the id alone", id.to_string()),
        ("the key name", key.clone()),
        (
            "the id with the verifier as secret",
            format!("{id}.{check}"),
        ),
        (
            "the id with a secret one character off",
            format!("{id}.{guessed}"),
        ),
    ] {
        let r = get_with_cookie(user_url, cookie_name, &value);
        assert!(
            r.status == 303 && r.location().is_some_and(|l| l.as_str() == home_url),
            "{what} as {cookie_name} gets no session: {}",
            r.describe()
        );
        assert!(
            redis.get_bytes(&key).as_deref() == Some(before.as_slice()),
            "{what} as a cookie leaves the record alone"
        );
    }
    get_with_cookie(user_url, cookie_name, cookie).assert_status(200);
}

/// Changes the last byte of `cookie`'s session record (inside the sealed part's
/// tag; done by a script in Redis, as the value is binary): the real cookie then
/// reads as logged out (a redirect from `user_url` to `home_url`) and the record
/// is removed. Checks first that the cookie works.
#[track_caller]
pub fn assert_tampered_session_is_dropped(
    redis: &Redis,
    cookie_name: &str,
    cookie: &str,
    user_url: &str,
    home_url: &str,
) {
    let key = session_key(cookie);
    get_with_cookie(user_url, cookie_name, cookie).assert_status(200);
    let before = redis.get_bytes(&key).expect("the session is stored");
    let flip_last_byte = "local v = redis.call('GET', KEYS[1]) \
        local n = #v \
        redis.call('SET', KEYS[1], string.sub(v, 1, n - 1) .. string.char((string.byte(v, n) + 1) % 256)) \
        return n";
    redis.command(&["EVAL", flip_last_byte, "1", &key]);
    let after = redis.get_bytes(&key).expect("still stored");
    assert_eq!(after.len(), before.len());
    assert_ne!(after, before, "one byte changed");
    let r = get_with_cookie(user_url, cookie_name, cookie);
    assert!(
        r.status == 303 && r.location().is_some_and(|l| l.as_str() == home_url),
        "a tampered record reads as logged out: {}",
        r.describe()
    );
    assert_eq!(redis.get(&key), None, "the tampered record is removed");
}
