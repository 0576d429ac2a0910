#!/usr/bin/env bash
# The workstation cluster's network setup, run before k0s starts: a host-only address, and a guard
# that keeps the LAN away from what k0s cannot be told to bind to loopback.
#
# The host-only address (10.255.255.254 on the loopback interface) is what the Kubernetes API and
# the kubelet bind to (k0s/workstation.yaml). Why not 127.0.0.1: Kubernetes refuses a loopback
# address as the API's endpoint, so the kubernetes Service would have no endpoint, pods (Flux,
# CoreDNS) could not reach the API, and k0s's worker would never start. Why not the LAN address: a
# laptop's LAN address changes at every cafe, and anything bound to it answers the whole LAN.
#
# The guard (iptables chain K0S-WORKSTATION-GUARD, jumped to from INPUT) admits only this machine
# (lo) and its pods (the pod CIDR) to:
#   - the host-only address: Linux accepts a packet for any local address on any interface, so a
#     LAN host that routes 10.255.255.254 through this machine would otherwise reach the API;
#   - kube-proxy's health endpoint (10256) and kube-router's (20244), which k0s binds to every
#     address with no setting to change it.
#
#   sudo k0s/workstation-network.sh up      # before k0s starts (k0s/k0s-workstation-network.service)
#   sudo k0s/workstation-network.sh down
set -euo pipefail
ADDRESS=${K0S_HOST_ADDRESS:-10.255.255.254} # = spec.api.address in k0s/workstation.yaml
POD_CIDR=${K0S_POD_CIDR:-10.244.0.0/16}     # = k0s's default spec.network.podCIDR
UNBINDABLE_PORTS=10256,20244
CHAIN=K0S-WORKSTATION-GUARD

case ${1:-} in
  up)
    ip -4 addr show dev lo | grep -q " $ADDRESS/32 " || ip addr add "$ADDRESS/32" dev lo
    iptables -N "$CHAIN" 2>/dev/null || iptables -F "$CHAIN"
    iptables -A "$CHAIN" -i lo -j RETURN
    iptables -A "$CHAIN" -s "$POD_CIDR" -j RETURN
    iptables -A "$CHAIN" -d "$ADDRESS/32" -j DROP
    iptables -A "$CHAIN" -p tcp -m multiport --dports "$UNBINDABLE_PORTS" -j DROP
    iptables -C INPUT -j "$CHAIN" 2>/dev/null || iptables -I INPUT -j "$CHAIN"
    ;;
  down)
    while iptables -C INPUT -j "$CHAIN" 2>/dev/null; do iptables -D INPUT -j "$CHAIN"; done
    iptables -F "$CHAIN" 2>/dev/null && iptables -X "$CHAIN"
    ip addr del "$ADDRESS/32" dev lo 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
