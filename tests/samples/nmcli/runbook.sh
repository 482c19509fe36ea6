# The runbook's bond, as NetworkManager would build it
nmcli connection add type bond con-name uplink ifname bond0 bond.options "mode=active-backup,miimon=100"
nmcli connection add type ethernet con-name uplink-port0 ifname m0 master uplink
nmcli connection add type bond-slave con-name uplink-port1 ifname m1 master uplink
nmcli connection modify uplink +bond.options "primary=m0"
nmcli connection modify uplink ipv4.addresses 10.77.0.1/24 ipv4.method manual
