// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
// bond-dp's XDP program, attached to every member interface.
//
// Per frame: look up the member (by ingress ifindex). Slow-protocol frames (LACPDU, marker)
// go to the kernel stack, where bond-dp's control path reads them. Frames on a member that
// must not deliver (inactive backup, non-collecting 802.3ad port) are dropped and counted,
// but for ARP when the ARP monitor validates it (the data plane reads those, then drops them).
// Everything else is redirected into the member queue's AF_XDP socket.
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
    ACTION_DELIVER = 0,        /* into the AF_XDP socket */
    ACTION_DROP = 1,           /* inactive: drop */
    ACTION_DROP_KEEP_ARP = 2,  /* inactive, but the ARP monitor reads its ARP and ND */
};

#define ETH_P_ARP_BE __builtin_bswap16(0x0806)
#define ETH_P_IPV6_BE __builtin_bswap16(0x86dd)
#define ETH_P_8021Q_BE __builtin_bswap16(0x8100)
#define IPPROTO_ICMPV6_ 58
#define ND_NEIGHBOR_SOLICIT 135
#define ND_NEIGHBOR_ADVERT 136

/* What the ARP monitor reads: ARP, or an IPv6 neighbour solicitation or advertisement,
 * untagged or in one 802.1Q tag. */
static __always_inline int is_neighbour_msg(struct ethhdr *eth, void *data_end)
{
    if ((void *)(eth + 1) > data_end)
        return 0;
    __be16 proto = eth->h_proto;
    __u8 *l3 = (void *)(eth + 1);
    if (proto == ETH_P_8021Q_BE) {
        if ((void *)(l3 + 4) > data_end)
            return 0;
        proto = *(__be16 *)(l3 + 2);
        l3 += 4;
    }
    if (proto == ETH_P_ARP_BE)
        return 1;
    /* IPv6 header (40 bytes), then the ICMPv6 type. */
    if (proto != ETH_P_IPV6_BE || (void *)(l3 + 41) > data_end)
        return 0;
    return l3[6] == IPPROTO_ICMPV6_ && (l3[40] == ND_NEIGHBOR_SOLICIT || l3[40] == ND_NEIGHBOR_ADVERT);
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

static __always_inline void count(__u32 slot, __u32 what)
{
    __u32 key = slot * CNT_MAX + what;
    __u64 *c = bpf_map_lookup_elem(&counters, &key);
    if (c)
        *c += 1;
}

SEC("xdp")
int bond_xdp(struct xdp_md *ctx)
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
    if (st->action == ACTION_DROP ||
        (st->action == ACTION_DROP_KEEP_ARP && !is_neighbour_msg(eth, data_end))) {
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
