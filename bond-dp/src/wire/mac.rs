//! Ethernet addresses.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const ZERO: MacAddr = MacAddr([0; 6]);
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }
    /// A unicast address that is not all zeros: what may be used as a station address.
    pub fn is_valid_unicast(&self) -> bool {
        !self.is_zero() && !self.is_multicast()
    }
}

/// Writes `mac` into `frame` at `offset`; false (frame untouched) when it does not fit.
pub fn write_mac(frame: &mut [u8], offset: usize, mac: MacAddr) -> bool {
    match frame.get_mut(offset..offset + 6) {
        Some(slot) => {
            slot.copy_from_slice(&mac.0);
            true
        }
        None => false,
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// As text, "02:00:00:00:00:01", in JSON and TOML.
impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let parts: Vec<&str> = s.trim().split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(format!(
                "'{s}' is not a MAC address (expected xx:xx:xx:xx:xx:xx)"
            ));
        }
        for (slot, part) in out.iter_mut().zip(parts) {
            if part.is_empty() || part.len() > 2 {
                return Err(format!(
                    "'{s}' is not a MAC address (expected xx:xx:xx:xx:xx:xx)"
                ));
            }
            *slot = u8::from_str_radix(part, 16)
                .map_err(|_| format!("'{s}' is not a MAC address (bad byte '{part}')"))?;
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let m: MacAddr = "02:00:00:AB:cd:01".parse().unwrap();
        assert_eq!(m.0, [2, 0, 0, 0xab, 0xcd, 1]);
        assert_eq!(m.to_string(), "02:00:00:ab:cd:01");
        assert!(m.is_valid_unicast());
        assert!("01:00:5e:00:00:01"
            .parse::<MacAddr>()
            .unwrap()
            .is_multicast());
        assert!("02:00:00:00:00".parse::<MacAddr>().is_err());
        assert!("02:00:00:00:00:zz".parse::<MacAddr>().is_err());
        assert!("02:00:00:00:00:100".parse::<MacAddr>().is_err());
    }
}
