//! What `bond-dp status` shows of a bond: a data model of its own, built from the bond's
//! control state and its data plane's counters, and rendered by [`crate::control`] (the
//! kernel's /proc format, JSON through serde, metrics). Pure: no I/O.

use crate::lacp::LacpCounters;
use serde::{Deserialize, Serialize};

use crate::config::BondOptions;
use crate::policy::Mode;

/// Everything `bond-dp status` shows of one bond.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondStatus {
    pub name: String,
    pub version: String,
    pub mode: String,
    pub mode_number: u8,
    /// The canonical option string the bond runs with.
    pub options: String,
    pub xmit_hash_policy: Option<(String, u8)>,
    pub fail_over_mac: String,
    pub primary: Option<String>,
    pub primary_reselect: String,
    pub active: Option<String>,
    pub carrier: bool,
    /// Changes of active member since start, and when the last one was (ms after the
    /// monitor started).
    #[serde(default)]
    pub failovers: u32,
    #[serde(default)]
    pub last_failover_ms: Option<u64>,
    pub miimon: u32,
    pub updelay: u32,
    pub downdelay: u32,
    pub peer_notif_delay: u32,
    pub arp_interval: u32,
    pub arp_missed_max: u32,
    pub arp_ip_target: Vec<String>,
    pub ns_ip6_target: Vec<String>,
    pub lacp: Option<LacpStatus>,
    pub host: String,
    pub members: Vec<MemberStatus>,
    /// Present when the bond forwards frames (AF_XDP data plane up).
    #[serde(default)]
    pub data_plane: Option<DataPlaneStatus>,
}

/// The data plane as status shows it (JSON only; the /proc page has no place for it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPlaneStatus {
    /// Per member: "native" or "generic" XDP.
    pub xdp_modes: Vec<String>,
    pub workers: u32,
    /// The largest MTU the engine carries (members and host port): 9216 with jumbo frames
    /// (AF_XDP multi-buffer), else what one UMEM frame holds.
    #[serde(default)]
    pub max_mtu: u32,
    /// The engine's counters: per member, per member queue, and drops by reason.
    pub counters: CountersView,
    /// Per member, what the XDP program did with arriving frames.
    pub xdp: Vec<XdpCounters>,
}

/// The 802.3ad block's bond-wide settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LacpStatus {
    pub lacp_active: bool,
    pub lacp_rate: String,
    pub min_links: u32,
    pub ad_select: String,
    pub system_priority: u32,
    pub system_mac: String,
    /// The aggregator carrying traffic, once LACP runs.
    #[serde(default)]
    pub active_aggregator: Option<AggregatorInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregatorInfo {
    pub id: usize,
    pub ports: usize,
    pub actor_key: u16,
    pub partner_key: u16,
    pub partner_mac: String,
}

/// One member's 802.3ad details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLacpStatus {
    pub aggregator_id: Option<usize>,
    pub actor_churn_state: String,
    pub partner_churn_state: String,
    pub actor_churned_count: u32,
    pub partner_churned_count: u32,
    pub actor: LacpduDetails,
    pub partner: LacpduDetails,
    /// LACPDUs and markers sent and received, and bad frames by reason.
    #[serde(default)]
    pub frames: LacpCounters,
}

/// An LACPDU's actor or partner information, as /proc shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LacpduDetails {
    pub system_priority: u16,
    pub system_mac: String,
    pub key: u16,
    pub port_priority: u16,
    pub port_number: u16,
    pub port_state: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub name: String,
    /// up / going down / down / going back.
    pub mii_status: String,
    pub speed_mbps: Option<u32>,
    pub full_duplex: Option<bool>,
    pub link_failure_count: u32,
    pub permanent_hw_addr: String,
    pub queue_id: u16,
    pub prio: i32,
    #[serde(default)]
    pub lacp: Option<MemberLacpStatus>,
}

impl MemberStatus {
    /// Whether the member's link is up, as the kernel's "MII Status: up".
    pub fn is_up(&self) -> bool {
        self.mii_status == "up"
    }
}

impl BondStatus {
    /// The bond-wide fields that follow from its options; the live fields start empty.
    pub fn from_options(name: &str, options: &BondOptions, host: String) -> BondStatus {
        let mode = options.mode;
        let hashes = matches!(mode, Mode::BalanceXor | Mode::Lacp)
            || (mode == Mode::BalanceTlb && !options.tlb_dynamic_lb);
        BondStatus {
            name: name.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            mode: mode.name().to_string(),
            mode_number: mode.number() as u8,
            options: options.to_option_string(),
            xmit_hash_policy: hashes.then(|| {
                let p = options.xmit_hash_policy;
                (p.name().to_string(), p.number() as u8)
            }),
            fail_over_mac: options.fail_over_mac.name().to_string(),
            primary: options.primary.clone(),
            primary_reselect: options.primary_reselect.name().to_string(),
            active: None,
            carrier: false,
            failovers: 0,
            last_failover_ms: None,
            miimon: options.miimon,
            updelay: options.updelay,
            downdelay: options.downdelay,
            peer_notif_delay: options.peer_notif_delay,
            arp_interval: options.arp_interval,
            arp_missed_max: options.arp_missed_max,
            arp_ip_target: options
                .arp_ip_target
                .iter()
                .map(|a| a.to_string())
                .collect(),
            ns_ip6_target: options
                .ns_ip6_target
                .iter()
                .map(|a| a.to_string())
                .collect(),
            lacp: (mode == Mode::Lacp).then(|| LacpStatus {
                lacp_active: options.lacp_active,
                lacp_rate: options.lacp_rate.name().to_string(),
                min_links: options.min_links,
                ad_select: options.ad_select.name().to_string(),
                system_priority: options.ad_actor_sys_prio,
                system_mac: options
                    .ad_actor_system
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
                active_aggregator: None,
            }),
            host,
            members: Vec::new(),
            data_plane: None,
        }
    }
}

/// The data plane's counters as status shows them (copied from the engine's atomics).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersView {
    /// Per member, summed over its queues.
    pub members: Vec<MemberCountersView>,
    /// Per member queue.
    pub queues: Vec<QueueCountersView>,
    pub drop_no_member: u64,
    pub drop_host_busy: u64,
    pub drop_no_frame: u64,
    pub drop_too_long: u64,
    #[serde(default)]
    pub drop_host_offload: u64,
    /// TCP segments handed to the host merged into super-frames (GRO).
    #[serde(default)]
    pub to_host_coalesced: u64,
    /// TCP super-frames from the host a member's device segmented (handed over whole).
    #[serde(default)]
    pub to_members_whole: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCountersView {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_ring_full: u64,
    pub tx_completed: u64,
    pub tx_in_flight: u64,
    pub tx_errors: u64,
    #[serde(default)]
    pub tx_too_big: u64,
    #[serde(default)]
    pub rx_checksum_completed: u64,
    #[serde(default)]
    pub kernel_rx_dropped: u64,
    #[serde(default)]
    pub kernel_rx_ring_full: u64,
    #[serde(default)]
    pub kernel_fill_ring_empty: u64,
    #[serde(default)]
    pub kernel_tx_invalid: u64,
}

impl CountersView {
    /// Adds `o`'s bond-wide counts (drops by reason, offloads) to these.
    pub fn add_bond_wide(&mut self, o: &CountersView) {
        self.drop_no_member += o.drop_no_member;
        self.drop_host_busy += o.drop_host_busy;
        self.drop_no_frame += o.drop_no_frame;
        self.drop_too_long += o.drop_too_long;
        self.drop_host_offload += o.drop_host_offload;
        self.to_host_coalesced += o.to_host_coalesced;
        self.to_members_whole += o.to_members_whole;
    }
}

impl MemberCountersView {
    pub fn add(&mut self, o: &MemberCountersView) {
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_ring_full += o.tx_ring_full;
        self.tx_completed += o.tx_completed;
        self.tx_in_flight += o.tx_in_flight;
        self.tx_errors += o.tx_errors;
        self.tx_too_big += o.tx_too_big;
        self.rx_checksum_completed += o.rx_checksum_completed;
        self.kernel_rx_dropped += o.kernel_rx_dropped;
        self.kernel_rx_ring_full += o.kernel_rx_ring_full;
        self.kernel_fill_ring_empty += o.kernel_fill_ring_empty;
        self.kernel_tx_invalid += o.kernel_tx_invalid;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCountersView {
    pub member: usize,
    pub queue: u32,
    pub worker: usize,
    #[serde(flatten)]
    pub counts: MemberCountersView,
}

/// Frame counts the XDP program keeps per member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XdpCounters {
    pub redirected: u64,
    pub control_passed: u64,
    pub inactive_dropped: u64,
    pub no_socket_dropped: u64,
    /// ARP and neighbour discovery frames, whatever became of them.
    #[serde(default)]
    pub neighbour: u64,
}

impl XdpCounters {
    pub fn add(&mut self, o: &XdpCounters) {
        self.redirected += o.redirected;
        self.control_passed += o.control_passed;
        self.inactive_dropped += o.inactive_dropped;
        self.no_socket_dropped += o.no_socket_dropped;
        self.neighbour += o.neighbour;
    }

    /// Frames that arrived for the bond (redirected to it, passed to its control path, or
    /// dropped on an inactive member): proof that the member receives.
    pub fn arrived(&self) -> u64 {
        self.redirected + self.control_passed + self.inactive_dropped
    }
}
