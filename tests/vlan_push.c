// A tc program for tests/vlan.rs: every slow-protocol frame leaving the device gets VLAN 100
// as offload metadata (bpf_skb_vlan_push), as a NIC with rx-vlan offload would hand it over.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int push_vlan_100(struct __sk_buff *skb)
{
    if (skb->protocol == __builtin_bswap16(0x8809))
        bpf_skb_vlan_push(skb, __builtin_bswap16(0x8100), 100);
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
