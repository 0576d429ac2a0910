#!/usr/bin/env bash
# Builds, from pinned inputs, everything the end-to-end rungs run: the Pulumi engine (CLI, Node.js
# language host, Kubernetes provider), the Kubernetes binaries, and the node kit (k0s, its
# components, locally built images, Flux's install manifest, the chart repository). A target is
# rebuilt only when its stamp (a hash of its inputs) changes, so a warm run takes seconds.
#
# Usage: e2e/toolchain/build.sh [target|group...]
#   groups:  engine (the API-server rung), node (the k0s-node rung; includes engine),
#            ssh (the SSH-host rung; includes node), all
#   targets: the names in the case statement below
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HERE/engine.sh"
source "$HERE/node.sh"
source "$HERE/images.sh"
source "$HERE/ssh.sh"

ENGINE=(debian-packages pulumi language-nodejs k8s-provider kubernetes flux-install helm cert-manager-chart)
NODE=("${ENGINE[@]}" k0s kine node-components flux-controllers traefik podinfo monitoring sops charts images)
SSH=("${NODE[@]}" command-provider k0s-embedded droplet-rootfs)

targets=()
for arg in "${@:-engine}"; do
  case $arg in
    engine) targets+=("${ENGINE[@]}") ;;
    node) targets+=("${NODE[@]}") ;;
    ssh | all) targets+=("${SSH[@]}") ;;
    *) targets+=("$arg") ;;
  esac
done

T0=$(now)
for target in "${targets[@]}"; do
  case $target in
    debian-packages) ensure_debian_packages "${DEBIAN_PACKAGES[@]}" ;;
    pulumi) build_pulumi ;;
    language-nodejs) build_language_nodejs ;;
    k8s-provider) build_k8s_provider ;;
    kubernetes) build_kubernetes ;;
    flux-install) build_flux_install ;;
    cert-manager-chart) build_cert_manager_chart ;;
    k0s) build_k0s ;;
    kine) build_kine ;;
    node-components) build_node_components ;;
    flux-controllers) build_flux_controllers ;;
    traefik) build_traefik ;;
    podinfo) build_podinfo ;;
    monitoring) build_monitoring ;;
    sops) build_sops ;;
    helm) build_helm ;;
    charts) build_charts ;;
    images) build_images ;;
    command-provider) build_command_provider ;;
    k0s-embedded) build_k0s_embedded ;;
    droplet-rootfs) build_droplet_rootfs ;;
    *) log "unknown target: $target"; exit 2 ;;
  esac
done
log "done in $(elapsed "$T0"); outputs in $CACHE"
