//! What the guest holds for `wasi:keyvalue@0.2.0-draft2` resources. Kept
//! apart from their host functions (`wasi_keyvalue`) because the bindings
//! (`host`) name these types and the host functions implement the bindings'
//! traits: with both in one file the two would import each other.

use std::sync::Arc;

use super::KvBackend;

/// An open `bucket`: the store it was opened on.
pub struct KvBucket {
    pub(crate) backend: Arc<dyn KvBackend>,
}

/// The `cas` resource, which this host never creates.
pub enum KvCas {}
