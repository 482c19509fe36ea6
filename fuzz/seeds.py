"""Seeds each fuzz target's corpus (fuzz/corpus/TARGET, not committed) from the frames
recorded on the testbeds (fuzz/captures/*.pcap, with VLAN-tagged copies), the import
samples (tests/samples) and a few requests, options and configs written here."""
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def frames(path):
    """The frames of a classic pcap file (Ethernet link type)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    at = 24
    while at + 16 <= len(data):
        _, _, incl, _ = struct.unpack(order + "IIII", data[at:at + 16])
        at += 16
        yield data[at:at + incl]
        at += incl


def tagged(frame, vid=100):
    """The frame with an 802.1Q tag after the MACs."""
    return frame[:12] + struct.pack(">HH", 0x8100, vid) + frame[12:]


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    captures = os.path.join(ROOT, "fuzz", "captures")
    n = 0
    for pcap in sorted(os.listdir(captures)):
        if not pcap.endswith(".pcap"):
            continue
        for i, frame in enumerate(frames(os.path.join(captures, pcap))):
            for kind, f in (("", frame), ("-vlan", tagged(frame))):
                name = f"{pcap[:-5]}-{i}{kind}"
                put("frame", name, f)
                put("hash_frame", name, f.hex())
                # As the TAP hands a TCP super-frame over: partial checksum, TSO at 100 bytes.
                put("offload", name, struct.pack("<BBHHHH", 1, 1, 0, 100, 34, 16) + f)
                ethertype = f[12:14]
                if ethertype == b"\x88\x09":
                    put("slow_protocol", name, f)
                if ethertype in (b"\x08\x06", b"\x86\xdd", b"\x81\x00"):
                    put("neighbour", name, f)
                n += 1
    samples = os.path.join(ROOT, "tests", "samples")
    names = ["ifcfg-bond0", "bonding.conf", "runbook.sh", "25-bond0.netdev",
             "25-bond0.network", "interfaces"]
    for dirpath, _, files in os.walk(samples):
        for fname in files:
            with open(os.path.join(dirpath, fname), "rb") as f:
                text = f.read()
            pick = next((i for i, s in enumerate(names) if fname.startswith(s[:5])), 0)
            put("import", f"{os.path.basename(dirpath)}-{fname}", bytes([pick]) + text)
    for i, o in enumerate([
        "mode=802.3ad miimon=100 lacp_rate=fast xmit_hash_policy=layer3+4",
        "mode=active-backup,miimon=100,primary=m0,primary_reselect=failure,fail_over_mac=follow",
        "mode=balance-alb arp_interval=100 arp_ip_target=10.0.0.1,10.0.0.2 arp_validate=all",
        "mode=4 ad_select=count ad_actor_system=02:00:00:00:00:01 min_links=2",
        "mode=balance-rr packets_per_slave=0 prio=m1:10 queue_id=m0:2",
        "updelay=200 downdelay=200 miimon=100 ns_ip6_target=fd00::1 num_grat_arp=3",
    ]):
        put("options", f"o{i}", o)
    put("config", "c0", '[bond.bond0]\nmembers = ["m0", "m1"]\nmode = "802.3ad"\n'
        'miimon = 100\n[bond.bond0.engine]\nworkers = 2\ncores = [1, 0]\n')
    put("config", "c1", 'run_dir = "/run/x"\nmetrics = "127.0.0.1:9464"\n[bond.b]\n'
        'members = ["eth0"]\noptions = "mode=active-backup,miimon=100"\nprio = { eth0 = 1 }\n')
    for i, r in enumerate(["status\n", "status-json\n", "set miimon 100\n",
                           "set slaves +m2\n", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                           "HEAD /metrics?x=1 HTTP/1.0\n\n"]):
        put("control", f"r{i}", r)
    print(f"seeds: {n} frames from fuzz/captures, samples, options, configs, requests")


if __name__ == "__main__":
    sys.exit(main())
