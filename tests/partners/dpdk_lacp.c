// SPDX-License-Identifier: Apache-2.0
// A second, independent 802.3ad implementation to negotiate with: DPDK's bonding PMD in
// mode 4 over two af_packet ports, polled every millisecond (testpmd calls tx_burst only when
// data arrives, so its LACPDUs never leave). Built and run by tests/lacp_dpdk.rs.
//
//   dpdk_lacp IFACE0 IFACE1 SECONDS [EAL args...]
//
// Prints, once a second, one line per member: "member N actor 0xSS partner 0xSS" (the LACP
// state bits each side advertises), and "frames N" (what the bond received).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_eth_bond.h>
#include <rte_eth_bond_8023ad.h>
#include <rte_mbuf.h>

static volatile int stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int start_port(uint16_t port, struct rte_mempool *pool)
{
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    if (rte_eth_dev_configure(port, 1, 1, &conf) != 0)
        return -1;
    if (rte_eth_rx_queue_setup(port, 0, 512, rte_eth_dev_socket_id(port), NULL, pool) != 0)
        return -1;
    if (rte_eth_tx_queue_setup(port, 0, 512, rte_eth_dev_socket_id(port), NULL) != 0)
        return -1;
    return rte_eth_dev_start(port);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s IFACE0 IFACE1 SECONDS [EAL args...]\n", argv[0]);
        return 2;
    }
    const char *ifaces[2] = {argv[1], argv[2]};
    double seconds = atof(argv[3]);
    char vdev0[128], vdev1[128];
    snprintf(vdev0, sizeof(vdev0), "net_af_packet0,iface=%s", ifaces[0]);
    snprintf(vdev1, sizeof(vdev1), "net_af_packet1,iface=%s", ifaces[1]);
    char *eal[32] = {argv[0], "--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                     "--log-level", "lib.eal:error", "--vdev", vdev0, "--vdev", vdev1};
    int n = 12;
    for (int i = 4; i < argc && n < 31; i++)
        eal[n++] = argv[i];
    if (rte_eal_init(n, eal) < 0) {
        fprintf(stderr, "dpdk_lacp: EAL init failed\n");
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    struct rte_mempool *pool =
        rte_pktmbuf_pool_create("pool", 4096, 128, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    uint16_t members[2];
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof(name), "net_af_packet%d", i);
        if (!pool || rte_eth_dev_get_port_by_name(name, &members[i]) != 0) {
            fprintf(stderr, "dpdk_lacp: no port %s\n", name);
            return 1;
        }
    }
    int bond = rte_eth_bond_create("net_bonding0", BONDING_MODE_8023AD, rte_socket_id());
    if (bond < 0) {
        fprintf(stderr, "dpdk_lacp: creating the mode-4 bond failed\n");
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        if (rte_eth_bond_slave_add(bond, members[i]) != 0) {
            fprintf(stderr, "dpdk_lacp: adding member %d failed\n", i);
            return 1;
        }
    }
    if (start_port(bond, pool) != 0) {
        fprintf(stderr, "dpdk_lacp: starting the bond failed\n");
        return 1;
    }
    /* Count every frame that arrives, broadcasts included (mode 4 filters by MAC). */
    rte_eth_promiscuous_enable(bond);
    rte_eth_allmulticast_enable(bond);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    double last_report = -1;
    unsigned long frames = 0;
    struct rte_mbuf *bufs[32];
    while (!stop) {
        uint16_t got = rte_eth_rx_burst(bond, 0, bufs, 32);
        frames += got;
        for (uint16_t i = 0; i < got; i++)
            rte_pktmbuf_free(bufs[i]);
        /* LACPDUs leave from the bond's TX path: call it even with nothing to send. */
        rte_eth_tx_burst(bond, 0, bufs, 0);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double t = (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
        if (t >= seconds)
            break;
        if (t - last_report >= 1.0) {
            last_report = t;
            for (int i = 0; i < 2; i++) {
                struct rte_eth_bond_8023ad_slave_info info;
                if (rte_eth_bond_8023ad_slave_info(bond, members[i], &info) == 0)
                    printf("member %d actor 0x%02x partner 0x%02x\n", i, info.actor_state,
                           info.partner_state);
            }
            printf("frames %lu\n", frames);
            fflush(stdout);
        }
        usleep(1000);
    }
    rte_eth_dev_stop(bond);
    rte_eal_cleanup();
    return 0;
}
