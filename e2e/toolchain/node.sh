# The node rung's kit: a test cluster of k0s's components (not k0s, which the Go module proxy
# refuses), each built from its served module at the version k0s v1.36.3+k0s.2 ships where that
# builds, and the components its pods run (sourced by build.sh). The Kubernetes binaries come from
# engine.sh's kubernetes target.
#
# Versions: kine 0.16.3, containerd 2.3.3, runc 1.4.3, CNI plugins 1.8.0, CoreDNS 1.14.6 and
# metrics-server v0.9.0 as k0s v1.36.3+k0s.2; kube-router v2.1.0 where k0s ships v2.10.0, whose
# module needs a github.com/vishvananda/netlink pseudo-version the proxy refuses (v2.1.0 is the
# newest release the proxy serves that builds).

KINE_VERSION=v0.16.3       # = kine/go.mod
CONTAINERD_VERSION=v2.3.3  # = containerd/go.mod
RUNC_VERSION=1.4.3         # = runc/go.mod
CNI_PLUGINS_VERSION=v1.8.0 # = cni-plugins/go.mod
KUBE_ROUTER_VERSION=v2.1.0 # = kube-router/go.mod
# The CNI plugins the node's CNI configuration (kube-router's bridge, e2e/node/k0sComponents.ts)
# and containerd's pod sandboxes call.
CNI_PLUGINS=(main/bridge ipam/host-local main/loopback meta/portmap)

# kine with SQLite (cgo), statically linked, as k0s's embedded-bins build makes it.
build_kine() {
  CGO_ENABLED=1 CGO_CFLAGS=-DSQLITE_USE_ALLOCA=1 GO_TAGS=nats \
    go_tool kine github.com/k3s-io/kine "-X github.com/k3s-io/kine/pkg/version.Version=$KINE_VERSION -extldflags=-static"
}

# containerd 2.3.3 (Kubernetes 1.36 ended support for containerd 1.x, so Debian's 1.6 will not do),
# its runc shim, and ctr (images are imported with it).
build_containerd() {
  local ldflags="-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
  go_tool containerd github.com/containerd/containerd/v2/cmd/containerd "$ldflags"
  go_tool containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 "$ldflags"
  go_tool containerd github.com/containerd/containerd/v2/cmd/ctr "$ldflags"
  build_runc
}

# runc needs cgo (its nsexec is C) and libseccomp (Debian's libseccomp-dev) for the seccomp profiles
# pods ask for (Flux's controllers run with RuntimeDefault); linked statically as upstream's release.
build_runc() {
  ensure_debian_packages libseccomp-dev
  CGO_ENABLED=1 GO_TAGS=seccomp,netgo,osusergo \
    go_tool runc github.com/opencontainers/runc "-X main.version=$RUNC_VERSION -extldflags=-static"
}

build_cni_plugins() {
  local plugin
  for plugin in "${CNI_PLUGINS[@]}"; do
    go_tool cni-plugins "github.com/containernetworking/plugins/plugins/$plugin" \
      "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION"
  done
}

# What the node's system pods run: CoreDNS, kube-router (the CNI and NetworkPolicy enforcer) and
# metrics-server.
build_node_components() {
  go_tool coredns github.com/coredns/coredns
  go_tool kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
  go_tool metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server \
    "-X k8s.io/client-go/pkg/version.gitVersion=v0.9.0"
}

build_flux_controllers() {
  local controller
  for controller in "${FLUX_CONTROLLERS[@]}"; do
    go_tool flux "github.com/fluxcd/${controller%@*}"
  done
}

build_traefik() {
  go_tool traefik github.com/traefik/traefik/v3/cmd/traefik \
    "-X github.com/traefik/traefik/v3/pkg/version.Version=v3.6.12 -X github.com/traefik/traefik/v3/pkg/version.Codename=test"
}

# The monitoring the GitOps repository deploys: VictoriaMetrics single node and vmalert, which
# evaluates the soak's alert rules (also on the workstation, to replay them over back-dated data).
# Restart counts for the soak guard come from the kubelet's cAdvisor metrics, which VictoriaMetrics
# scrapes anyway (kube-state-metrics is refused by the proxy; see gitops/scripts/promote.mjs).
build_monitoring() {
  local app
  for app in victoria-metrics vmalert; do
    go_tool victoria-metrics "github.com/VictoriaMetrics/VictoriaMetrics/app/$app" \
      "-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=$app-v1.151.0"
  done
}

# Alertmanager, which delivers the alerts, and json_exporter, which reads the Kustomizations' Ready
# condition for them. Alertmanager v0.31.1 is the newest whose module carries its web UI: later
# releases embed one their release process builds with npm, which the module does not hold.
build_alerting() {
  go_tool alerting github.com/prometheus/alertmanager/cmd/alertmanager \
    "-X github.com/prometheus/common/version.Version=0.31.1"
  go_tool alerting github.com/prometheus-community/json_exporter \
    "-X github.com/prometheus/common/version.Version=0.7.0"
}

build_sops() {
  go_tool sops github.com/getsops/sops/v3/cmd/sops
}

build_helm() {
  go_tool flux helm.sh/helm/v3/cmd/helm
}

# The Helm repository the node's helm-controller pulls from: Traefik's chart (data, from
# ../shared/upstream-data/traefik-chart) packaged with the kit's helm, behind an index.yaml whose URLs
# are relative, so any server can serve the directory.
build_charts() {
  local out=$CACHE/charts key source
  source=$(traefik_chart_dir)
  key=$(stamp_key build_charts traefik_chart_dir <<<"$(cd "$source" && find . -type f | sort | xargs sha256sum) $(cat "$STAMPS/helm" 2>/dev/null)")
  if up_to_date charts "$key" "$out/index.yaml"; then log "charts: up to date"; return; fi
  rm -rf "$out" && mkdir -p "$out"
  "$BIN/helm" package "$source" --destination "$out" >/dev/null
  "$BIN/helm" repo index "$out"
  mark_built charts "$key"
  log "charts: $(cd "$out" && echo *.tgz)"
}

# traefik_chart_dir -> the chart's directory in the shared upstream data (a data file, not source).
traefik_chart_dir() {
  local dir=$ROOT
  while [[ $dir != / ]]; do
    dir=$(dirname "$dir")
    [[ -f $dir/shared/upstream-data/traefik-chart/SOURCE.md ]] || continue
    find "$dir/shared/upstream-data/traefik-chart" -name Chart.yaml -printf '%h\n' | head -n 1
    return
  done
  log "no shared/upstream-data/traefik-chart above $ROOT"
  return 1
}

# The sample app in place of podinfo (refused by the proxy): agnhost, the Kubernetes end-to-end
# suite's own test server, from the served k8s.io/kubernetes module. Its `porter` serves a value
# from the environment (the test overlay gives it the pod's namespace and name from the downward
# API) and its `connect` is the isolation probes' TCP client.
AGNHOST_VERSION=2.63.0 # k8s.io/kubernetes v1.36.3 test/images/agnhost/VERSION

# The SSH side of the node rung's Git host (e2e/node/git-ssh-server): a small program of our own on
# golang.org/x/crypto/ssh, serving git-upload-pack to deploy keys.
build_git_ssh_server() {
  own_program git-ssh-server "$ROOT/e2e/node/git-ssh-server"
}

build_sample_app() {
  go_tool agnhost k8s.io/kubernetes/test/images/agnhost
}
