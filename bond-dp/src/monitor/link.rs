//! Link facts of an interface, read from sysfs.

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::wire::MacAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    pub mac: MacAddr,
    /// Administratively up and with carrier.
    pub carrier: bool,
    pub speed_mbps: Option<u32>,
    pub full_duplex: Option<bool>,
}

fn attr(iface: &str, name: &str) -> io::Result<String> {
    let path: PathBuf = ["/sys/class/net", iface, name].iter().collect();
    fs::read_to_string(path).map(|s| s.trim().to_string())
}

/// Reads an interface's MAC, carrier, speed and duplex. An interface that does not exist is
/// an error; attributes a driver does not report are `None`.
pub fn read_link(iface: &str) -> io::Result<LinkFacts> {
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
        mac,
        carrier,
        speed_mbps,
        full_duplex,
    })
}

/// A member's carrier, read again and again cheaply: the sysfs attribute stays open and each
/// look is one pread (sysfs regenerates an attribute read from offset 0).
pub struct CarrierReader {
    iface: String,
    file: Option<fs::File>,
}

impl CarrierReader {
    pub fn new(iface: &str) -> CarrierReader {
        CarrierReader {
            iface: iface.to_string(),
            file: None,
        }
    }

    /// Administratively up with carrier. A down interface (EINVAL) or a missing one has none;
    /// the file is reopened after an error, for an interface that was re-created.
    pub fn carrier(&mut self) -> bool {
        use std::os::unix::fs::FileExt;
        if self.file.is_none() {
            let path: PathBuf = ["/sys/class/net", &self.iface, "carrier"].iter().collect();
            self.file = fs::File::open(path).ok();
        }
        let Some(file) = &self.file else {
            return false;
        };
        let mut buf = [0u8; 4];
        match file.read_at(&mut buf, 0) {
            Ok(n) => n > 0 && buf[0] == b'1',
            Err(e) => {
                if e.raw_os_error() != Some(libc::EINVAL) {
                    self.file = None;
                }
                false
            }
        }
    }
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
