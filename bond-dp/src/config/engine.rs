//! How the data plane runs a bond: worker threads, queues, UMEM and ring sizes, XDP and copy
//! modes. These are bond-dp's own settings (the kernel bond has no such knobs); every one has
//! a default that fits a veth testbed and an ordinary NIC.

use std::fmt;

use super::ConfigError;

/// Where the XDP program runs on the members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native where the driver has it, generic otherwise.
    #[default]
    Auto,
    Native,
    Generic,
}

/// How AF_XDP moves frames between the NIC and the UMEM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CopyMode {
    /// Zero-copy where the driver supports it, copy otherwise (the kernel chooses).
    #[default]
    Auto,
    ZeroCopy,
    Copy,
}

/// How the link monitor learns that a member's carrier changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CarrierWatch {
    /// The kernel's link notifications, and a look at the carrier every 250 µs: the
    /// kernel rate-limits its notifications to one a second for most devices (linkwatch),
    /// so they alone can arrive late. Delays and states still follow miimon's rules.
    #[default]
    Fast,
    /// Only every miimon ms, as the kernel's bond does.
    Miimon,
}

/// What the kernel keeps in front of every frame it hands to AF_XDP.
pub const XDP_PACKET_HEADROOM: u32 = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Poll-mode worker threads; worker `w` serves queues `q` with `q % workers == w` of every
    /// member (and of the access port).
    pub workers: u32,
    /// Queues to serve on each member; `None` serves every RX queue the member has (frames on
    /// a queue without a socket would be dropped).
    pub queues: Option<u32>,
    /// UMEM frames per worker; `None` sizes the pool from the rings.
    pub frames: Option<u32>,
    pub frame_size: u32,
    /// Entries in each RX, TX, fill and completion ring.
    pub ring_size: u32,
    pub xdp_mode: XdpMode,
    pub copy_mode: CopyMode,
    /// CPU cores for the workers, in order; empty: the last cores of the machine.
    pub cores: Vec<usize>,
    /// How member carrier is watched between miimon polls.
    pub carrier_watch: CarrierWatch,
    /// Whether frames longer than a UMEM frame (jumbo frames) cross as chains of frames
    /// (AF_XDP multi-buffer: a multi-buffer XDP program, sockets bound with XDP_USE_SG).
    pub jumbo: Jumbo,
}

/// Jumbo frames: on, off, or on for a TAP host side only (`auto`). A host's MTU is set at
/// run time (`ip link set bond0 mtu 9000`), and its TAP path copies frames anyway; an
/// appliance (access port, in-process API) keeps zero-copy, which drivers without
/// multi-buffer support give up for chains, unless it asks for jumbo frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Jumbo {
    #[default]
    Auto,
    On,
    Off,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 1,
            queues: None,
            frames: None,
            frame_size: 2048,
            ring_size: 1024,
            xdp_mode: XdpMode::Auto,
            copy_mode: CopyMode::Auto,
            cores: Vec::new(),
            carrier_watch: CarrierWatch::Fast,
            jumbo: Jumbo::Auto,
        }
    }
}

/// The largest MTU with jumbo frames on: what switches commonly allow.
pub const JUMBO_MTU: u32 = 9216;

/// The setting names, for errors and help.
pub const ENGINE_SETTINGS: &[&str] = &[
    "workers",
    "queues",
    "frames",
    "frame_size",
    "ring_size",
    "xdp_mode",
    "copy_mode",
    "cores",
    "carrier_watch",
    "jumbo",
];

const MAX_WORKERS: u32 = 64;
const MAX_RING: u32 = 16384;

impl EngineConfig {
    /// Sets one setting from its text; the error names the setting, the value and what is
    /// allowed. Accepts `-` for `_` so that command-line spellings work too.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let key = name.replace('-', "_");
        let invalid = |allowed: &str| ConfigError::Engine {
            name: key.clone(),
            value: value.to_string(),
            allowed: allowed.to_string(),
        };
        let number = |min: u32, max: u32| {
            value
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
        };
        let power_of_two = |min: u32, max: u32| number(min, max).filter(|n| n.is_power_of_two());
        match key.as_str() {
            "workers" => {
                self.workers = number(1, MAX_WORKERS).ok_or_else(|| invalid("1 - 64"))?;
            }
            "queues" => {
                self.queues = match value {
                    "all" => None,
                    _ => Some(number(1, 64).ok_or_else(|| invalid("1 - 64, or all"))?),
                }
            }
            "frames" => {
                self.frames =
                    match value {
                        "auto" => None,
                        _ => Some(power_of_two(256, 1 << 20).ok_or_else(|| {
                            invalid("a power of two from 256 to 1048576, or auto")
                        })?),
                    }
            }
            "frame_size" => {
                self.frame_size = match value {
                    "2048" => 2048,
                    "4096" => 4096,
                    _ => return Err(invalid("2048, 4096")),
                }
            }
            "ring_size" => {
                self.ring_size = power_of_two(64, MAX_RING)
                    .ok_or_else(|| invalid("a power of two from 64 to 16384"))?;
            }
            "xdp_mode" => {
                self.xdp_mode = match value {
                    "auto" => XdpMode::Auto,
                    "native" | "drv" => XdpMode::Native,
                    "generic" | "skb" => XdpMode::Generic,
                    _ => return Err(invalid("auto, native, generic")),
                }
            }
            "copy_mode" => {
                self.copy_mode = match value {
                    "auto" => CopyMode::Auto,
                    "zero-copy" | "zerocopy" => CopyMode::ZeroCopy,
                    "copy" => CopyMode::Copy,
                    _ => return Err(invalid("auto, zero-copy, copy")),
                }
            }
            "cores" => {
                self.cores = value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|c| c.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| invalid("CPU numbers, comma separated: 1,2"))?;
            }
            "carrier_watch" => {
                self.carrier_watch = match value {
                    "fast" => CarrierWatch::Fast,
                    "miimon" => CarrierWatch::Miimon,
                    _ => return Err(invalid("fast, miimon")),
                }
            }
            "jumbo" => {
                self.jumbo = match value {
                    "auto" => Jumbo::Auto,
                    "on" | "yes" | "1" => Jumbo::On,
                    "off" | "no" | "0" => Jumbo::Off,
                    _ => return Err(invalid("auto, on, off")),
                }
            }
            _ => {
                return Err(ConfigError::Engine {
                    name: key.clone(),
                    value: value.to_string(),
                    allowed: format!("a setting among {}", ENGINE_SETTINGS.join(", ")),
                })
            }
        }
        Ok(())
    }

    /// UMEM frames per worker: the configured count, or enough for every port's fill ring
    /// and TX ring to be full at once with a burst to spare.
    pub fn frames_per_worker(&self, ports_per_worker: usize) -> u32 {
        self.frames.unwrap_or_else(|| {
            let need = 2 * self.ring_size as usize * ports_per_worker + 2 * self.ring_size as usize;
            (need.next_power_of_two() as u32).max(4096)
        })
    }

    /// The longest frame a UMEM frame carries: the frame less the headroom the kernel keeps
    /// in front of every received frame (XDP_PACKET_HEADROOM).
    pub fn max_frame(&self) -> u32 {
        self.frame_size - XDP_PACKET_HEADROOM
    }

    /// Whether jumbo frames are on, for a bond whose host side is a TAP (`tap_host`) or not.
    pub fn multi_buffer(&self, tap_host: bool) -> bool {
        match self.jumbo {
            Jumbo::Auto => tap_host,
            Jumbo::On => true,
            Jumbo::Off => false,
        }
    }

    /// The largest member MTU the engine carries: with jumbo frames, JUMBO_MTU; otherwise
    /// the longest frame less an Ethernet header and one VLAN tag.
    pub fn max_mtu(&self, tap_host: bool) -> u32 {
        if self.multi_buffer(tap_host) {
            JUMBO_MTU
        } else {
            self.max_frame() - 18
        }
    }

    /// Refuses sizes that cannot work together (checked at start, with the numbers).
    pub fn check(&self, ports_per_worker: usize) -> Result<(), String> {
        let frames = self.frames_per_worker(ports_per_worker);
        let fills = self.ring_size as usize * ports_per_worker;
        if (frames as usize) <= fills {
            return Err(format!(
                "frames={frames} per worker cannot fill {ports_per_worker} fill rings of \
                 ring_size={}: use frames of at least {} or a smaller ring_size",
                self.ring_size,
                (fills * 2).next_power_of_two()
            ));
        }
        if let Some(q) = self.queues {
            if q < self.workers {
                return Err(format!(
                    "workers={} but queues={q}: every worker needs a queue on each member",
                    self.workers
                ));
            }
        }
        if !self.cores.is_empty() && self.cores.len() < self.workers as usize {
            return Err(format!(
                "workers={} but only {} cores given",
                self.workers,
                self.cores.len()
            ));
        }
        Ok(())
    }
}

impl fmt::Display for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queues = self.queues.map_or("all".to_string(), |q| q.to_string());
        let frames = self.frames.map_or("auto".to_string(), |n| n.to_string());
        let xdp = format!("{:?}", self.xdp_mode).to_lowercase();
        let copy = match self.copy_mode {
            CopyMode::Auto => "auto",
            CopyMode::ZeroCopy => "zero-copy",
            CopyMode::Copy => "copy",
        };
        write!(
            f,
            "workers={} queues={queues} frames={frames} frame_size={} ring_size={} \
             xdp_mode={xdp} copy_mode={copy}",
            self.workers, self.frame_size, self.ring_size
        )?;
        if !self.cores.is_empty() {
            let cores: Vec<String> = self.cores.iter().map(|c| c.to_string()).collect();
            write!(f, " cores={}", cores.join(","))?;
        }
        if self.carrier_watch == CarrierWatch::Miimon {
            write!(f, " carrier_watch=miimon")?;
        }
        match self.jumbo {
            Jumbo::Auto => {}
            Jumbo::On => write!(f, " jumbo=on")?,
            Jumbo::Off => write!(f, " jumbo=off")?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumbo_frames_are_on_for_a_tap_host_unless_told() {
        let mut e = EngineConfig::default();
        assert!(e.multi_buffer(true) && !e.multi_buffer(false), "auto");
        assert_eq!(
            (e.max_mtu(true), e.max_mtu(false)),
            (JUMBO_MTU, 2048 - 256 - 18)
        );
        e.set("jumbo", "on").unwrap();
        assert!(e.multi_buffer(false));
        assert!(e.to_string().ends_with(" jumbo=on"), "{e}");
        e.set("jumbo", "off").unwrap();
        assert!(!e.multi_buffer(true));
        let err = e.set("jumbo", "maybe").unwrap_err().to_string();
        assert!(err.contains("auto, on, off"), "{err}");
    }

    #[test]
    fn settings_parse_and_print_back() {
        let mut e = EngineConfig::default();
        for (k, v) in [
            ("workers", "2"),
            ("queues", "4"),
            ("frames", "16384"),
            ("frame-size", "4096"),
            ("ring_size", "2048"),
            ("xdp_mode", "generic"),
            ("copy-mode", "copy"),
            ("cores", "1,0"),
        ] {
            e.set(k, v).unwrap();
        }
        assert_eq!(
            e.to_string(),
            "workers=2 queues=4 frames=16384 frame_size=4096 ring_size=2048 \
             xdp_mode=generic copy_mode=copy cores=1,0"
        );
        let mut back = EngineConfig::default();
        for kv in e.to_string().split(' ') {
            let (k, v) = kv.split_once('=').unwrap();
            back.set(k, v).unwrap();
        }
        assert_eq!(back, e);
    }

    #[test]
    fn bad_values_name_the_setting_and_what_is_allowed() {
        let err = |k: &str, v: &str| EngineConfig::default().set(k, v).unwrap_err().to_string();
        assert_eq!(
            err("ring_size", "1000"),
            "engine setting ring_size: invalid value \"1000\" (allowed: a power of two from 64 to 16384)"
        );
        assert!(err("workers", "0").contains("allowed: 1 - 64"));
        assert!(err("xdp_mode", "fast").contains("allowed: auto, native, generic"));
        assert!(err("copy_mode", "zc").contains("allowed: auto, zero-copy, copy"));
        assert!(err("frames", "1000").contains("power of two"));
        assert!(err("cores", "a,b").contains("CPU numbers"));
        assert!(err("wrokers", "1").contains("a setting among workers, queues"));
    }

    #[test]
    fn sizes_that_cannot_work_are_refused() {
        let mut e = EngineConfig::default();
        assert!(e.check(3).is_ok());
        assert_eq!(e.frames_per_worker(3), 8192);
        // The automatic pool grows with the ports.
        assert!(e.frames_per_worker(9) >= 2 * 1024 * 9);
        e.set("frames", "1024").unwrap();
        let msg = e.check(2).unwrap_err();
        assert!(
            msg.contains("frames=1024") && msg.contains("ring_size=1024"),
            "{msg}"
        );
        let mut e = EngineConfig::default();
        e.set("workers", "2").unwrap();
        e.set("queues", "1").unwrap();
        assert!(e.check(2).unwrap_err().contains("workers=2 but queues=1"));
        e.set("queues", "2").unwrap();
        e.set("cores", "1").unwrap();
        assert!(e.check(2).unwrap_err().contains("only 1 cores"));
    }
}
