#!/usr/bin/env bash
# The node's process supervisor, run by boot.sh (under tini) inside the node's namespaces: starts
# each component of the test cluster of k0s's components from WORK_DIR/components/<n>-<name>.argv
# (its command line, one argument per line, written by node.ts from k0sComponents.ts), in order,
# each logging to WORK_DIR/logs/<name>.log. A `.wait` sibling names a file (a glob) to wait for
# before starting the next one. As k0s's own supervisor does, a component that exits is started
# again (the controller-manager exits while the API server's bootstrap roles do not exist yet); one
# that keeps exiting stops the node, so a test sees it dead at once instead of timing out.
#
#   components.sh WORK_DIR
set -euo pipefail
work=$1
mkdir -p "$work/logs"

supervise() {
  local name=$1 restarts=0; shift
  while true; do
    "$@" >>"$work/logs/$name.log" 2>&1 && status=0 || status=$?
    restarts=$((restarts + 1))
    echo "$name exited with status $status (restart $restarts)"
    [[ $restarts -lt 10 ]] || { echo "$name keeps exiting; stopping the node"; return 1; }
    sleep 2
  done
}

for argv in "$work"/components/*.argv; do
  name=$(basename "$argv" .argv)
  name=${name#*-}
  mapfile -t command <"$argv"
  supervise "$name" "${command[@]}" &
  echo "started $name"
  if [[ -f ${argv%.argv}.wait ]]; then
    ready=$(cat "${argv%.argv}.wait")
    # A glob: kine's socket is named after its listen address.
    for _ in $(seq 1200); do compgen -G "$ready" >/dev/null && break; sleep 0.1; done
    compgen -G "$ready" >/dev/null || { echo "$name: $ready did not appear"; exit 1; }
  fi
done
set +e
wait -n
exit 1
