#!/usr/bin/env bash
# Moves itself into the node's cgroups, then enters fresh namespaces and runs boot.sh as PID 1 of
# the new PID namespace. The cgroup namespace makes those cgroups the root the node sees, so what
# the kubelet and containerd create stays beneath them.
#
#   enter.sh --cgroup PATH... -- boot.sh arguments...
set -euo pipefail
while [[ $1 == --cgroup ]]; do
  echo $$ >"$2/cgroup.procs"
  shift 2
done
shift
exec unshare --cgroup --mount --net --uts --pid --fork --kill-child --mount-proc --propagation private -- "$@"
