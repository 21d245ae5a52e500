//! A JSON object kept as the pretty-printed text `/user` shows, so the hot
//! path neither builds a tree from it nor serializes it again.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Pretty-printed JSON object text, stored as such.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrettyJson(Box<RawValue>);

impl PrettyJson {
    /// Pretty-prints `object` once.
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
