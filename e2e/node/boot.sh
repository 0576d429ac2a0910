#!/usr/bin/env bash
# PID 1 of the node rung's test node (a test cluster of k0s's components, not k0s), started by node.ts inside fresh mount, network, UTS, PID and cgroup
# namespaces, already placed in the node's own cgroups. Everything it changes lives in those
# namespaces or under the node's work directory, so the machine is left as it was when it ends.
#
#   boot.sh WORK_DIR NODE_ADDRESS/PREFIX GATEWAY -- command...
set -euo pipefail
work=$1 address=$2 gateway=$3
shift 4

# Every host directory the components, containerd and the kubelet write to gets a private overlay or tmpfs.
for dir in etc var opt usr; do
  mkdir -p "$work/overlay/$dir.upper" "$work/overlay/$dir.work"
  mount -t overlay "node-$dir" -o "lowerdir=/$dir,upperdir=$work/overlay/$dir.upper,workdir=$work/overlay/$dir.work" "/$dir"
done
mount -t tmpfs -o mode=0755 node-run /run
# The data dir, as k0s's (containerd's snapshots among it), on the work dir's own filesystem: overlayfs
# cannot stack container layers on top of another overlay.
mkdir -p /var/lib/k0s /run/k0s/kine
mount --bind "$work/data" /var/lib/k0s
# kube-proxy and kube-router mount the host's /lib/modules; this kernel has no module tree.
mkdir -p /usr/lib/modules

# A sysfs of this network namespace, and cgroup hierarchies rooted at this node's cgroups.
mount -t sysfs node-sysfs /sys
mount -t tmpfs -o mode=0755 node-cgroup /sys/fs/cgroup
while read -r controller; do
  mkdir -p "/sys/fs/cgroup/$controller"
  mount -t cgroup -o "$controller" "node-$controller" "/sys/fs/cgroup/$controller"
done < "$work/cgroup-controllers"
mkdir -p /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd node-systemd /sys/fs/cgroup/systemd
mount -t cgroup2 node-unified /sys/fs/cgroup/unified

hostname workstation
rm -f /etc/hosts /etc/resolv.conf
echo "127.0.0.1 localhost workstation" > /etc/hosts
ip link set lo up
# node.ts moves the node's end of the veth in once this process exists.
for _ in $(seq 100); do ip link show eth0 >/dev/null 2>&1 && break; sleep 0.1; done
ip addr add "$address" dev eth0
ip link set eth0 up
ip route add default via "$gateway"
echo "nameserver $gateway" > /etc/resolv.conf

# What a workstation does at boot before its cluster starts (k0s/k0s-workstation-network.service).
"$(dirname "$0")/../../k0s/workstation-network.sh" up

exec tini -s -g -- "$@"
