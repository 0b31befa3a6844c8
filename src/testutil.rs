//! Helpers for the unit tests of every module.

/// A deterministic stream of pseudo-random numbers (xorshift64) from
/// `seed` (not zero), for tests that try many generated inputs.
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
