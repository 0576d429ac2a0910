# The node kit: k0s, the binaries it runs, and the components its pods run (sourced by build.sh).

K0S_VERSION=$(third_party_tag k0s)
KINE_VERSION=v0.14.16 # = kine/go.mod
KUBE_STATE_METRICS_VERSION=$(third_party_tag kube-state-metrics)

# k0s without embedded binaries, the Makefile's way (EMBEDDED_BINS_BUILDMODE=none): it then runs
# <data-dir>/bin/<name>, which the node harness fills from this kit.
build_k0s() {
  local out=$BIN/k0s key
  key=$(stamp_key "$HERE/node.sh" "$HERE/lib.sh" <<<"${THIRD_PARTY_SOURCES[k0s]} $(k0s_ldflags)")
  if up_to_date k0s "$key" "$out"; then log "k0s: up to date"; return; fi
  local t0 source; t0=$(now)
  source=$(third_party_source k0s)
  (cd "$source" && go build -trimpath -tags osusergo,noembedbins -ldflags "$LDFLAGS_BASE $(k0s_ldflags)" -o "$out" main.go)
  mark_built k0s "$key"
  log "k0s: built in $(elapsed "$t0")"
}

# What k0s's Makefile stamps in.
k0s_ldflags() {
  local build=github.com/k0sproject/k0s/pkg/build
  echo "-X $build.Version=$K0S_VERSION -X $build.KubernetesVersion=${KUBE_VERSION#v} -X $build.KineVersion=${KINE_VERSION#v}" \
    "$(kube_version_ldflags) -extldflags=-static"
}

# kine with SQLite (cgo), statically linked, as k0s's embedded-bins build makes it.
build_kine() {
  CGO_ENABLED=1 CGO_CFLAGS=-DSQLITE_USE_ALLOCA=1 GO_TAGS=nats \
    go_tool kine github.com/k3s-io/kine "-X github.com/k3s-io/kine/pkg/version.Version=$KINE_VERSION -extldflags=-static"
}

# What k0s's system pods run: CoreDNS, kube-router (the CNI and NetworkPolicy enforcer) and
# metrics-server.
build_node_components() {
  go_tool coredns github.com/coredns/coredns
  go_tool kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v2.1.0"
  go_tool metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server
}

build_flux_controllers() {
  local controller
  for controller in "${FLUX_CONTROLLERS[@]}"; do
    go_tool "flux-${controller%@*}" "github.com/fluxcd/${controller%@*}"
  done
}

build_traefik() {
  go_tool traefik github.com/traefik/traefik/v3/cmd/traefik \
    "-X github.com/traefik/traefik/v3/pkg/version.Version=v3.6.12 -X github.com/traefik/traefik/v3/pkg/version.Codename=test"
}

build_podinfo() {
  local key
  key=$(stamp_key "$HERE/node.sh" "$HERE/lib.sh" <<<"${THIRD_PARTY_SOURCES[podinfo]}")
  if up_to_date podinfo "$key" "$BIN/podinfo" "$BIN/podcli" "$CACHE/podinfo-ui"; then log "podinfo: up to date"; return; fi
  local t0 source cmd; t0=$(now)
  source=$(third_party_source podinfo)
  for cmd in podinfo podcli; do
    (cd "$source" && go build -trimpath -ldflags "$LDFLAGS_BASE" -o "$BIN/$cmd" "./cmd/$cmd")
  done
  rm -rf "$CACHE/podinfo-ui" && cp -r "$source/ui" "$CACHE/podinfo-ui"
  mark_built podinfo "$key"
  log "podinfo: built in $(elapsed "$t0")"
}

# The monitoring the GitOps repository deploys: VictoriaMetrics single node, and kube-state-metrics
# for restarts and other object state.
build_monitoring() {
  go_tool victoria-metrics github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics \
    "-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-metrics-v1.151.0"
  local key
  key=$(stamp_key "$HERE/node.sh" "$HERE/lib.sh" <<<"${THIRD_PARTY_SOURCES[kube-state-metrics]}")
  if up_to_date kube-state-metrics "$key" "$BIN/kube-state-metrics"; then log "kube-state-metrics: up to date"; return; fi
  local t0 source; t0=$(now)
  source=$(third_party_source kube-state-metrics)
  (cd "$source" && go build -trimpath -o "$BIN/kube-state-metrics" \
    -ldflags "$LDFLAGS_BASE -X github.com/prometheus/common/version.Version=$KUBE_STATE_METRICS_VERSION" .)
  mark_built kube-state-metrics "$key"
  log "kube-state-metrics: built in $(elapsed "$t0")"
}

build_sops() {
  go_tool sops github.com/getsops/sops/v3/cmd/sops
}

build_helm() {
  go_tool helm helm.sh/helm/v3/cmd/helm
}

# The Helm repository the node's helm-controller pulls from: Traefik's chart packaged from its
# snapshot, behind an index.yaml whose URLs are relative, so any server can serve the directory.
build_charts() {
  local out=$CACHE/charts key
  key=$(stamp_key "$HERE/node.sh" "$HERE/lib.sh" <<<"${THIRD_PARTY_SOURCES[traefik-helm-chart]} $(cat "$STAMPS/helm" 2>/dev/null)")
  if up_to_date charts "$key" "$out/index.yaml"; then log "charts: up to date"; return; fi
  local source
  source=$(third_party_source traefik-helm-chart)
  rm -rf "$out" && mkdir -p "$out"
  "$BIN/helm" package "$source/traefik" --destination "$out" >/dev/null
  "$BIN/helm" repo index "$out"
  mark_built charts "$key"
  log "charts: $(cd "$out" && echo *.tgz)"
}
