//! Settings: Spin variables in production.

/// Where the settings come from (Spin variables in production, a map in tests).
pub trait Variables {
    /// `Ok(None)` when the variable is not set; `Err` when the platform failed.
    fn get(&self, name: &str) -> Result<Option<String>, String>;
}
