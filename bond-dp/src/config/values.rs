//! Enumerated option values, with the kernel's names and numbers.

named_enum!(
    /// Which ARP probes and replies count as proof of life (`arp_validate`).
    ArpValidate {
        None = "none", 0;
        Active = "active", 1;
        Backup = "backup", 2;
        All = "all", 3;
        Filter = "filter", 4;
        FilterActive = "filter_active", 5;
        FilterBackup = "filter_backup", 6;
    }
);

named_enum!(
    /// Whether any or all ARP targets must answer (`arp_all_targets`).
    ArpAllTargets {
        Any = "any", 0;
        All = "all", 1;
    }
);

named_enum!(
    /// How MAC addresses follow the active member (`fail_over_mac`).
    FailOverMac {
        None = "none", 0;
        Active = "active", 1;
        Follow = "follow", 2;
    }
);

named_enum!(
    /// The LACPDU rate asked of the partner (`lacp_rate`).
    LacpRate {
        Slow = "slow", 0;
        Fast = "fast", 1;
    }
);

named_enum!(
    /// Aggregator selection (`ad_select`).
    AdSelect {
        Stable = "stable", 0;
        Bandwidth = "bandwidth", 1;
        Count = "count", 2;
    }
);
