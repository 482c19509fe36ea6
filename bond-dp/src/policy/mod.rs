//! Transmit selection: which member a frame leaves on, for every mode and hash policy.
//!
//! Pure code: frames and a [`TxSnapshot`] of the members go in, a [`Decision`] comes out. No I/O,
//! no clock (time-driven work such as the tlb rebalance is called by whoever owns the clock).

mod active;
mod alb;
mod hash;
mod mode;
mod select;
mod snapshot;
mod tlb;

pub use active::{find_best_active, reselect_on_member_up, Candidate, LinkState, PrimaryReselect};
pub use alb::Rlb;
pub use hash::HashPolicy;
pub use mode::Mode;
pub use select::{Decision, Rewrite, TxSelector};
pub use snapshot::{MemberId, MemberTx, Tuning, TxSnapshot};
pub use tlb::{Tlb, TLB_BUCKETS, TLB_REBALANCE_INTERVAL};

/// Where member `member` is after member `left` left the bond: `None` for `left` itself,
/// one place up for those after it (the member order closes up, as the kernel's list does).
pub fn after_leaving(member: MemberId, left: MemberId) -> Option<MemberId> {
    match member.cmp(&left) {
        std::cmp::Ordering::Less => Some(member),
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => Some(member - 1),
    }
}

#[cfg(test)]
mod tests;
