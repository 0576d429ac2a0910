#!/usr/bin/env bash
# Moves itself into the given cgroups (see cgroups.ts), then runs the command: whatever the command
# starts lands beneath them, so the rung can find and remove it all when it stops.
#
#   in-cgroups.sh --cgroup PATH... -- command...
set -euo pipefail
while [[ $1 == --cgroup ]]; do
  echo $$ >"$2/cgroup.procs"
  shift 2
done
shift
exec "$@"
