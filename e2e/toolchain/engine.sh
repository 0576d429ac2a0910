# The Pulumi engine and the Kubernetes binaries (sourced by build.sh).

# The CLI at the SDK's own version, so the engine and @pulumi/pulumi speak the same protocol. There
# is no Node.js language host (the proxy refuses its module): the e2e harness runs the program
# through the Automation API's inline programs instead (e2e/harness/pulumiCli.ts).
PULUMI_VERSION=v$(node -p 'require(process.argv[1]).packages["node_modules/@pulumi/pulumi"].version' "$ROOT/package-lock.json")
KUBE_VERSION=v1.36.3 # = k8s.io/kubernetes in kubernetes/go.mod; the version k0s v1.36.3+k0s.2 ships
# What the provider plugin reports. @pulumi/kubernetes asks the engine for this exact plugin
# version; the code is the only provider commit the module proxy serves (see README.md).
K8S_PROVIDER_REPORTED_VERSION=${K8S_PROVIDER_REPORTED_VERSION:-4.34.2}
FLUX_VERSION=v2.7.3
# Flux v2.7.3's controllers (flux2 manifests/bases), in `flux install`'s order. The proxy refuses
# notification-controller v1.7.4, so the kit's Flux is these three (see README.md).
FLUX_CONTROLLERS=(source-controller@v1.7.3 kustomize-controller@v1.7.2 helm-controller@v1.4.3)

# Debian's packages for every rung: etcd for the bare API server; iptables, ipset and conntrack for
# the node's kube-proxy and kube-router images; nftables for the workstation's network guard;
# openssl for certificates; umoci to build images;
# gcc, libc6-dev and libseccomp-dev for the cgo builds (kine, runc); socat, tini and age for the node
# harness and the SOPS round trip; debootstrap, systemd-nspawn and the OpenSSH client for the
# rehearsal droplet. The node's containerd, runc and CNI plugins are built from served modules.
DEBIAN_PACKAGES=(etcd-server openssl iptables nftables ipset conntrack libseccomp-dev
  umoci busybox-static libcap2-bin socat tini age git curl iproute2 util-linux ca-certificates gcc libc6-dev
  debootstrap systemd-container openssh-client)

build_pulumi() {
  go_tool pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
}

build_k8s_provider() {
  local mod=$HERE/k8s-provider key out=$BIN/pulumi-resource-kubernetes
  key=$(stamp_key build_k8s_provider "$mod/go.mod" "$mod/go.sum" "$mod/main.go" <<<"$K8S_PROVIDER_REPORTED_VERSION")
  if up_to_date k8s-provider "$key" "$out"; then log "k8s-provider: up to date"; return; fi
  local t0; t0=$(now)
  # Upstream's main embeds a generated, version-stamped copy of schema.json that is not in the
  # module zip. Generate it into a scratch copy of our module so the repo holds only our main.go.
  local scratch=$SRC/k8s-provider dir
  rm -rf "$scratch" && mkdir -p "$scratch"
  cp "$mod/go.mod" "$mod/go.sum" "$mod/main.go" "$scratch/"
  dir=$(cd "$scratch" && go mod download github.com/pulumi/pulumi-kubernetes/provider/v4 &&
    go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)
  node - "$dir/cmd/pulumi-resource-kubernetes" "$scratch" "$K8S_PROVIDER_REPORTED_VERSION" <<'EOF'
const fs = require("node:fs");
const [from, to, version] = process.argv.slice(2);
const schema = JSON.parse(fs.readFileSync(`${from}/schema.json`, "utf8"));
schema.version = version;
fs.writeFileSync(`${to}/schema-embed.json`, JSON.stringify(schema));
const mapping = JSON.parse(fs.readFileSync(`${from}/terraform-mapping.json`, "utf8"));
fs.writeFileSync(`${to}/terraform-mapping-embed.json`, JSON.stringify(mapping));
EOF
  (cd "$scratch" && go build -trimpath -o "$out" \
    -ldflags "$LDFLAGS_BASE -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_PROVIDER_REPORTED_VERSION" .)
  mark_built k8s-provider "$key"
  log "k8s-provider: built in $(elapsed "$t0")"
}

# What hack/lib/version.sh would stamp; the apiserver derives its binary and emulation versions
# from gitVersion, and v0.0.0 would break discovery.
kube_version_ldflags() {
  local pkg=k8s.io/component-base/version minor
  minor=$(cut -d. -f2 <<<"$KUBE_VERSION")
  echo "-X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
    "-X $pkg.buildDate=1970-01-01T00:00:00Z -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
}

build_kubernetes() {
  local cmd
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    go_tool kubernetes "k8s.io/kubernetes/cmd/$cmd" "$(kube_version_ldflags)"
  done
}

# Flux's install manifest, assembled offline by flux2's own code (see flux/install/main.go).
# cert-manager's chart at the version gitops/ pins, packaged from its Go module, which the proxy
# serves (it refuses the cmd/* modules the binaries need), with the version the release tool would
# stamp. The API-server rung renders it with the HelmRelease's values and applies what it renders.
build_cert_manager_chart() {
  local release=$ROOT/gitops/infrastructure/base/controllers/cert-manager/release.yaml
  local out=$CACHE/cert-manager key version
  version=$(sed -n 's/^ *version: "\(v[0-9.]*\)"$/\1/p' "$release")
  [[ -n $version ]] || { log "cert-manager-chart: no pinned chart version in $release"; exit 1; }
  key=$(stamp_key build_cert_manager_chart <<<"$version $(cat "$STAMPS/helm" 2>/dev/null)")
  if up_to_date cert-manager-chart "$key" "$out/cert-manager-$version.tgz"; then log "cert-manager-chart: up to date"; return; fi
  local dir; dir=$(module_dir "github.com/cert-manager/cert-manager@$version")
  rm -rf "$out" && mkdir -p "$out"
  "$BIN/helm" package "$dir/deploy/charts/cert-manager" --version "$version" --app-version "$version" --destination "$out" >/dev/null
  mark_built cert-manager-chart "$key"
  log "cert-manager-chart: $(cd "$out" && echo *.tgz)"
}

build_flux_install() {
  local out=$CACHE/flux/install.yaml mod=$HERE/flux key args=() controller
  key=$(stamp_key build_flux_install "$mod/go.mod" "$mod/go.sum" "$mod/install/main.go" <<<"$FLUX_VERSION ${FLUX_CONTROLLERS[*]}")
  if up_to_date flux-install "$key" "$out"; then log "flux-install: up to date"; return; fi
  local t0; t0=$(now)
  for controller in "${FLUX_CONTROLLERS[@]}"; do
    args+=(-controller "${controller%@*}=$(module_dir "github.com/fluxcd/$controller")")
  done
  mkdir -p "$CACHE/flux"
  (cd "$mod" && go build -trimpath -o "$SRC/flux-install" ./install)
  "$SRC/flux-install" -flux2 "$(module_dir "github.com/fluxcd/flux2/v2@$FLUX_VERSION")" -version "$FLUX_VERSION" -out "$out" "${args[@]}"
  mark_built flux-install "$key"
  log "flux-install: Flux $FLUX_VERSION ($(grep -c '^kind: Deployment' "$out") controllers) in $(elapsed "$t0")"
}

# The GitOps repository's own check (gitops/scripts/check.mjs) on the starter and on broken copies:
# kubeconform and kustomize at the versions gitops/.github/workflows/check.yml installs.
build_gitops_check() {
  go_tool gitops-check/kubeconform github.com/yannh/kubeconform/cmd/kubeconform
  # go_tool names a binary after its package's last element, which is `v5` here.
  local mod=$HERE/gitops-check/kustomize key out=$BIN/kustomize
  key=$(stamp_key build_gitops_check "$mod/go.mod" "$mod/go.sum" <<<"$LDFLAGS_BASE")
  if up_to_date kustomize "$key" "$out"; then log "kustomize: up to date"; return; fi
  local t0; t0=$(now)
  (cd "$mod" && go build -trimpath -ldflags "$LDFLAGS_BASE" -o "$out" sigs.k8s.io/kustomize/kustomize/v5)
  mark_built kustomize "$key"
  log "kustomize: built in $(elapsed "$t0")"
}
