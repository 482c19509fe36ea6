//! The seven bonding modes, with the kernel's names, numbers and descriptions.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    #[default]
    BalanceRr = 0,
    ActiveBackup = 1,
    BalanceXor = 2,
    Broadcast = 3,
    Lacp = 4,
    BalanceTlb = 5,
    BalanceAlb = 6,
}

impl Mode {
    pub const ALL: [Mode; 7] = [
        Mode::BalanceRr,
        Mode::ActiveBackup,
        Mode::BalanceXor,
        Mode::Broadcast,
        Mode::Lacp,
        Mode::BalanceTlb,
        Mode::BalanceAlb,
    ];

    /// The kernel's option value name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::BalanceRr => "balance-rr",
            Mode::ActiveBackup => "active-backup",
            Mode::BalanceXor => "balance-xor",
            Mode::Broadcast => "broadcast",
            Mode::Lacp => "802.3ad",
            Mode::BalanceTlb => "balance-tlb",
            Mode::BalanceAlb => "balance-alb",
        }
    }

    pub fn number(self) -> u8 {
        self as u8
    }

    pub fn from_number(n: u64) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| u64::from(m.number()) == n)
    }

    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The "Bonding Mode:" line of /proc/net/bonding.
    pub fn description(self) -> &'static str {
        match self {
            Mode::BalanceRr => "load balancing (round-robin)",
            Mode::ActiveBackup => "fault-tolerance (active-backup)",
            Mode::BalanceXor => "load balancing (xor)",
            Mode::Broadcast => "fault-tolerance (broadcast)",
            Mode::Lacp => "IEEE 802.3ad Dynamic link aggregation",
            Mode::BalanceTlb => "transmit load balancing",
            Mode::BalanceAlb => "adaptive load balancing",
        }
    }

    /// Modes with one active member chosen by primary / primary_reselect / prio.
    pub fn uses_primary(self) -> bool {
        matches!(
            self,
            Mode::ActiveBackup | Mode::BalanceTlb | Mode::BalanceAlb
        )
    }

    /// Modes that may use the ARP / NS monitor.
    pub fn allows_arp_monitor(self) -> bool {
        !matches!(self, Mode::Lacp | Mode::BalanceTlb | Mode::BalanceAlb)
    }

    /// Modes whose link monitoring the kernel forces on (miimon 100 when unset).
    pub fn requires_miimon(self) -> bool {
        !self.allows_arp_monitor()
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
