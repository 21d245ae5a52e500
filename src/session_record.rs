//! A session record as stored: a readable line (times, revision, index keys)
//! and the sealed part. Upkeep reads the readable line of records it cannot
//! open; `session` seals and opens them.

use crate::ports::StoreError;
use serde::{Deserialize, Serialize};

/// The stored format; records of another format read as "not logged in".
pub(crate) const FORMAT: u8 = 1;

/// The readable part of a record.
#[derive(Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) v: u8,
    pub(crate) created_at: i64,
    pub(crate) last_seen: i64,
    pub(crate) expires_at: i64,
    pub(crate) rev: u64,
    /// Back-channel index keys naming this session (hashes, as in the key names).
    #[serde(default)]
    pub(crate) index: Vec<String>,
    /// The replica that created the session (see `session::Origin`).
    #[serde(default)]
    pub(crate) created_by: String,
    /// The store's backend, as the creating callback saw it.
    #[serde(default)]
    pub(crate) store: crate::store_backend::StoreBackend,
    /// How the client authenticated at the login (see `session::Origin`).
    #[serde(default)]
    pub(crate) client_auth: String,
    /// Whether the login was pushed (PAR).
    #[serde(default)]
    pub(crate) pushed: bool,
    /// Recognises the ticket's secret without revealing it (see `ticket`).
    pub(crate) check: String,
}

/// The record as stored: one line of readable JSON (times and names), then the
/// sealed private part as raw bytes. Raw rather than base64 inside the JSON:
/// `/user` reads it on every request, and decoding and scanning a few KiB of
/// base64 cost as much as the rest of the page (bench/PROFILE.md).
pub(crate) struct Envelope {
    pub(crate) header: Header,
    pub(crate) sealed: Vec<u8>,
}

impl Envelope {
    pub(crate) fn parse(bytes: &[u8]) -> Option<Envelope> {
        let split = bytes.iter().position(|&b| b == b'\n')?;
        let header: Header = serde_json::from_slice(&bytes[..split]).ok()?;
        (header.v == FORMAT).then(|| Envelope {
            header,
            sealed: bytes[split + 1..].to_vec(),
        })
    }

    /// Just the readable part, for upkeep and for requests that never open it.
    pub(crate) fn header(bytes: &[u8]) -> Option<Header> {
        let split = bytes.iter().position(|&b| b == b'\n')?;
        serde_json::from_slice::<Header>(&bytes[..split])
            .ok()
            .filter(|h| h.v == FORMAT)
    }

    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        let mut out =
            serde_json::to_vec(&self.header).map_err(|e| StoreError(format!("encode: {e}")))?;
        out.push(b'\n');
        out.extend_from_slice(&self.sealed);
        Ok(out)
    }
}

/// The end of a session record as its readable part says, for upkeep.
pub(crate) fn stored_expiry(bytes: &[u8]) -> Option<i64> {
    Envelope::header(bytes).map(|h| h.expires_at)
}
