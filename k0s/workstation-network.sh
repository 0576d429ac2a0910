#!/usr/bin/env bash
# The workstation cluster's network setup, run before k0s starts: a host-only address, and a guard
# that keeps every other network away from what k0s cannot be told to bind to loopback.
#
# The host-only address (10.255.255.254 on the loopback interface) is what the Kubernetes API and
# the kubelet bind to (k0s/workstation.yaml). Why not 127.0.0.1: Kubernetes refuses a loopback
# address as the API's endpoint, so the kubernetes Service would have no endpoint, pods (Flux,
# CoreDNS) could not reach the API, and k0s's worker would never start. Why not the LAN address: a
# laptop's LAN address changes at every cafe, and anything bound to it answers the whole LAN.
#
# The guard is an nftables table of its own (inet: IPv4 and IPv6 alike), so no other firewall's
# reload touches it: ufw, firewalld and `iptables-restore` rewrite only their own tables and
# chains. The one thing that removes it, `nft flush ruleset` (nftables.service's own reload, with
# Debian's default /etc/nftables.conf), is followed by `up` again (k0s/k0s-workstation-network.conf,
# a drop-in for nftables.service). It trusts interfaces, not addresses (a LAN host can forge a
# pod's address, not arrive on the pod bridge), and only drops, so it never opens what another
# firewall closes:
#   - input, from anything but loopback and the pod bridge: the host-only address, loopback
#     addresses arriving on another interface (kube-proxy sets route_localnet for its localhost
#     NodePorts), and kube-proxy's (10256) and kube-router's (20244) health ports, which k0s binds
#     to every IPv4 and IPv6 address, link-local included, with no setting to change it;
#   - forward, new connections into the pod and service ranges from anything but the pod bridge:
#     a LAN host that routes them through this machine would otherwise reach every pod.
#
#   sudo k0s/workstation-network.sh up      # before k0s starts (k0s/k0s-workstation-network.service)
#   sudo k0s/workstation-network.sh down
set -euo pipefail
ADDRESS=${K0S_HOST_ADDRESS:-10.255.255.254}  # = spec.api.address in k0s/workstation.yaml
POD_CIDR=${K0S_POD_CIDR:-10.244.0.0/16}      # = k0s's default spec.network.podCIDR
SERVICE_CIDR=${K0S_SERVICE_CIDR:-10.96.0.0/12} # = k0s's default spec.network.serviceCIDR
POD_BRIDGE=${K0S_POD_BRIDGE:-kube-bridge}     # kube-router's bridge, k0s's default CNI
TABLE=k0s_workstation_guard

# Before the filter tables (priority 0) of iptables-nft, ufw and firewalld: a drop here is final.
guard() {
  cat <<EOF
table inet $TABLE {
  chain input {
    type filter hook input priority filter - 10; policy accept;
    iifname "lo" accept
    iifname "$POD_BRIDGE" ip saddr $POD_CIDR accept
    ip daddr $ADDRESS drop
    ip daddr 127.0.0.0/8 drop
    ip6 daddr ::1 drop
    tcp dport { 10256, 20244 } drop
  }
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ct state established,related accept
    iifname "$POD_BRIDGE" accept
    ip daddr { $POD_CIDR, $SERVICE_CIDR } drop
  }
}
EOF
}

case ${1:-} in
  up)
    ip -4 addr show dev lo | grep -q " $ADDRESS/32 " || ip addr add "$ADDRESS/32" dev lo
    # One transaction: the old table goes and the new one comes at once, so no packet slips between.
    { nft list table inet "$TABLE" >/dev/null 2>&1 && echo "delete table inet $TABLE"; guard; } | nft -f -
    ;;
  down)
    nft delete table inet "$TABLE" 2>/dev/null || true
    ip addr del "$ADDRESS/32" dev lo 2>/dev/null || true
    ;;
  -h | --help)
    echo "usage: $0 up|down"
    echo "  up    the host-only address $ADDRESS on lo and the nftables guard (table inet $TABLE), at once"
    echo "  down  both removed (what the k0s-workstation-network unit runs when it stops)"
    ;;
  *)
    echo "usage: $0 up|down (--help says what each does)" >&2
    exit 2
    ;;
esac
