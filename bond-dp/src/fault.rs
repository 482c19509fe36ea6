//! Faults a test can inject into a debug build (`BOND_DP_FAULT=NAME`), so that the paths
//! that handle them are tested whatever the machine's speed. Release builds ignore it.

/// Whether fault `name` is asked for (debug builds only).
pub(crate) fn injected(name: &str) -> bool {
    cfg!(debug_assertions) && std::env::var("BOND_DP_FAULT").is_ok_and(|f| f == name)
}
