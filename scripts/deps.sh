#!/usr/bin/env bash
# Installs what bond-dp needs to build and test on a fresh Debian machine, and only what is
# missing: the BPF toolchain (clang, llvm, libelf, zlib, libpcap, pkg-config, m4),
# iproute2 and tcpdump for the testbeds, python3 for the kernel-hash model, Open vSwitch as the switch peer
# (static LAG and LACP). With --bench, also what the end-to-end benchmarks compare against and
# drive: DPDK's testpmd (dpdk-dev) with its AF_XDP and AF_PACKET drivers, and tcpreplay.
# Safe to run repeatedly.
set -euo pipefail

packages=(clang llvm libbpf-dev libelf-dev zlib1g-dev libpcap-dev pkg-config m4 make libclang-dev iproute2 iputils-ping iperf3 ethtool python3 procps tcpdump man-db
    openvswitch-switch)
if [[ ${1:-} == --bench ]]; then
    packages+=(dpdk-dev librte-net-af-xdp23 librte-net-af-packet23 librte-net-bond23 tcpreplay)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        echo "deps: need root to install packages (run as root, or install them yourself)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "deps: cargo not found: install a Rust toolchain (rustup)" >&2; exit 1; }
