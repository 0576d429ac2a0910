#!/usr/bin/env bash
# Builds, from pinned inputs served by registries (Go modules, Debian packages), everything the
# end-to-end rungs run: the Pulumi engine (CLI, Kubernetes provider), the Kubernetes binaries, the
# node kit (k0s's components, locally built images, Flux's install manifest, the chart repository)
# and the SSH host's kit. A target is rebuilt only when its stamp (a hash of its inputs) changes, so
# a warm run takes seconds.
#
# Usage: e2e/toolchain/build.sh [target|group...]
#   groups:  engine (the API-server rung), node (the node rung; includes engine),
#            ssh (the SSH-host rung), all
#   targets: the names in the case statement below
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HERE/engine.sh"
source "$HERE/node.sh"
source "$HERE/images.sh"
source "$HERE/ssh.sh"

ENGINE=(debian-packages pulumi k8s-provider kubernetes flux-install helm cert-manager-chart gitops-check)
NODE=("${ENGINE[@]}" kine containerd cni-plugins node-components sample-app git-ssh-server flux-controllers traefik monitoring alerting sops charts images)
# The SSH-host rung: etcd and kube-apiserver for the API server its k0s test double answers from.
SSH=(debian-packages kubernetes droplet-rootfs k0s-test-double s3-test-server)

# `all` builds in two lanes side by side, then what needs both: one Go build leaves a core idle
# while it downloads modules or links, and debootstrap mostly waits on the network. Each lane holds
# whole targets, and no target is in both, so the lanes never write the same output. The lanes are
# balanced by a cold run's times (pulumi and the Kubernetes provider alone take about 45 min on 2
# cores); what needs helm waits for both.
LANE_ENGINE=(pulumi k8s-provider traefik sops alerting gitops-check)
LANE_NODE=(droplet-rootfs kubernetes kine containerd cni-plugins node-components sample-app git-ssh-server k0s-test-double s3-test-server helm flux-install flux-controllers monitoring)
AFTER_LANES=(cert-manager-chart charts images)

# build_target NAME -> builds one target, holding its lock: another build.sh on this machine (a rung's
# own, started beside `all`) waits for the target rather than building it twice, then finds it up to date.
build_target() {
  (
    flock 9
    build_one "$1"
  ) 9>"$STAMPS/$1.lock"
}

build_one() {
  case $1 in
    debian-packages) ensure_debian_packages "${DEBIAN_PACKAGES[@]}" ;;
    pulumi) build_pulumi ;;
    k8s-provider) build_k8s_provider ;;
    kubernetes) build_kubernetes ;;
    flux-install) build_flux_install ;;
    cert-manager-chart) build_cert_manager_chart ;;
    gitops-check) build_gitops_check ;;
    kine) build_kine ;;
    containerd) build_containerd ;;
    cni-plugins) build_cni_plugins ;;
    node-components) build_node_components ;;
    sample-app) build_sample_app ;;
    git-ssh-server) build_git_ssh_server ;;
    flux-controllers) build_flux_controllers ;;
    traefik) build_traefik ;;
    monitoring) build_monitoring ;;
    alerting) build_alerting ;;
    sops) build_sops ;;
    helm) build_helm ;;
    charts) build_charts ;;
    images) build_images ;;
    droplet-rootfs) build_droplet_rootfs ;;
    k0s-test-double) build_k0s_test_double ;;
    s3-test-server) build_s3_test_server ;;
    *) log "unknown target: $1"; exit 2 ;;
  esac
}

build_targets() {
  local target
  for target in "$@"; do build_target "$target"; done
}

# build_lanes -> the `all` group: every target of NODE and SSH, the lanes concurrently.
build_lanes() {
  build_target debian-packages
  local engine node status=0
  (build_targets "${LANE_ENGINE[@]}") &
  engine=$!
  (build_targets "${LANE_NODE[@]}") &
  node=$!
  wait "$engine" || status=1
  wait "$node" || status=1
  [[ $status == 0 ]] || { log "a lane failed (see above)"; exit 1; }
  build_targets "${AFTER_LANES[@]}"
}

T0=$(now)
targets=()
for arg in "${@:-engine}"; do
  case $arg in
    engine) targets+=("${ENGINE[@]}") ;;
    node) targets+=("${NODE[@]}") ;;
    ssh) targets+=("${SSH[@]}") ;;
    all) build_lanes ;;
    *) targets+=("$arg") ;;
  esac
done
build_targets "${targets[@]}"
log "done in $(elapsed "$T0"); outputs in $CACHE"
