/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* The limits bond-dp's XDP program and its Rust side share. build.rs turns every
 * `#define NAME VALUE` here into a Rust constant, so there is one definition of each. */
#ifndef BOND_DP_LIMITS_H
#define BOND_DP_LIMITS_H

/* Member slots in the program's maps: the members and, with an access port, that port. */
#define MAX_MEMBERS 64
/* RX queues served per member; a member's sockets are at slot * MAX_QUEUES + queue. */
#define MAX_QUEUES 64
/* Counters kept per member slot (enum counter in bond_xdp.c). */
#define COUNTERS_PER_MEMBER 5
/* ARP and NS monitor targets (arp_ip_target and ns_ip6_target take 16 each, as the
 * kernel's). */
#define MAX_TARGETS 32
/* Bytes of a neighbour message copied for the monitor: an Ethernet header and up to 128
 * more (two VLAN tags, IPv6, an ICMPv6 advertisement with its options). */
#define NEIGHBOUR_COPY 142

#endif
