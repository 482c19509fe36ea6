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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_readable_and_missing_is_an_error() {
        let lo = read_link("lo").unwrap();
        assert_eq!(lo.mac, MacAddr::ZERO);
        assert!(read_link("no-such-if0").is_err());
    }
}
