//! Bonding options with the kernel's names, defaults, ranges and combination rules
//! (`bond_options.c`, `bond_check_params()`), parsed from the option strings operators write:
//! `mode=802.3ad,miimon=100,lacp_rate=fast` (nmcli `bond.options`) or the same keys separated
//! by spaces (ifcfg `BONDING_OPTS`, modprobe). Modes and enumerated values by name or number.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::values::{AdSelect, ArpAllTargets, ArpValidate, FailOverMac, LacpRate};
use super::OptionError;
use crate::policy::{HashPolicy, Mode, PrimaryReselect};
use crate::wire::MacAddr;

const INT_MAX: u64 = i32::MAX as u64;
/// The kernel's limit on ARP and NS targets (BOND_MAX_ARP_TARGETS / BOND_MAX_NS_TARGETS).
pub const MAX_TARGETS: usize = 16;
/// The miimon the kernel forces on for 802.3ad, tlb and alb (BOND_DEFAULT_MIIMON).
pub const DEFAULT_MIIMON: u32 = 100;

/// Every option bond-dp takes, as operators write them.
#[derive(Clone, Debug, PartialEq)]
pub struct BondOptions {
    pub mode: Mode,
    pub miimon: u32,
    pub updelay: u32,
    pub downdelay: u32,
    pub use_carrier: bool,
    pub arp_interval: u32,
    pub arp_ip_target: Vec<Ipv4Addr>,
    pub arp_validate: ArpValidate,
    pub arp_all_targets: ArpAllTargets,
    pub arp_missed_max: u32,
    pub ns_ip6_target: Vec<Ipv6Addr>,
    pub primary: Option<String>,
    pub primary_reselect: PrimaryReselect,
    pub active_slave: Option<String>,
    pub fail_over_mac: FailOverMac,
    pub xmit_hash_policy: HashPolicy,
    pub packets_per_slave: u32,
    /// `num_grat_arp` and `num_unsol_na` are one setting in the kernel.
    pub num_peer_notif: u32,
    pub peer_notif_delay: u32,
    pub resend_igmp: u32,
    pub all_slaves_active: bool,
    pub min_links: u32,
    pub lacp_rate: LacpRate,
    pub lacp_active: bool,
    pub ad_select: AdSelect,
    pub ad_actor_sys_prio: u32,
    pub ad_actor_system: Option<MacAddr>,
    pub ad_user_port_key: u32,
    pub tlb_dynamic_lb: bool,
    pub lp_interval: u32,
    /// Per-member `prio` (`prio=IF:N`), for active-backup/tlb/alb reselection.
    pub prio: BTreeMap<String, i32>,
    /// Per-member `queue_id` (`queue_id=IF:N`).
    pub queue_id: BTreeMap<String, u16>,
    /// The options that were written (the rest hold their defaults).
    explicit: BTreeSet<&'static str>,
}

impl Default for BondOptions {
    fn default() -> Self {
        BondOptions {
            mode: Mode::BalanceRr,
            miimon: 0,
            updelay: 0,
            downdelay: 0,
            use_carrier: true,
            arp_interval: 0,
            arp_ip_target: Vec::new(),
            arp_validate: ArpValidate::None,
            arp_all_targets: ArpAllTargets::Any,
            arp_missed_max: 2,
            ns_ip6_target: Vec::new(),
            primary: None,
            primary_reselect: PrimaryReselect::Always,
            active_slave: None,
            fail_over_mac: FailOverMac::None,
            xmit_hash_policy: HashPolicy::Layer2,
            packets_per_slave: 1,
            num_peer_notif: 1,
            peer_notif_delay: 0,
            resend_igmp: 1,
            all_slaves_active: false,
            min_links: 0,
            lacp_rate: LacpRate::Slow,
            lacp_active: true,
            ad_select: AdSelect::Stable,
            ad_actor_sys_prio: 65535,
            ad_actor_system: None,
            ad_user_port_key: 0,
            tlb_dynamic_lb: true,
            lp_interval: 1,
            prio: BTreeMap::new(),
            queue_id: BTreeMap::new(),
            explicit: BTreeSet::new(),
        }
    }
}

/// Something accepted but worth telling the operator (logged at start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning(pub String);

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an option's value is read.
enum Kind {
    /// One of named values, or its number.
    Named(&'static [(&'static str, u64)]),
    /// A number in range, or one of the names the kernel gives special values.
    Range {
        min: u64,
        max: u64,
        names: &'static [(&'static str, u64)],
    },
    Interface,
    Ipv4Targets,
    Ipv6Targets,
    Mac,
    /// `IF:N`, a per-member value.
    PerMember {
        min: i64,
        max: i64,
    },
}

const OFF_MAX: &[(&str, u64)] = &[("off", 0), ("maxval", INT_MAX)];
const ON_OFF: &[(&str, u64)] = &[("off", 0), ("on", 1)];
const BYTE: &[(&str, u64)] = &[("off", 0), ("maxval", 255)];
const ALL_MODES: &[Mode] = &Mode::ALL;
const AB_TLB_ALB: &[Mode] = &[Mode::ActiveBackup, Mode::BalanceTlb, Mode::BalanceAlb];
const NO_8023AD_TLB_ALB: &[Mode] = &[
    Mode::BalanceRr,
    Mode::ActiveBackup,
    Mode::BalanceXor,
    Mode::Broadcast,
];
const ONLY_8023AD: &[Mode] = &[Mode::Lacp];

struct Spec {
    name: &'static str,
    kind: Kind,
    /// Modes the kernel accepts the option in (`unsuppmodes` inverted).
    modes: &'static [Mode],
}

const fn spec(name: &'static str, kind: Kind, modes: &'static [Mode]) -> Spec {
    Spec { name, kind, modes }
}

const fn range(min: u64, max: u64, names: &'static [(&'static str, u64)]) -> Kind {
    Kind::Range { min, max, names }
}

static SPECS: &[Spec] = &[
    spec("mode", Kind::Named(Mode::VALUES), ALL_MODES),
    spec("miimon", range(0, INT_MAX, OFF_MAX), ALL_MODES),
    spec("updelay", range(0, INT_MAX, OFF_MAX), ALL_MODES),
    spec("downdelay", range(0, INT_MAX, OFF_MAX), ALL_MODES),
    spec("use_carrier", Kind::Named(ON_OFF), ALL_MODES),
    spec(
        "arp_interval",
        range(0, INT_MAX, OFF_MAX),
        NO_8023AD_TLB_ALB,
    ),
    spec("arp_ip_target", Kind::Ipv4Targets, ALL_MODES),
    spec(
        "arp_validate",
        Kind::Named(ArpValidate::VALUES),
        NO_8023AD_TLB_ALB,
    ),
    spec(
        "arp_all_targets",
        Kind::Named(ArpAllTargets::VALUES),
        ALL_MODES,
    ),
    spec(
        "arp_missed_max",
        range(1, 255, &[("maxval", 255)]),
        NO_8023AD_TLB_ALB,
    ),
    spec("ns_ip6_target", Kind::Ipv6Targets, ALL_MODES),
    spec("primary", Kind::Interface, AB_TLB_ALB),
    spec(
        "primary_reselect",
        Kind::Named(PrimaryReselect::VALUES),
        ALL_MODES,
    ),
    spec("active_slave", Kind::Interface, AB_TLB_ALB),
    spec("fail_over_mac", Kind::Named(FailOverMac::VALUES), ALL_MODES),
    spec(
        "xmit_hash_policy",
        Kind::Named(HashPolicy::VALUES),
        ALL_MODES,
    ),
    spec(
        "packets_per_slave",
        range(0, 65535, &[("maxval", 65535)]),
        &[Mode::BalanceRr],
    ),
    spec("num_grat_arp", range(0, 255, BYTE), ALL_MODES),
    spec("num_unsol_na", range(0, 255, BYTE), ALL_MODES),
    spec("peer_notif_delay", range(0, INT_MAX, OFF_MAX), ALL_MODES),
    spec("resend_igmp", range(0, 255, BYTE), ALL_MODES),
    spec("all_slaves_active", Kind::Named(ON_OFF), ALL_MODES),
    spec("min_links", range(0, INT_MAX, OFF_MAX), ALL_MODES),
    spec("lacp_rate", Kind::Named(LacpRate::VALUES), ONLY_8023AD),
    spec("lacp_active", Kind::Named(ON_OFF), ONLY_8023AD),
    spec("ad_select", Kind::Named(AdSelect::VALUES), ALL_MODES),
    spec(
        "ad_actor_sys_prio",
        range(1, 65535, &[("maxval", 65535)]),
        ONLY_8023AD,
    ),
    spec("ad_actor_system", Kind::Mac, ONLY_8023AD),
    spec(
        "ad_user_port_key",
        range(0, 1023, &[("maxval", 1023)]),
        ONLY_8023AD,
    ),
    spec(
        "tlb_dynamic_lb",
        Kind::Named(ON_OFF),
        &[Mode::BalanceTlb, Mode::BalanceAlb],
    ),
    spec(
        "lp_interval",
        range(1, INT_MAX, &[("maxval", INT_MAX)]),
        ALL_MODES,
    ),
    spec(
        "prio",
        Kind::PerMember {
            min: i32::MIN as i64,
            max: i32::MAX as i64,
        },
        AB_TLB_ALB,
    ),
    spec(
        "queue_id",
        Kind::PerMember { min: 0, max: 65535 },
        ALL_MODES,
    ),
];

/// The names of every option bond-dp takes.
pub static OPTION_NAMES: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| SPECS.iter().map(|s| s.name).collect());

fn find_spec(name: &str) -> Result<&'static Spec, OptionError> {
    SPECS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| OptionError::Unknown {
            name: name.to_string(),
            suggestion: nearest_option(name),
        })
}

/// The known option closest to a misspelt one (`mimon`, `xmit-hash-policy`, `lacp-rate`).
fn nearest_option(name: &str) -> Option<&'static str> {
    let normal = name.to_ascii_lowercase().replace('-', "_");
    SPECS
        .iter()
        .map(|s| (strsim::levenshtein(&normal, s.name), s.name))
        .filter(|&(d, known)| d <= (known.len() / 3).max(2))
        .min()
        .map(|(_, known)| known)
}

fn mode_names(modes: &[Mode]) -> String {
    modes
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn named_list(values: &[(&str, u64)]) -> String {
    values
        .iter()
        .map(|(n, v)| format!("{n} ({v})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Splits an option string into `(key, value)` pairs. Pairs are separated by commas or white
/// space; a bare value after a target list continues that list
/// (`arp_ip_target=10.0.0.1,10.0.0.2`, as modprobe and ifcfg write it).
pub fn tokenize(text: &str) -> Result<Vec<(String, String)>, OptionError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for token in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|t| t.trim_matches(|c| c == '"' || c == '\''))
        .filter(|t| !t.is_empty())
    {
        match token.split_once('=') {
            Some((k, v)) => pairs.push((k.trim().to_string(), v.trim().to_string())),
            None => match pairs.last_mut() {
                Some((k, v)) if k == "arp_ip_target" || k == "ns_ip6_target" => {
                    v.push(',');
                    v.push_str(token);
                }
                _ => return Err(OptionError::Syntax(token.to_string())),
            },
        }
    }
    Ok(pairs)
}

impl BondOptions {
    /// Parses and checks an option string. Warnings are for the log; errors refuse the bond.
    pub fn parse(text: &str) -> Result<(BondOptions, Vec<Warning>), OptionError> {
        let mut options = BondOptions::default();
        for (key, value) in tokenize(text)? {
            options.set(&key, &value)?;
        }
        let warnings = options.finish()?;
        Ok((options, warnings))
    }

    /// Whether the option was written rather than left at its default.
    pub fn is_explicit(&self, name: &str) -> bool {
        self.explicit.contains(name)
    }

    /// Sets one option from its text, checking the value alone (combinations are checked by
    /// [`BondOptions::finish`], once all options are known: order does not matter).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), OptionError> {
        let spec = find_spec(name)?;
        let invalid = |allowed: String| OptionError::InvalidValue {
            name: spec.name,
            value: value.to_string(),
            allowed,
        };
        match &spec.kind {
            Kind::Named(table) => {
                let n = parse_named(value, table).ok_or_else(|| invalid(named_list(table)))?;
                self.set_named(spec.name, n);
            }
            &Kind::Range { min, max, names } => {
                let n = parse_number(value)
                    .or_else(|| lookup(value, names))
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| invalid(range_text(min, max, names)))?;
                self.set_number(spec.name, n as u32);
            }
            Kind::Interface => {
                let iface = value.trim();
                // Empty clears it, as writing "" to sysfs does.
                if !iface.is_empty() && !super::file::valid_ifname(iface) {
                    return Err(invalid("an interface name of at most 15 characters".into()));
                }
                let iface = (!iface.is_empty()).then(|| iface.to_string());
                match spec.name {
                    "primary" => self.primary = iface,
                    _ => self.active_slave = iface,
                }
            }
            Kind::Ipv4Targets => {
                edit_target_list(&mut self.arp_ip_target, spec.name, value, |addr| {
                    let ip: Ipv4Addr = addr.parse().map_err(|_| {
                        invalid("IPv4 addresses in n.n.n.n form, comma separated".into())
                    })?;
                    if ip.is_unspecified() || ip.is_broadcast() {
                        return Err(invalid(
                            "a unicast IPv4 address (not 0.0.0.0 or 255.255.255.255)".into(),
                        ));
                    }
                    Ok(ip)
                })?;
            }
            Kind::Ipv6Targets => {
                edit_target_list(&mut self.ns_ip6_target, spec.name, value, |addr| {
                    let ip: Ipv6Addr = addr
                        .parse()
                        .map_err(|_| invalid("IPv6 addresses, comma separated".into()))?;
                    if ip.is_unspecified() || ip.is_multicast() {
                        return Err(invalid(
                            "a unicast IPv6 address (not :: or multicast)".into(),
                        ));
                    }
                    Ok(ip)
                })?;
            }
            Kind::Mac => {
                let mac: MacAddr = value
                    .parse()
                    .map_err(|_| invalid("a MAC address xx:xx:xx:xx:xx:xx".into()))?;
                if !mac.is_valid_unicast() {
                    return Err(invalid(
                        "a unicast MAC address, not zero or multicast".into(),
                    ));
                }
                self.ad_actor_system = Some(mac);
            }
            &Kind::PerMember { min, max } => {
                let (iface, n) = per_member(value, min, max)
                    .ok_or_else(|| invalid(format!("IFACE:N with N in {min} - {max}")))?;
                match spec.name {
                    "prio" => self.prio.insert(iface.to_string(), n as i32),
                    _ => self
                        .queue_id
                        .insert(iface.to_string(), n as u16)
                        .map(i32::from),
                };
            }
        }
        self.explicit.insert(spec.name);
        Ok(())
    }

    fn set_named(&mut self, name: &str, n: u64) {
        let on = n != 0;
        // `n` is one of the option's table, so each lookup finds it.
        match name {
            "mode" => self.mode = Mode::from_number(n).unwrap_or_default(),
            "xmit_hash_policy" => {
                self.xmit_hash_policy = HashPolicy::from_number(n).unwrap_or_default()
            }
            "use_carrier" => self.use_carrier = on,
            "all_slaves_active" => self.all_slaves_active = on,
            "lacp_active" => self.lacp_active = on,
            "tlb_dynamic_lb" => self.tlb_dynamic_lb = on,
            "arp_validate" => self.arp_validate = ArpValidate::from_number(n).unwrap_or_default(),
            "arp_all_targets" => {
                self.arp_all_targets = ArpAllTargets::from_number(n).unwrap_or_default()
            }
            "fail_over_mac" => self.fail_over_mac = FailOverMac::from_number(n).unwrap_or_default(),
            "lacp_rate" => self.lacp_rate = LacpRate::from_number(n).unwrap_or_default(),
            "ad_select" => self.ad_select = AdSelect::from_number(n).unwrap_or_default(),
            "primary_reselect" => {
                self.primary_reselect = PrimaryReselect::from_number(n).unwrap_or_default()
            }
            other => unreachable!("no named option {other}"),
        }
    }

    fn set_number(&mut self, name: &str, n: u32) {
        let slot = match name {
            "miimon" => &mut self.miimon,
            "updelay" => &mut self.updelay,
            "downdelay" => &mut self.downdelay,
            "arp_interval" => &mut self.arp_interval,
            "arp_missed_max" => &mut self.arp_missed_max,
            "packets_per_slave" => &mut self.packets_per_slave,
            "num_grat_arp" | "num_unsol_na" => &mut self.num_peer_notif,
            "peer_notif_delay" => &mut self.peer_notif_delay,
            "resend_igmp" => &mut self.resend_igmp,
            "min_links" => &mut self.min_links,
            "ad_actor_sys_prio" => &mut self.ad_actor_sys_prio,
            "ad_user_port_key" => &mut self.ad_user_port_key,
            "lp_interval" => &mut self.lp_interval,
            other => unreachable!("no numeric option {other}"),
        };
        *slot = n;
    }

    /// Checks the options together, as the kernel does when it brings a bond up, and applies
    /// what the kernel applies (miimon forced on, delays rounded to miimon). Refuses what the
    /// kernel refuses, and what it would silently ignore where ignoring loses a failover.
    pub fn finish(&mut self) -> Result<Vec<Warning>, OptionError> {
        self.check_modes()?;
        self.check_arp()?;
        let mut warnings = Vec::new();
        self.settle_miimon(&mut warnings)?;
        self.warn_unmonitored(&mut warnings);
        self.warn_balancing(&mut warnings);
        Ok(warnings)
    }

    /// Every option given is one the mode has.
    fn check_modes(&self) -> Result<(), OptionError> {
        for name in self.explicit.iter().copied() {
            let spec = find_spec(name).expect("explicit options are known");
            if !spec.modes.contains(&self.mode) {
                return Err(OptionError::UnsupportedInMode {
                    name,
                    value: self.value_text(name),
                    mode: self.mode.name(),
                    allowed: mode_names(spec.modes),
                });
            }
        }
        Ok(())
    }

    /// ARP monitoring: not beside MII monitoring, with targets to probe, not too many.
    fn check_arp(&self) -> Result<(), OptionError> {
        if self.miimon > 0 && self.arp_interval > 0 {
            return Err(self.conflict(
                "arp_interval",
                format!(
                    "cannot be used together with miimon={}: choose MII (link) or ARP monitoring",
                    self.miimon
                ),
            ));
        }
        if self.arp_interval > 0 && self.arp_ip_target.is_empty() && self.ns_ip6_target.is_empty() {
            return Err(self.conflict(
                "arp_interval",
                "needs at least one arp_ip_target (or ns_ip6_target) to probe".into(),
            ));
        }
        for (name, targets) in [
            ("arp_ip_target", self.arp_ip_target.len()),
            ("ns_ip6_target", self.ns_ip6_target.len()),
        ] {
            if targets > MAX_TARGETS {
                return Err(self.conflict(
                    name,
                    format!("at most {MAX_TARGETS} targets, got {targets}"),
                ));
            }
        }
        Ok(())
    }

    /// miimon forced on where the mode needs it, and the delays rounded to it.
    fn settle_miimon(&mut self, warnings: &mut Vec<Warning>) -> Result<(), OptionError> {
        if self.mode.requires_miimon() && self.miimon == 0 {
            if self.is_explicit("miimon") {
                warnings.push(Warning(format!(
                    "miimon=0 is not allowed in mode {}: link failures must be detected; using miimon={DEFAULT_MIIMON}",
                    self.mode
                )));
            }
            self.miimon = DEFAULT_MIIMON;
        }
        for name in ["updelay", "downdelay", "peer_notif_delay"] {
            let value = *self.delay_mut(name);
            if value == 0 {
                continue;
            }
            if self.miimon == 0 {
                return Err(
                    self.conflict(name, "requires miimon (MII monitoring is disabled)".into())
                );
            }
            if value % self.miimon != 0 {
                let rounded = value / self.miimon * self.miimon;
                warnings.push(Warning(format!(
                    "{name} ({value}) is not a multiple of miimon ({}), value rounded to {rounded} ms",
                    self.miimon
                )));
                *self.delay_mut(name) = rounded;
            }
        }
        Ok(())
    }

    /// Settings that leave a bond without failover, or that do nothing.
    fn warn_unmonitored(&self, warnings: &mut Vec<Warning>) {
        let mut warn = |text: &str| warnings.push(Warning(text.into()));
        if self.miimon == 0 && self.arp_interval == 0 {
            warn("miimon=0 and arp_interval=0: no link monitoring, a failed member is never taken out (no failover); set miimon=100");
        }
        if self.arp_interval == 0
            && (!self.arp_ip_target.is_empty() || !self.ns_ip6_target.is_empty())
        {
            warn("arp_ip_target/ns_ip6_target have no effect without arp_interval");
        }
        if self.arp_interval == 0 && self.arp_validate != ArpValidate::None {
            warn("arp_validate has no effect without arp_interval");
        }
        if self.mode != Mode::ActiveBackup && self.fail_over_mac != FailOverMac::None {
            warn("fail_over_mac only affects active-backup");
        }
    }

    /// How the mode spreads traffic, where operators come to regret it.
    fn warn_balancing(&self, warnings: &mut Vec<Warning>) {
        let mut warn = |text: String| warnings.push(Warning(text));
        // The kernel forces dynamic balancing on when a bond becomes alb.
        if self.mode == Mode::BalanceAlb
            && self.is_explicit("tlb_dynamic_lb")
            && !self.tlb_dynamic_lb
        {
            warn("tlb_dynamic_lb=0 in balance-alb: transmit uses the hash modulo".into());
        }
        let hashes = matches!(self.mode, Mode::BalanceXor | Mode::Lacp)
            || (self.mode == Mode::BalanceTlb)
            || (self.mode == Mode::BalanceAlb && !self.tlb_dynamic_lb);
        if matches!(self.mode, Mode::BalanceXor | Mode::Lacp)
            && self.xmit_hash_policy == HashPolicy::Layer2
        {
            warn(format!(
                "xmit_hash_policy=layer2{} in {}: all traffic to or through one router (one MAC) uses a single member; layer3+4 spreads flows",
                if self.is_explicit("xmit_hash_policy") { "" } else { " (the default)" },
                self.mode
            ));
        }
        if !hashes && self.is_explicit("xmit_hash_policy") {
            warn(format!(
                "xmit_hash_policy has no effect in mode {}",
                self.mode
            ));
        }
        if self.mode == Mode::BalanceRr {
            warn("balance-rr spreads the packets of one flow over all members: TCP sees them out of order".into());
        }
    }

    /// Checks the options that name members against the bond's member list.
    pub fn check_members(&self, members: &[String]) -> Result<Vec<Warning>, OptionError> {
        let known = |iface: &str| members.iter().any(|m| m == iface);
        let list = members.join(", ");
        for (name, iface) in [
            ("primary", &self.primary),
            ("active_slave", &self.active_slave),
        ] {
            if let Some(iface) = iface.as_deref().filter(|i| !known(i)) {
                return Err(self.conflict(
                    name,
                    format!("{iface} is not a member of the bond (members: {list})"),
                ));
            }
        }
        for (name, ifaces) in [
            ("prio", self.prio.keys().collect::<Vec<_>>()),
            ("queue_id", self.queue_id.keys().collect()),
        ] {
            if let Some(iface) = ifaces.into_iter().find(|i| !known(i)) {
                return Err(self.conflict(
                    name,
                    format!("{iface} is not a member of the bond (members: {list})"),
                ));
            }
        }
        let mut warnings = Vec::new();
        if self.min_links as usize > members.len() {
            warnings.push(Warning(format!(
                "min_links={} but the bond has {} member(s): it will never have carrier",
                self.min_links,
                members.len()
            )));
        }
        Ok(warnings)
    }

    fn delay_mut(&mut self, name: &str) -> &mut u32 {
        match name {
            "updelay" => &mut self.updelay,
            "downdelay" => &mut self.downdelay,
            _ => &mut self.peer_notif_delay,
        }
    }

    fn conflict(&self, name: &'static str, reason: String) -> OptionError {
        OptionError::Conflict {
            name,
            value: self.value_text(name),
            reason,
        }
    }

    /// The current value of an option, as it would be written.
    pub fn value_text(&self, name: &str) -> String {
        let join = |v: Vec<String>| v.join(",");
        let per_member = |m: Vec<(&String, String)>| {
            join(m.into_iter().map(|(k, v)| format!("{k}:{v}")).collect())
        };
        let on_off = |b: bool| if b { "1" } else { "0" }.to_string();
        match name {
            "mode" => self.mode.name().into(),
            "miimon" => self.miimon.to_string(),
            "updelay" => self.updelay.to_string(),
            "downdelay" => self.downdelay.to_string(),
            "use_carrier" => on_off(self.use_carrier),
            "arp_interval" => self.arp_interval.to_string(),
            "arp_ip_target" => join(self.arp_ip_target.iter().map(|a| a.to_string()).collect()),
            "arp_validate" => self.arp_validate.name().into(),
            "arp_all_targets" => self.arp_all_targets.name().into(),
            "arp_missed_max" => self.arp_missed_max.to_string(),
            "ns_ip6_target" => join(self.ns_ip6_target.iter().map(|a| a.to_string()).collect()),
            "primary" => self.primary.clone().unwrap_or_default(),
            "primary_reselect" => self.primary_reselect.name().into(),
            "active_slave" => self.active_slave.clone().unwrap_or_default(),
            "fail_over_mac" => self.fail_over_mac.name().into(),
            "xmit_hash_policy" => self.xmit_hash_policy.name().into(),
            "packets_per_slave" => self.packets_per_slave.to_string(),
            "num_grat_arp" | "num_unsol_na" => self.num_peer_notif.to_string(),
            "peer_notif_delay" => self.peer_notif_delay.to_string(),
            "resend_igmp" => self.resend_igmp.to_string(),
            "all_slaves_active" => on_off(self.all_slaves_active),
            "min_links" => self.min_links.to_string(),
            "lacp_rate" => self.lacp_rate.name().into(),
            "lacp_active" => if self.lacp_active { "on" } else { "off" }.into(),
            "ad_select" => self.ad_select.name().into(),
            "ad_actor_sys_prio" => self.ad_actor_sys_prio.to_string(),
            "ad_actor_system" => self
                .ad_actor_system
                .map(|m| m.to_string())
                .unwrap_or_default(),
            "ad_user_port_key" => self.ad_user_port_key.to_string(),
            "tlb_dynamic_lb" => on_off(self.tlb_dynamic_lb),
            "lp_interval" => self.lp_interval.to_string(),
            "prio" => per_member(self.prio.iter().map(|(k, v)| (k, v.to_string())).collect()),
            "queue_id" => per_member(
                self.queue_id
                    .iter()
                    .map(|(k, v)| (k, v.to_string()))
                    .collect(),
            ),
            _ => String::new(),
        }
    }

    /// The written options as one canonical option string (`mode=...,miimon=...`).
    pub fn to_option_string(&self) -> String {
        let mut parts = vec![format!("mode={}", self.mode.name())];
        for spec in SPECS.iter().filter(|s| s.name != "mode") {
            if self.is_explicit(spec.name) || (spec.name == "miimon" && self.miimon > 0) {
                let value = self.value_text(spec.name);
                match spec.name {
                    // Lists and per-member values repeat the key per item.
                    "arp_ip_target" | "ns_ip6_target" | "prio" | "queue_id" => parts.extend(
                        value
                            .split(',')
                            .filter(|v| !v.is_empty())
                            .map(|v| format!("{}={v}", spec.name)),
                    ),
                    _ => parts.push(format!("{}={value}", spec.name)),
                }
            }
        }
        parts.join(",")
    }
}

/// A value given as a number, read as the kernel does (digits only).
fn parse_number(value: &str) -> Option<u64> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn lookup(value: &str, table: &[(&str, u64)]) -> Option<u64> {
    table
        .iter()
        .find(|(n, _)| *n == value.trim())
        .map(|(_, v)| *v)
}

/// A named value by name or by number.
fn parse_named(value: &str, table: &[(&str, u64)]) -> Option<u64> {
    match parse_number(value) {
        Some(n) => table.iter().any(|(_, v)| *v == n).then_some(n),
        None => lookup(value, table),
    }
}

/// `+addr` adds, `-addr` removes (the sysfs form); a bare address adds.
fn split_op(item: &str) -> (char, &str) {
    match item.as_bytes().first() {
        Some(b'+') => ('+', &item[1..]),
        Some(b'-') => ('-', &item[1..]),
        _ => ('+', item),
    }
}

/// What a numeric option allows: its range, and the name of 0 where it has one.
fn range_text(min: u64, max: u64, names: &[(&str, u64)]) -> String {
    let mut allowed = format!("{min} - {max}");
    if let Some((n, v)) = names.iter().find(|(_, v)| *v == 0 && min == 0) {
        allowed.push_str(&format!(", or {n} ({v})"));
    }
    allowed
}

/// `IFACE:N` with N in `min..=max` (sysfs's form of the per-member options).
fn per_member(value: &str, min: i64, max: i64) -> Option<(&str, i64)> {
    let (iface, n) = value.rsplit_once(':')?;
    let n: i64 = n.trim().parse().ok()?;
    (!iface.is_empty() && (min..=max).contains(&n)).then_some((iface, n))
}

/// Applies a comma-separated list of `+addr` and `-addr` (a bare address adds) to
/// `targets`, all or nothing: a bad item leaves the list as it was.
fn edit_target_list<T: PartialEq + fmt::Display + Clone>(
    targets: &mut Vec<T>,
    name: &'static str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, OptionError>,
) -> Result<(), OptionError> {
    let mut edited = targets.clone();
    for item in value.split(',').filter(|s| !s.is_empty()) {
        let (op, addr) = split_op(item);
        edit_targets(&mut edited, op, parse(addr)?, name, value)?;
    }
    *targets = edited;
    Ok(())
}

fn edit_targets<T: PartialEq + fmt::Display>(
    targets: &mut Vec<T>,
    op: char,
    ip: T,
    name: &'static str,
    value: &str,
) -> Result<(), OptionError> {
    let conflict = |reason: String| OptionError::Conflict {
        name,
        value: value.to_string(),
        reason,
    };
    match (op, targets.iter().position(|t| *t == ip)) {
        ('+', Some(_)) => Err(conflict(format!("target {ip} is already present"))),
        ('+', None) => {
            targets.push(ip);
            Ok(())
        }
        (_, Some(at)) => {
            targets.remove(at);
            Ok(())
        }
        (_, None) => Err(conflict(format!("target {ip} is not present"))),
    }
}

#[cfg(test)]
mod tests;
