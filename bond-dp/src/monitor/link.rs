//! Link facts of an interface, read from sysfs.

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::wire::MacAddr;

use super::mii::LinkFacts;

fn attr(iface: &str, name: &str) -> io::Result<String> {
    let path: PathBuf = ["/sys/class/net", iface, name].iter().collect();
    fs::read_to_string(path).map(|s| s.trim().to_string())
}

/// Reads an interface's index, MAC, carrier, speed and duplex. An interface that does not
/// exist is an error; attributes a driver does not report are `None`.
pub fn read_link(iface: &str) -> io::Result<LinkFacts> {
    let ifindex = read_ifindex(iface)?;
    let address = attr(iface, "address")?;
    let mac = address
        .parse()
        .map_err(|e: String| io::Error::new(io::ErrorKind::InvalidData, e))?;
    // Reading `carrier` of a down interface fails with EINVAL: no carrier.
    let carrier = attr(iface, "carrier").is_ok_and(|c| c == "1");
    let speed_mbps = attr(iface, "speed")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| u32::try_from(s).ok());
    let full_duplex = match attr(iface, "duplex").ok().as_deref() {
        Some("full") => Some(true),
        Some("half") => Some(false),
        _ => None,
    };
    Ok(LinkFacts {
        ifindex,
        mac,
        carrier,
        speed_mbps,
        full_duplex,
        mtu: read_mtu(iface)?,
    })
}

/// The device's MTU.
pub fn read_mtu(iface: &str) -> io::Result<u32> {
    attr(iface, "mtu")?
        .parse()
        .map_err(|e: std::num::ParseIntError| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The device's MAC address as it is now.
pub fn read_mac(iface: &str) -> io::Result<MacAddr> {
    attr(iface, "address")?
        .parse()
        .map_err(|e: String| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The interface index of `iface` in this network namespace.
pub fn read_ifindex(iface: &str) -> io::Result<u32> {
    attr(iface, "ifindex")?
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{iface}: ifindex")))
}

/// A member's carrier, looked at again and again, cheaply and without waiting on the RTNL
/// lock. The `carrier` attribute takes that lock, which `ip link set ... down` and driver
/// resets hold for milliseconds, exactly when a failover is urgent. `carrier_changes` (the
/// kernel's count of carrier transitions) and `flags` take no lock: carrier transitions
/// alternate, so the state is the one `carrier` gave once, flipped once per change since.
/// Each attribute stays open, and a look is a pread (sysfs regenerates a read at offset 0).
pub struct CarrierReader {
    iface: String,
    flags: Option<fs::File>,
    changes: Option<fs::File>,
    /// Transitions counted, and the carrier, when `carrier` was last read.
    base: Option<(u64, bool)>,
    /// Transitions counted at the last look.
    transitions: u64,
}

/// IFF_UP in `flags`: administratively up.
const IFF_UP: u64 = 0x1;

impl CarrierReader {
    pub fn new(iface: &str) -> CarrierReader {
        CarrierReader {
            iface: iface.to_string(),
            flags: None,
            changes: None,
            base: None,
            transitions: 0,
        }
    }

    /// The carrier transitions counted at the last look (a flap is a device reset).
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// Administratively up with carrier; a missing interface has none.
    pub fn carrier(&mut self) -> bool {
        let up =
            read_number(&self.iface, "flags", &mut self.flags, 16).is_some_and(|f| f & IFF_UP != 0);
        let Some(changes) = read_number(&self.iface, "carrier_changes", &mut self.changes, 10)
        else {
            return false;
        };
        self.transitions = changes;
        if !up {
            // `carrier` cannot be read while down; take a new base once it is up again.
            self.base = None;
            return false;
        }
        if self.base.is_none() {
            // A consistent base: no transition between the count and the reading.
            let carrier = attr(&self.iface, "carrier").is_ok_and(|c| c == "1");
            let after = read_number(&self.iface, "carrier_changes", &mut self.changes, 10);
            if after != Some(changes) {
                return carrier;
            }
            self.base = Some((changes, carrier));
        }
        let (counted, carrier) = self.base.expect("set above");
        carrier ^ (changes.wrapping_sub(counted) % 2 == 1)
    }
}

/// A number in a sysfs attribute of `iface`, read through `file` (opened on first use and
/// again after an error, for an interface that was re-created).
fn read_number(iface: &str, name: &str, file: &mut Option<fs::File>, radix: u32) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    if file.is_none() {
        let path: PathBuf = ["/sys/class/net", iface, name].iter().collect();
        *file = fs::File::open(path).ok();
    }
    let mut buf = [0u8; 32];
    let n = match file.as_ref()?.read_at(&mut buf, 0) {
        Ok(n) => n,
        Err(_) => {
            *file = None;
            return None;
        }
    };
    let text = std::str::from_utf8(&buf[..n]).ok()?.trim();
    u64::from_str_radix(text.trim_start_matches("0x"), radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_readable_and_missing_is_an_error() {
        let lo = read_link("lo").unwrap();
        assert_eq!(lo.mac, MacAddr::ZERO);
        assert!(read_link("no-such-if0").is_err());
        // Loopback is up with carrier, every time it is asked.
        let mut lo = CarrierReader::new("lo");
        assert!(lo.carrier() && lo.carrier());
        assert!(!CarrierReader::new("no-such-if0").carrier());
    }
}
