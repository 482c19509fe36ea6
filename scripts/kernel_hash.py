#!/usr/bin/env python3
"""Reference model of the Linux bonding transmit hash (drivers/net/bonding/bond_main.c:
__bond_xmit_hash and the flow dissector it uses), written from the kernel C, independently of
bond-dp's Rust. Used as the oracle that `bond-dp hash` is tested against.

Reads one hex frame per line on stdin, prints `INDEX 0xHASH` per line, like `bond-dp hash`.
VLAN tags (up to two) are skipped before the EtherType, as bond-dp documents; encap policies
also enter VXLAN (UDP 4789), as bond-dp documents.
"""
import argparse
import struct
import sys

ICMP, ICMPV6 = 1, 58


def le32(b, at):
    return struct.unpack_from("<I", b, at)[0]


class Keys:
    def __init__(self):
        self.src = self.dst = self.ports = 0
        self.icmp_type = self.icmp_code = self.icmp_id = 0


def l2(frame):
    eth = struct.unpack_from("!H", frame, 12)[0]
    off, tci = 14, None
    for _ in range(2):
        if eth not in (0x8100, 0x88A8) or len(frame) < off + 4:
            break
        if tci is None:
            tci = struct.unpack_from("!H", frame, off)[0]
        eth = struct.unpack_from("!H", frame, off + 2)[0]
        off += 4
    return eth, off, tci


def v6fold(b, at):
    return le32(b, at) ^ le32(b, at + 4) ^ le32(b, at + 8) ^ le32(b, at + 12)


def get_ports(frame, thoff, proto):
    poff = {6: 0, 17: 0, 33: 0, 50: 0, 132: 0, 136: 0, 51: 4}.get(proto)
    if poff is None or thoff + poff + 4 > len(frame):
        return 0
    return le32(frame, thoff + poff)


def icmp_tci(frame, off, k):
    if off + 8 > len(frame):
        return
    k.icmp_type, k.icmp_code = frame[off], frame[off + 1]
    if k.icmp_type in (0, 8, 13, 14, 128, 129):
        ident = struct.unpack_from("!H", frame, off + 4)[0]
        k.icmp_id = ident if ident else 1
    else:
        k.icmp_id = 0


def flow_ip(frame, proto_l2, st, k, l34):
    """bond_flow_ip: st = [nhoff, ip_proto]"""
    nh = st[0]
    if proto_l2 == 0x0800:
        if nh + 20 > len(frame):
            return False
        k.src, k.dst = le32(frame, nh + 12), le32(frame, nh + 16)
        ihl = frame[nh] & 0xF
        frag = struct.unpack_from("!H", frame, nh + 6)[0] & 0x3FFF
        st[0] = nh + ihl * 4
        if not frag:
            st[1] = frame[nh + 9]
    elif proto_l2 == 0x86DD:
        if nh + 40 > len(frame):
            return False
        k.src, k.dst = v6fold(frame, nh + 8), v6fold(frame, nh + 24)
        st[0] = nh + 40
        st[1] = frame[nh + 6]
    else:
        return False
    if l34 and st[1] >= 0:
        k.ports = get_ports(frame, st[0], st[1])
    return True


def bond_flow_dissect(frame, proto_l2, nhoff, l34):
    k = Keys()
    st = [nhoff, -1]
    if not flow_ip(frame, proto_l2, st, k, l34):
        return None
    if st[1] in (ICMP, ICMPV6):
        icmp_tci(frame, st[0], k)
        if st[1] == ICMP:
            if k.icmp_type not in (3, 4, 5, 11, 12):
                return k
        else:
            if k.icmp_type not in (1, 2, 3, 4):
                return k
        st[0] += 8
        if not flow_ip(frame, proto_l2, st, k, l34):
            return None
    return k


def flow_dissect_encap(frame, proto_l2, nhoff):
    """The parts of __skb_flow_dissect that flow_keys_bonding reaches."""
    k = Keys()
    off = nhoff
    for _ in range(15):
        if proto_l2 == 0x0800:
            if off + 20 > len(frame) or frame[off] & 0xF < 5:
                return None
            k.src, k.dst = le32(frame, off + 12), le32(frame, off + 16)
            frag = struct.unpack_from("!H", frame, off + 6)[0] & 0x3FFF
            proto = frame[off + 9]
            off += (frame[off] & 0xF) * 4
            if frag:
                return k
            v6 = False
        elif proto_l2 == 0x86DD:
            if off + 40 > len(frame):
                return None
            k.src, k.dst = v6fold(frame, off + 8), v6fold(frame, off + 24)
            proto = frame[off + 6]
            off += 40
            v6 = True
        elif proto_l2 in (0x8100, 0x88A8):
            if off + 4 > len(frame):
                return None
            proto_l2 = struct.unpack_from("!H", frame, off + 2)[0]
            off += 4
            continue
        else:
            return None
        nxt = None
        for _ in range(15):
            if v6 and proto in (0, 43, 60):
                if off + 2 > len(frame):
                    return None
                proto, off = frame[off], off + (frame[off + 1] + 1) * 8
                continue
            if v6 and proto == 44:
                return k if off + 8 <= len(frame) else None
            if proto == 4:
                nxt = 0x0800
            elif proto == 41:
                nxt = 0x86DD
            elif proto == 47:
                if off + 4 > len(frame):
                    return None
                flags, inner = struct.unpack_from("!HH", frame, off)
                if flags & 0x4007:
                    return k
                hl = 4 + 4 * sum(1 for f in (0x8000, 0x2000, 0x1000) if flags & f)
                if off + hl > len(frame):
                    return None
                off += hl
                if inner == 0x6558:
                    if off + 14 > len(frame):
                        return None
                    inner = struct.unpack_from("!H", frame, off + 12)[0]
                    off += 14
                nxt = inner
            elif proto == 17 and off + 4 <= len(frame) and struct.unpack_from("!H", frame, off + 2)[0] == 4789:
                inner = off + 16
                if inner + 14 > len(frame):
                    return None
                nxt = struct.unpack_from("!H", frame, inner + 12)[0]
                off = inner + 14
            else:
                k.ports = get_ports(frame, off, proto)
                if proto in (ICMP, ICMPV6):
                    icmp_tci(frame, off, k)
                return k
            break
        if nxt is None:
            return k
        proto_l2 = nxt
    return k


def xmit_hash(frame, policy):
    if len(frame) < 14:
        return 0
    eth, nhoff, tci = l2(frame)
    eth_hash = frame[5] ^ frame[11] ^ eth
    if policy == "vlan+srcmac":
        s = frame[6:12]
        return (tci or 0) ^ (s[0] << 16 | s[1] << 8 | s[2]) ^ (s[3] << 16 | s[4] << 8 | s[5])
    if policy == "layer2":
        return eth_hash
    if policy in ("encap2+3", "encap3+4"):
        k = flow_dissect_encap(frame, eth, nhoff)
    else:
        k = bond_flow_dissect(frame, eth, nhoff, policy == "layer3+4")
    if k is None:
        return eth_hash
    if policy in ("layer2+3", "encap2+3"):
        h = eth_hash
    elif k.icmp_id:
        h = k.icmp_type | k.icmp_code << 8 | k.icmp_id << 16
    else:
        h = k.ports
    h = (h ^ k.dst ^ k.src) & 0xFFFFFFFF
    h ^= h >> 16
    h ^= h >> 8
    if policy in ("layer3+4", "encap3+4"):
        h >>= 1
    return h


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--members", type=int, required=True)
    args = ap.parse_args()
    out = []
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        h = xmit_hash(bytes.fromhex(line), args.policy)
        out.append(f"{h % args.members} 0x{h:08x}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
