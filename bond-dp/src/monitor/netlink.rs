//! rtnetlink: link notifications, which wake the monitor the moment a carrier changes (when
//! the kernel does not hold them back); the addresses of the bond's host-side interface,
//! which peer notifications and probes use; and setting MAC addresses (fail_over_mac).

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::wire::MacAddr;

/// The rtnetlink multicast group of link notifications.
const RTMGRP_LINK: u32 = 1;

/// A socket subscribed to link notifications.
pub struct LinkEvents {
    socket: Socket,
    buf: Vec<u8>,
}

impl LinkEvents {
    pub fn open() -> io::Result<LinkEvents> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
        socket.set_non_blocking(true)?;
        Ok(LinkEvents {
            socket,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Waits up to `timeout` for link notifications and takes them all in. What changed is
    /// read afresh by the caller, so their contents do not matter; nor does a lost one
    /// (ENOBUFS).
    pub fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        if !poll_readable(self.socket.as_raw_fd(), timeout)? {
            return Ok(());
        }
        loop {
            match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The rtnetlink multicast groups of IPv4 and IPv6 address notifications.
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// A socket subscribed to address notifications: says when the host's addresses may have
/// changed, so that the ARP monitor reads them (two netlink dumps) only then, not on every
/// interval.
pub struct AddressEvents {
    socket: Socket,
    buf: Vec<u8>,
}

impl AddressEvents {
    pub fn open() -> io::Result<AddressEvents> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind(&SocketAddr::new(0, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))?;
        socket.set_non_blocking(true)?;
        Ok(AddressEvents {
            socket,
            buf: vec![0; 16 * 1024],
        })
    }

    /// Whether an address was added or removed anywhere since the last call; the
    /// notifications are taken in. A lost one (ENOBUFS) or a failing socket counts as a
    /// change: the caller then reads the addresses afresh.
    pub fn changed(&mut self) -> bool {
        let mut changed = false;
        loop {
            match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(_) => changed = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return changed,
                Err(_) => return true,
            }
        }
    }
}

/// Waits for `fd` to become readable; false on timeout.
fn poll_readable(fd: i32, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // ppoll, not poll: the monitor waits fractions of a millisecond, which poll's whole
    // milliseconds would round to a busy loop.
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos().into(),
    };
    // SAFETY: one valid pollfd and its count, a valid timespec, no signal mask.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    match rc {
        -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => Ok(false),
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// Parses every netlink message in `buf` and hands the route messages to `f`.
fn for_each_message(buf: &[u8], mut f: impl FnMut(RouteNetlinkMessage)) -> bool {
    let mut offset = 0;
    let mut done = false;
    while offset < buf.len() {
        let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..]) else {
            break;
        };
        let len = msg.header.length as usize;
        match msg.payload {
            NetlinkPayload::InnerMessage(inner) => f(inner),
            NetlinkPayload::Done(_) | NetlinkPayload::Error(_) => done = true,
            _ => {}
        }
        if len == 0 {
            break;
        }
        offset += len;
    }
    done
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}

/// An address peers must learn the new path to, on a VLAN of the host side or untagged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAddress {
    pub ip: IpAddr,
    pub prefix_len: u8,
    pub vlan: Option<u16>,
}

impl HostAddress {
    /// Whether `ip` is on this address's subnet.
    pub fn on_subnet(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> u128 {
            match ip {
                IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
                IpAddr::V6(v6) => u128::from(v6),
            }
        };
        if self.ip.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        let len = u32::from(self.prefix_len).min(if ip.is_ipv4() { 32 } else { 128 });
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        bits(self.ip) & mask == bits(ip) & mask
    }
}

/// The addresses of `iface` and of the VLAN interfaces on top of it (the kernel announces
/// those too on failover). Link-local IPv6 addresses are left in: peers cache them as well.
pub fn host_addresses(iface: &str) -> io::Result<Vec<HostAddress>> {
    let links = dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
    let mut index_of = None;
    let mut vlans: Vec<(u32, u32, u16)> = Vec::new(); // (index, parent, vlan id)
    for msg in &links {
        let RouteNetlinkMessage::NewLink(link) = msg else {
            continue;
        };
        if link_name(link).as_deref() == Some(iface) {
            index_of = Some(link.header.index);
        }
        if let Some((parent, id)) = vlan_of(link) {
            vlans.push((link.header.index, parent, id));
        }
    }
    let Some(index) = index_of else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {iface}"),
        ));
    };
    let tag_of = |i: u32| -> Option<Option<u16>> {
        if i == index {
            return Some(None);
        }
        vlans
            .iter()
            .find(|(v, parent, _)| *v == i && *parent == index)
            .map(|&(_, _, id)| Some(id))
    };
    let mut out = Vec::new();
    for msg in dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))? {
        let RouteNetlinkMessage::NewAddress(addr) = msg else {
            continue;
        };
        let Some(vlan) = tag_of(addr.header.index) else {
            continue;
        };
        // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer's on
        // point-to-point links); IPv6 only sends IFA_ADDRESS.
        let local = addr.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let ip = local.or_else(|| {
            addr.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        });
        if let Some(ip) = ip {
            out.push(HostAddress {
                ip,
                prefix_len: addr.header.prefix_len,
                vlan,
            });
        }
    }
    Ok(out)
}

/// A VLAN interface's parent index and VLAN id.
fn vlan_of(link: &LinkMessage) -> Option<(u32, u16)> {
    let parent = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Link(p) => Some(*p),
        _ => None,
    })?;
    let info = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(info) => Some(info),
        _ => None,
    })?;
    if !info
        .iter()
        .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Vlan)))
    {
        return None;
    }
    let id = info.iter().find_map(|i| match i {
        LinkInfo::Data(InfoData::Vlan(data)) => data.iter().find_map(|d| match d {
            InfoVlan::Id(id) => Some(*id),
            _ => None,
        }),
        _ => None,
    })?;
    Some((parent, id))
}

/// Sets `iface`'s MAC address. Drivers that cannot change it while up refuse with EBUSY;
/// the error says so, for the caller to report.
pub fn set_mac(iface: &str, mac: MacAddr) -> io::Result<()> {
    let index = if_index(iface)?;
    let mut link = LinkMessage::default();
    link.header.index = index;
    link.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    request(RouteNetlinkMessage::SetLink(link), 0)
}

/// Gives `iface` the MAC `mac` and brings it up, as `ip link set IFACE address MAC up`.
pub fn set_mac_and_up(iface: &str, mac: MacAddr) -> io::Result<()> {
    let mut link = LinkMessage::default();
    link.header.index = if_index(iface)?;
    link.header.flags = LinkFlags::Up;
    link.header.change_mask = LinkFlags::Up;
    link.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    request(RouteNetlinkMessage::SetLink(link), 0)
}

/// Sets `iface`'s MTU, as `ip link set IFACE mtu N` does.
pub fn set_mtu(iface: &str, mtu: u32) -> io::Result<()> {
    let mut link = LinkMessage::default();
    link.header.index = if_index(iface)?;
    link.attributes.push(LinkAttribute::Mtu(mtu));
    request(RouteNetlinkMessage::SetLink(link), 0)
}

/// Sets `iface`'s carrier (IFLA_CARRIER, as `ip link set IFACE carrier on|off`): the bond's
/// TAP carries the bond's carrier, as the kernel's bond device does, so routing daemons,
/// keepalived and networkd see the bond go down when every member is down.
pub fn set_carrier(iface: &str, on: bool) -> io::Result<()> {
    let mut link = LinkMessage::default();
    link.header.index = if_index(iface)?;
    link.attributes.push(LinkAttribute::Carrier(u8::from(on)));
    request(RouteNetlinkMessage::SetLink(link), 0)
}

/// Gives `iface` the address `ip`/`prefix_len`, as `ip addr add` does; one it has already
/// is fine.
pub fn add_address(iface: &str, ip: IpAddr, prefix_len: u8) -> io::Result<()> {
    let mut addr = AddressMessage::default();
    addr.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    addr.header.prefix_len = prefix_len;
    addr.header.index = if_index(iface)?;
    addr.attributes.push(AddressAttribute::Local(ip));
    addr.attributes.push(AddressAttribute::Address(ip));
    match request(
        RouteNetlinkMessage::NewAddress(addr),
        NLM_F_CREATE | NLM_F_EXCL,
    ) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        done => done,
    }
}

/// Removes the interface `iface`, as `ip link del` does.
pub fn delete_link(iface: &str) -> io::Result<()> {
    let mut link = LinkMessage::default();
    link.header.index = if_index(iface)?;
    request(RouteNetlinkMessage::DelLink(link), 0)
}

fn if_index(iface: &str) -> io::Result<u32> {
    super::read_ifindex(iface)
}

/// Sends a request (with `flags` beside REQUEST and ACK) and waits for the kernel's
/// acknowledgement.
fn request(message: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
    let socket = connect()?;
    send(&socket, message, NLM_F_REQUEST | NLM_F_ACK | flags)?;
    let mut rx = vec![0; 8192];
    let n = socket.recv(&mut &mut rx[..], 0)?;
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[..n])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    match msg.payload {
        NetlinkPayload::Error(e) => match e.code {
            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn connect() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

fn send(socket: &Socket, message: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(message));
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    socket.send(&buf, 0)?;
    Ok(())
}

/// Sends a dump request and collects the answers.
fn dump(request: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
    let socket = connect()?;
    send(&socket, request, NLM_F_REQUEST | NLM_F_DUMP)?;
    let mut out = Vec::new();
    let mut rx = vec![0; 64 * 1024];
    loop {
        let n = socket.recv(&mut &mut rx[..], 0)?;
        if n == 0 || for_each_message(&rx[..n], |m| out.push(m)) {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_found_and_a_missing_interface_is_an_error() {
        let lo = host_addresses("lo").unwrap();
        assert!(
            lo.iter()
                .any(|a| a.ip == IpAddr::from([127, 0, 0, 1]) && a.vlan.is_none()),
            "{lo:?}"
        );
        assert!(host_addresses("no-such-if0").is_err());
    }

    #[test]
    fn subnets() {
        let a = HostAddress {
            ip: "10.77.0.1".parse().unwrap(),
            prefix_len: 24,
            vlan: None,
        };
        assert!(a.on_subnet("10.77.0.200".parse().unwrap()));
        assert!(!a.on_subnet("10.78.0.1".parse().unwrap()));
        assert!(!a.on_subnet("fd00::1".parse().unwrap()));
        let v6 = HostAddress {
            ip: "fd00:77::1".parse().unwrap(),
            prefix_len: 64,
            vlan: Some(5),
        };
        assert!(v6.on_subnet("fd00:77::9".parse().unwrap()));
        assert!(!v6.on_subnet("fd00:78::1".parse().unwrap()));
        let any = HostAddress { prefix_len: 0, ..a };
        assert!(any.on_subnet("192.0.2.1".parse().unwrap()));
    }
}
