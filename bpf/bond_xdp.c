// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
// bond-dp's XDP program, attached to every member interface.
//
// Per frame: look up the member (by ingress ifindex). Slow-protocol frames (LACPDU, marker)
// go to the kernel stack, where bond-dp's control path reads them. ARP and neighbour
// discovery to or from one of the ARP/NS monitor's targets is copied into a ring buffer the
// monitor reads, so that no storm in the data queues can hide a reply from it. Frames on a
// member that must not deliver (inactive backup, non-collecting 802.3ad port) are dropped
// and counted. Everything else is redirected into the member queue's AF_XDP socket.
//
// When no socket takes a frame (none bound on its queue, or bond-dp's sockets are gone) the
// frame goes to the kernel stack rather than being dropped: a bond-dp that died must never
// leave its members black holes (the kernel also detaches the program then, through its
// bpf_link).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#include "limits.h"

#define ETH_P_SLOW 0x8809

enum member_action {
    ACTION_DELIVER = 0,         /* into the AF_XDP socket */
    ACTION_DROP = 1,            /* inactive: drop */
    ACTION_DELIVER_UNICAST = 2, /* an inactive balance-alb member: unicast only, as the
                                 * kernel's bond_should_deliver_exact_match() */
};

#define ETH_P_ARP_BE __builtin_bswap16(0x0806)
#define ETH_P_IPV6_BE __builtin_bswap16(0x86dd)
#define ETH_P_8021Q_BE __builtin_bswap16(0x8100)
#define IPPROTO_ICMPV6_ 58
#define ND_NEIGHBOR_SOLICIT 135
#define ND_NEIGHBOR_ADVERT 136

/* An address as the targets map keys it: IPv6, or IPv4 mapped (::ffff:a.b.c.d). */
struct addr {
    __u8 bytes[16];
};

/* The addresses a neighbour message speaks of: ARP's sender and target; for IPv6 neighbour
 * discovery, source, destination and the ICMPv6 target. Returns how many (0: not one). */
static __always_inline int neighbour_addrs(struct ethhdr *eth, void *data_end, struct addr *a)
{
    if ((void *)(eth + 1) > data_end)
        return 0;
    __be16 proto = eth->h_proto;
    __u8 *l3 = (void *)(eth + 1);
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (proto != ETH_P_8021Q_BE)
            break;
        if ((void *)(l3 + 4) > data_end)
            return 0;
        proto = *(__be16 *)(l3 + 2);
        l3 += 4;
    }
    if (proto == ETH_P_ARP_BE) {
        /* Ethernet/IPv4 ARP: sender IP at 14, target IP at 24. */
        if ((void *)(l3 + 28) > data_end)
            return 0;
        for (int i = 0; i < 2; i++) {
            __builtin_memset(a[i].bytes, 0, 10);
            a[i].bytes[10] = 0xff;
            a[i].bytes[11] = 0xff;
            __builtin_memcpy(&a[i].bytes[12], l3 + (i ? 24 : 14), 4);
        }
        return 2;
    }
    /* IPv6 header (40 bytes), ICMPv6 type, then the target address at 8. */
    if (proto != ETH_P_IPV6_BE || (void *)(l3 + 64) > data_end)
        return 0;
    if (l3[6] != IPPROTO_ICMPV6_ || (l3[40] != ND_NEIGHBOR_SOLICIT && l3[40] != ND_NEIGHBOR_ADVERT))
        return 0;
    __builtin_memcpy(a[0].bytes, l3 + 8, 16);
    __builtin_memcpy(a[1].bytes, l3 + 24, 16);
    __builtin_memcpy(a[2].bytes, l3 + 48, 16);
    return 3;
}

struct member_state {
    __u32 slot;   /* the member's index; its sockets are at slot * MAX_QUEUES + queue */
    __u32 action; /* enum member_action */
};

enum counter {
    CNT_REDIRECTED = 0,
    CNT_CONTROL = 1,
    CNT_INACTIVE = 2,
    CNT_NO_SOCKET = 3,
    CNT_NEIGHBOUR = 4, /* ARP and neighbour discovery, any: arp_validate=filter's traffic */
    CNT_MAX,
};
_Static_assert(CNT_MAX == COUNTERS_PER_MEMBER, "limits.h: COUNTERS_PER_MEMBER");

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, MAX_MEMBERS * MAX_QUEUES);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MAX_MEMBERS);
    __type(key, __u32); /* ifindex */
    __type(value, struct member_state);
} members SEC(".maps");

/* Per member slot and counter. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MAX_MEMBERS * CNT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

/* The ARP/NS monitor's targets; empty when it has none. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MAX_TARGETS);
    __type(key, struct addr);
    __type(value, __u8);
} targets SEC(".maps");

/* Neighbour messages for the monitor: the member slot, the frame's length, its start. */
struct neighbour_report {
    __u32 slot;
    __u32 len;
    __u8 frame[NEIGHBOUR_COPY];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} neighbours SEC(".maps");

static __always_inline void count(__u32 slot, __u32 what)
{
    __u32 key = slot * CNT_MAX + what;
    __u64 *c = bpf_map_lookup_elem(&counters, &key);
    if (c)
        *c += 1;
}

/* Copies the frame's start into the monitor's ring buffer (full: the monitor is behind, and
 * the message is lost as a probe lost on the wire would be). */
static __always_inline void report_neighbour(struct xdp_md *ctx, __u32 slot)
{
    __u32 len = ctx->data_end - ctx->data;
    if (len < ETH_HLEN)
        return;
    /* What follows the Ethernet header, bounded where the verifier sees it: in the register
     * the copy's length comes from (0 to 127, so the length is 14 to 141). */
    __u32 rest = len - ETH_HLEN;
    if (rest > NEIGHBOUR_COPY - ETH_HLEN - 1)
        rest = NEIGHBOUR_COPY - ETH_HLEN - 1;
    asm volatile("%[rest] &= %[mask]" : [rest] "+r"(rest) : [mask] "i"(NEIGHBOUR_COPY - ETH_HLEN - 1));
    struct neighbour_report *r = bpf_ringbuf_reserve(&neighbours, sizeof(*r), 0);
    if (!r)
        return;
    r->slot = slot;
    r->len = rest + ETH_HLEN;
    if (bpf_xdp_load_bytes(ctx, 0, r->frame, rest + ETH_HLEN) != 0) {
        bpf_ringbuf_discard(r, 0);
        return;
    }
    bpf_ringbuf_submit(r, 0);
}

static __always_inline int handle(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    __u32 ifindex = ctx->ingress_ifindex;
    struct member_state *st = bpf_map_lookup_elem(&members, &ifindex);
    if (!st)
        return XDP_PASS;

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) <= data_end && eth->h_proto == __builtin_bswap16(ETH_P_SLOW)) {
        count(st->slot, CNT_CONTROL);
        return XDP_PASS;
    }
    struct addr addrs[3];
    int n = neighbour_addrs(eth, data_end, addrs);
    if (n > 0) {
        count(st->slot, CNT_NEIGHBOUR);
        /* One lookup after another: the verifier refuses pointers combined. */
        int wanted = bpf_map_lookup_elem(&targets, &addrs[0]) != NULL;
        if (!wanted)
            wanted = bpf_map_lookup_elem(&targets, &addrs[1]) != NULL;
        if (!wanted && n > 2)
            wanted = bpf_map_lookup_elem(&targets, &addrs[2]) != NULL;
        if (wanted)
            report_neighbour(ctx, st->slot);
    }
    int multicast = (void *)(eth + 1) <= data_end && (eth->h_dest[0] & 1);
    if (st->action == ACTION_DROP || (st->action == ACTION_DELIVER_UNICAST && multicast)) {
        count(st->slot, CNT_INACTIVE);
        return XDP_DROP;
    }
    __u32 key = st->slot * MAX_QUEUES + ctx->rx_queue_index;
    if (ctx->rx_queue_index < MAX_QUEUES && bpf_map_lookup_elem(&xsks, &key)) {
        count(st->slot, CNT_REDIRECTED);
        return bpf_redirect_map(&xsks, key, XDP_PASS);
    }
    /* No socket bound on this queue: nothing in bond-dp would read the frame; the kernel
     * stack may. */
    count(st->slot, CNT_NO_SOCKET);
    return XDP_PASS;
}

SEC("xdp")
int bond_xdp(struct xdp_md *ctx)
{
    return handle(ctx);
}

/* The driver's RX VLAN offload metadata (veth, and NICs that implement it). Only a program
 * bound to one device may ask, so bond-dp loads this one per member where it can. */
extern int bpf_xdp_metadata_rx_vlan_tag(const struct xdp_md *ctx, __be16 *vlan_proto,
                                        __u16 *vlan_tci) __ksym;

/* bond_xdp for a device whose driver took the frame's VLAN tag off into metadata (a NIC with
 * rx-vlan offload, a veth behind a bridge): the tag goes back into the frame first, so the
 * host sees VLAN 100 as VLAN 100, not as untagged traffic. */
SEC("xdp")
int bond_xdp_vlan(struct xdp_md *ctx)
{
    __be16 proto;
    __u16 tci;
    if (bpf_xdp_metadata_rx_vlan_tag(ctx, &proto, &tci) == 0 && bpf_xdp_adjust_head(ctx, -4) == 0) {
        void *data = (void *)(long)ctx->data;
        void *data_end = (void *)(long)ctx->data_end;
        if (data + ETH_HLEN + 4 > data_end)
            return XDP_PASS;
        /* The MACs move 4 bytes to the front; the tag goes where they were. */
        __builtin_memmove(data, data + 4, 2 * ETH_ALEN);
        __be16 *tag = data + 2 * ETH_ALEN;
        tag[0] = proto;
        tag[1] = __builtin_bswap16(tci);
    }
    return handle(ctx);
}

/* The object is loaded under the GPL-2.0 side of its dual licence (SPDX line above): the
 * kernel lets only GPL-compatible programs call kfuncs such as the RX VLAN one. */
char LICENSE[] SEC("license") = "GPL";
