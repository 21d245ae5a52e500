//! Randomness for tickets, state, nonces and PKCE verifiers.

/// A cryptographically secure random source.
pub trait Random {
    /// Fills `buf` with unpredictable bytes.
    fn fill(&self, buf: &mut [u8]);
}
