//! Enumerated option values, with the kernel's names and numbers.

macro_rules! option_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal, $num:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
        pub enum $name {
            #[default]
            $($variant,)+
        }

        impl $name {
            pub const VALUES: &'static [(&'static str, u64)] = &[$(($text, $num)),+];

            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            pub fn number(self) -> u64 {
                match self { $($name::$variant => $num,)+ }
            }

            pub fn from_number(n: u64) -> Option<Self> {
                match n { $($num => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

option_enum!(
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

option_enum!(
    /// Whether any or all ARP targets must answer (`arp_all_targets`).
    ArpAllTargets {
        Any = "any", 0;
        All = "all", 1;
    }
);

option_enum!(
    /// How MAC addresses follow the active member (`fail_over_mac`).
    FailOverMac {
        None = "none", 0;
        Active = "active", 1;
        Follow = "follow", 2;
    }
);

option_enum!(
    /// The LACPDU rate asked of the partner (`lacp_rate`).
    LacpRate {
        Slow = "slow", 0;
        Fast = "fast", 1;
    }
);

option_enum!(
    /// Aggregator selection (`ad_select`).
    AdSelect {
        Stable = "stable", 0;
        Bandwidth = "bandwidth", 1;
        Count = "count", 2;
    }
);
