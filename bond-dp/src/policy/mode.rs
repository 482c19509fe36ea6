//! The seven bonding modes, with the kernel's names, numbers and descriptions.

named_enum!(
    /// The seven bonding modes.
    Mode {
        BalanceRr = "balance-rr", 0;
        ActiveBackup = "active-backup", 1;
        BalanceXor = "balance-xor", 2;
        Broadcast = "broadcast", 3;
        Lacp = "802.3ad", 4;
        BalanceTlb = "balance-tlb", 5;
        BalanceAlb = "balance-alb", 6;
    }
);

impl Mode {
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
