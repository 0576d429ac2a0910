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

ENGINE=(debian-packages pulumi k8s-provider kubernetes flux-install helm cert-manager-chart)
NODE=("${ENGINE[@]}" kine containerd cni-plugins node-components sample-app flux-controllers traefik monitoring sops charts images)
# The SSH-host rung: etcd and kube-apiserver for the API server its k0s test double answers from.
SSH=(debian-packages kubernetes droplet-rootfs k0s-test-double)

targets=()
for arg in "${@:-engine}"; do
  case $arg in
    engine) targets+=("${ENGINE[@]}") ;;
    node) targets+=("${NODE[@]}") ;;
    ssh) targets+=("${SSH[@]}") ;;
    all) targets+=("${NODE[@]}" "${SSH[@]}") ;;
    *) targets+=("$arg") ;;
  esac
done

T0=$(now)
for target in "${targets[@]}"; do
  case $target in
    debian-packages) ensure_debian_packages "${DEBIAN_PACKAGES[@]}" ;;
    pulumi) build_pulumi ;;
    k8s-provider) build_k8s_provider ;;
    kubernetes) build_kubernetes ;;
    flux-install) build_flux_install ;;
    cert-manager-chart) build_cert_manager_chart ;;
    kine) build_kine ;;
    containerd) build_containerd ;;
    cni-plugins) build_cni_plugins ;;
    node-components) build_node_components ;;
    sample-app) build_sample_app ;;
    flux-controllers) build_flux_controllers ;;
    traefik) build_traefik ;;
    monitoring) build_monitoring ;;
    sops) build_sops ;;
    helm) build_helm ;;
    charts) build_charts ;;
    images) build_images ;;
    droplet-rootfs) build_droplet_rootfs ;;
    k0s-test-double) build_k0s_test_double ;;
    *) log "unknown target: $target"; exit 2 ;;
  esac
done
log "done in $(elapsed "$T0"); outputs in $CACHE"
