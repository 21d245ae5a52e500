//! Every key the component writes to the store, in one place. The README's
//! store table lists the same families (`KEY_FAMILIES`; a test keeps them equal).
//!
//! Ids in key names are ticket ids ([`RecordId`]) or hashes, never a cookie
//! value, so a listing of the store names records without opening any.

use crate::ticket::RecordId;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Each family as the README's table spells it, with what it holds (checked
/// against the README by a test; nothing else reads it).
#[cfg(test)]
pub const KEY_FAMILIES: &[(&str, &str)] = &[
    ("sess:<id>", "a session"),
    ("ended:<id>", "a logged-out session's tombstone"),
    (
        "lock:<id>:<window>",
        "a session's write lock, one key per time window",
    ),
    (
        "lock:jwks-refetch:<window>",
        "the slot of a forced refetch of the IdP's keys (`jwks-refetch-bcl` for back-channel logout)",
    ),
    ("login:<id>", "a login in progress"),
    (
        "login-used:<id>",
        "the counter that lets a login finish once",
    ),
    ("cache:discovery", "the IdP's metadata"),
    ("cache:jwks", "the IdP's signing keys"),
    ("bcl:sid:<hash>", "the sessions of one IdP session"),
    ("bcl:sub:<hash>", "the sessions of one user"),
    (
        "bcl:jti:<hash>",
        "the counter that lets a logout token work once",
    ),
    ("gc:cursor", "the next expiry bucket upkeep looks at"),
    ("gc:<bucket>:n", "how many entries an expiry bucket has"),
    ("gc:<bucket>:claim", "how many of them upkeep has taken"),
    (
        "gc:<bucket>:<n>",
        "the keys of one entry, due in that bucket",
    ),
];

/// Sessions: `sess:<id>`.
pub const SESSION_PREFIX: &str = "sess:";
/// Logins in progress: `login:<id>`.
pub const LOGIN_PREFIX: &str = "login:";
/// The back-channel index and logout-token counters: `bcl:<kind>:<hash>`.
pub const INDEX_PREFIX: &str = "bcl:";
/// The IdP's metadata.
pub const DISCOVERY: &str = "cache:discovery";
/// The IdP's signing keys.
pub const JWKS: &str = "cache:jwks";
/// The next expiry bucket upkeep looks at.
pub const GC_CURSOR: &str = "gc:cursor";

/// A session's record.
pub fn session(id: &RecordId) -> String {
    format!("{SESSION_PREFIX}{}", id.as_str())
}

/// A logged-out session's tombstone.
pub fn ended(id: &RecordId) -> String {
    format!("ended:{}", id.as_str())
}

/// What a lock guards: a session's record, or a rate-limited call to the IdP.
pub enum LockSubject<'a> {
    /// The writes to one session's record.
    Session(&'a RecordId),
    /// A refetch of the JWKS forced by an unknown key (`backchannel`: forced by
    /// a logout token, with its own budget).
    JwksRefetch {
        /// Whether the back-channel logout endpoint forced it.
        backchannel: bool,
    },
}

/// One time window of a lock.
pub fn lock(subject: &LockSubject, window: i64) -> String {
    match subject {
        LockSubject::Session(id) => format!("lock:{}:{window}", id.as_str()),
        LockSubject::JwksRefetch { backchannel: false } => format!("lock:jwks-refetch:{window}"),
        LockSubject::JwksRefetch { backchannel: true } => {
            format!("lock:jwks-refetch-bcl:{window}")
        }
    }
}

/// A login in progress.
pub fn login(id: &RecordId) -> String {
    format!("{LOGIN_PREFIX}{}", id.as_str())
}

/// The counter that lets a login finish once.
pub fn login_used(id: &RecordId) -> String {
    format!("login-used:{}", id.as_str())
}

/// What a back-channel index or `jti` key is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// The sessions of one IdP session.
    Sid,
    /// The sessions of one user.
    Sub,
    /// A logout token's one use.
    Jti,
}

/// `bcl:<kind>:<hash of issuer and value>`: arbitrary IdP strings never become
/// raw key names.
pub fn index(kind: IndexKind, iss: &str, value: &str) -> String {
    let kind = match kind {
        IndexKind::Sid => "sid",
        IndexKind::Sub => "sub",
        IndexKind::Jti => "jti",
    };
    let digest = Sha256::digest(format!("{iss}\n{value}").as_bytes());
    format!(
        "{INDEX_PREFIX}{kind}:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18])
    )
}

/// Whether `key` lists sessions (by `sid` or `sub`).
pub fn is_index_of_sessions(key: &str) -> bool {
    key.starts_with("bcl:sid:") || key.starts_with("bcl:sub:")
}

/// How many entries an expiry bucket has.
pub fn gc_count(bucket: i64) -> String {
    format!("gc:{bucket}:n")
}

/// How many of a bucket's entries upkeep has taken.
pub fn gc_claim(bucket: i64) -> String {
    format!("gc:{bucket}:claim")
}

/// The keys of entry `n`, due in `bucket`.
pub fn gc_entry(bucket: i64, n: i64) -> String {
    format!("gc:{bucket}:{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_do_not_leak_raw_values() {
        let k = index(IndexKind::Sub, "https://idp.example", "alice@example.com");
        assert!(k.starts_with("bcl:sub:") && !k.contains("alice"));
        assert_ne!(
            k,
            index(IndexKind::Sub, "https://other.example", "alice@example.com")
        );
    }

    #[test]
    fn the_readme_store_table_lists_exactly_these_families() {
        let readme = include_str!("../README.md");
        let mut in_table = Vec::new();
        for line in readme.lines() {
            if let Some(rest) = line.strip_prefix("| `")
                && let Some((key, _)) = rest.split_once('`')
                && (key.contains(':') && !key.contains(' '))
            {
                in_table.push(key.to_owned());
            }
        }
        let ours: Vec<&str> = KEY_FAMILIES.iter().map(|(k, _)| *k).collect();
        assert_eq!(in_table, ours, "README's store table against keys.rs");
    }
}
