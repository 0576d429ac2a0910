#!/usr/bin/env bash
# Builds the e2e toolchain (Pulumi CLI, Kubernetes provider plugin, kube-apiserver,
# kube-controller-manager) from upstream Go modules pinned in the go.mod files
# beside this script, and extracts Flux CRDs from the Flux controllers' modules.
# Everything lands in <repo>/.cache/toolchain (git-ignored). A target is rebuilt
# only when its stamp (hash of its inputs) changes, so a warm run takes seconds.
#
# Usage: e2e/toolchain/build.sh [target...]
#   targets: pulumi k8s-provider kubernetes flux-crds etcd (default: all of them)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${TOOLCHAIN_CACHE:-$ROOT/.cache/toolchain}
BIN=$CACHE/bin
STAMPS=$CACHE/stamps
mkdir -p "$BIN" "$STAMPS"

# Versions that are not already pinned by a go.mod. The go.mod files are the
# source of truth for module versions; these only feed -ldflags and the CRDs.
PULUMI_VERSION=v3.248.0            # = @pulumi/pulumi in package-lock.json
KUBE_VERSION=v1.35.4               # k8s.io/kubernetes in kubernetes/go.mod
# What the provider plugin reports. @pulumi/kubernetes asks the engine for this
# exact plugin version; the code is the only provider commit the module proxy
# serves (see README.md), so the two differ on purpose.
K8S_PROVIDER_REPORTED_VERSION=${K8S_PROVIDER_REPORTED_VERSION:-4.34.2}
# Flux v2.7.3's controller versions (flux2 manifests/bases/*/kustomization.yaml).
FLUX_VERSION=v2.7.3
FLUX_CRD_MODULES=(
  github.com/fluxcd/source-controller@v1.7.3
  github.com/fluxcd/kustomize-controller@v1.7.2
  github.com/fluxcd/helm-controller@v1.4.3
)

# Static, reproducible, lean binaries; never reach for another Go toolchain, and
# fail rather than silently edit go.mod/go.sum.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
GO_BUILD=(go build -trimpath)
LDFLAGS_BASE="-s -w"

log() { printf '[toolchain] %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# stamp_key FILE... -> hash of the inputs that decide a build's output.
stamp_key() {
  { go version; cat "$@" -; } | sha256sum | cut -d' ' -f1
}

# up_to_date NAME KEY BINARY... -> true if every binary exists and NAME's stamp is KEY.
up_to_date() {
  local name=$1 key=$2; shift 2
  local b
  for b in "$@"; do [[ -x $b ]] || return 1; done
  [[ -f $STAMPS/$name && $(cat "$STAMPS/$name") == "$key" ]]
}

build_pulumi() {
  local mod=$HERE/pulumi key
  key=$(stamp_key "$mod/go.mod" "$mod/go.sum" "$HERE/build.sh" <<<"$PULUMI_VERSION")
  if up_to_date pulumi "$key" "$BIN/pulumi"; then log "pulumi: up to date"; return; fi
  local t0; t0=$(now)
  (cd "$mod" && "${GO_BUILD[@]}" -o "$BIN/pulumi" \
    -ldflags "$LDFLAGS_BASE -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  echo "$key" >"$STAMPS/pulumi"
  log "pulumi: built in $(elapsed "$t0")"
  # The Node.js language host module (github.com/pulumi/pulumi/sdk/nodejs/cmd/
  # pulumi-language-nodejs/v3) is refused by the module proxy here, so it is not
  # built; see README.md for the Automation API route that needs no language host.
}

build_k8s_provider() {
  local mod=$HERE/k8s-provider key
  key=$(stamp_key "$mod/go.mod" "$mod/go.sum" "$mod/main.go" "$HERE/build.sh" <<<"$K8S_PROVIDER_REPORTED_VERSION")
  if up_to_date k8s-provider "$key" "$BIN/pulumi-resource-kubernetes"; then
    log "pulumi-resource-kubernetes: up to date"; return
  fi
  local t0; t0=$(now)
  # Upstream's main embeds a generated, version-stamped copy of schema.json that
  # is not in the module zip. Generate it into a scratch copy of our module so
  # the repo holds only our own main.go.
  local src=$CACHE/src/k8s-provider dir
  rm -rf "$src" && mkdir -p "$src"
  cp "$mod/go.mod" "$mod/go.sum" "$mod/main.go" "$src/"
  dir=$(cd "$src" && go mod download github.com/pulumi/pulumi-kubernetes/provider/v4 &&
    go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)
  node - "$dir/cmd/pulumi-resource-kubernetes" "$src" "$K8S_PROVIDER_REPORTED_VERSION" <<'EOF'
const fs = require("node:fs");
const [from, to, version] = process.argv.slice(2);
const schema = JSON.parse(fs.readFileSync(`${from}/schema.json`, "utf8"));
schema.version = version;
fs.writeFileSync(`${to}/schema-embed.json`, JSON.stringify(schema));
const mapping = JSON.parse(fs.readFileSync(`${from}/terraform-mapping.json`, "utf8"));
fs.writeFileSync(`${to}/terraform-mapping-embed.json`, JSON.stringify(mapping));
EOF
  (cd "$src" && "${GO_BUILD[@]}" -o "$BIN/pulumi-resource-kubernetes" \
    -ldflags "$LDFLAGS_BASE -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_PROVIDER_REPORTED_VERSION" .)
  echo "$key" >"$STAMPS/k8s-provider"
  log "pulumi-resource-kubernetes: built in $(elapsed "$t0")"
}

build_kubernetes() {
  local mod=$HERE/kubernetes key minor
  key=$(stamp_key "$mod/go.mod" "$mod/go.sum" "$HERE/build.sh" <<<"$KUBE_VERSION")
  minor=$(cut -d. -f2 <<<"$KUBE_VERSION")
  # What hack/lib/version.sh would stamp; the apiserver derives its binary and
  # emulation versions from gitVersion, and v0.0.0 would break discovery.
  local pkg=k8s.io/component-base/version ldflags
  ldflags="$LDFLAGS_BASE -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
  local cmd
  for cmd in kube-apiserver kube-controller-manager; do
    if up_to_date "$cmd" "$key" "$BIN/$cmd"; then log "$cmd: up to date"; continue; fi
    local t0; t0=$(now)
    (cd "$mod" && "${GO_BUILD[@]}" -o "$BIN/$cmd" -ldflags "$ldflags" "k8s.io/kubernetes/cmd/$cmd")
    echo "$key" >"$STAMPS/$cmd"
    log "$cmd: built in $(elapsed "$t0")"
  done
}

extract_flux_crds() {
  local out=$CACHE/flux-crds.yaml key
  key=$(stamp_key "$HERE/build.sh" <<<"$FLUX_VERSION ${FLUX_CRD_MODULES[*]}")
  if [[ -s $out ]] && up_to_date flux-crds "$key"; then log "flux-crds: up to date"; return; fi
  local t0 tmp mv dir f; t0=$(now); tmp=$(mktemp)
  echo "# Flux $FLUX_VERSION CRDs from ${FLUX_CRD_MODULES[*]} (config/crd/bases)" >"$tmp"
  for mv in "${FLUX_CRD_MODULES[@]}"; do
    # Run outside any module so go.mod settings here do not interfere.
    dir=$(cd / && GOFLAGS= go mod download -json "$mv" | node -e \
      'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);if(j.Error)throw new Error(j.Error);console.log(j.Dir)})')
    for f in "$dir"/config/crd/bases/*.yaml; do
      printf -- '---\n' >>"$tmp"
      sed '/^---[[:space:]]*$/d' "$f" >>"$tmp"
    done
  done
  mv "$tmp" "$out"
  echo "$key" >"$STAMPS/flux-crds"
  log "flux-crds: $(grep -c '^kind: CustomResourceDefinition' "$out") CRDs of Flux $FLUX_VERSION in $(elapsed "$t0")"
}

# etcd comes from Debian (etcd-server), not from a Go build.
ensure_etcd() {
  if command -v etcd >/dev/null; then log "etcd: $(etcd --version | head -1)"; return; fi
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "etcd: installing Debian's etcd-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
    log "etcd: $(etcd --version | head -1)"
  else
    log "etcd: missing; install Debian's etcd-server package"; return 1
  fi
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(etcd flux-crds pulumi k8s-provider kubernetes)
T0=$(now)
for t in "${targets[@]}"; do
  case $t in
    pulumi) build_pulumi ;;
    k8s-provider) build_k8s_provider ;;
    kubernetes) build_kubernetes ;;
    flux-crds) extract_flux_crds ;;
    etcd) ensure_etcd ;;
    *) log "unknown target: $t"; exit 2 ;;
  esac
done
log "done in $(elapsed "$T0"); binaries in $BIN"
