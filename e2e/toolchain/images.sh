# Container images for every pod the node runs, built locally from the kit's binaries with Debian's
# umoci (nothing can be pulled here). Each is an OCI layout tar the node harness imports into
# containerd (`ctr images import`), named as the manifests that run it name it (sourced by build.sh).
#
# The system images of the test cluster of k0s's components are named k0s-platform.local/<what>:<the
# version it holds> (e2e/node/systemManifests.ts): kube-router is v2.1.0 where k0s v1.36.3+k0s.2
# deploys v2.10.0, and nothing here carries a real image's name over different contents. Flux's,
# Traefik's and VictoriaMetrics' images keep upstream's names at the versions they hold, since
# unmodified manifests name them.

IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

build_images() {
  image pause k0s-platform.local/pause:3.10.1 65535 '["/pause"]' fill_pause \
    "$(module_dir k8s.io/kubernetes@$KUBE_VERSION)/build/pause/linux/pause.c"
  image kube-proxy "k0s-platform.local/kube-proxy:$KUBE_VERSION" 0 '["/usr/local/bin/kube-proxy"]' fill_kube_proxy "$BIN/kube-proxy"
  image coredns k0s-platform.local/coredns:1.14.6 65532 '["/coredns"]' fill_coredns "$BIN/coredns"
  image kube-router "k0s-platform.local/kube-router:$KUBE_ROUTER_VERSION" 0 '["/usr/local/bin/kube-router"]' fill_kube_router "$BIN/kube-router"
  image cni-node "k0s-platform.local/cni-node:${CNI_PLUGINS_VERSION#v}" 0 '["/usr/local/bin/cni-node"]' fill_cni_node "$HERE/cni-node" \
    "${CNI_PLUGINS[@]/#*\//$BIN/}"
  image metrics-server k0s-platform.local/metrics-server:v0.9.0 65534 '["/metrics-server"]' fill_metrics_server "$BIN/metrics-server"
  image agnhost "k0s-platform.local/agnhost:$AGNHOST_VERSION" 65532 '["/agnhost"]' fill_agnhost "$BIN/agnhost"
  local controller name
  for controller in "${FLUX_CONTROLLERS[@]}"; do
    name=${controller%@*}
    image "$name" "ghcr.io/fluxcd/$name:${controller#*@}" 65534 "[\"/usr/local/bin/$name\"]" fill_flux_controller "$BIN/$name"
  done
  image traefik docker.io/library/traefik:v3.6.12 65532 '["/usr/local/bin/traefik"]' fill_traefik "$BIN/traefik"
  image victoria-metrics docker.io/victoriametrics/victoria-metrics:v1.151.0 0 '["/victoria-metrics-prod"]' fill_victoria_metrics "$BIN/victoria-metrics"
  image vmalert docker.io/victoriametrics/vmalert:v1.151.0 0 '["/vmalert-prod"]' fill_vmalert "$BIN/vmalert"
  image alertmanager quay.io/prometheus/alertmanager:v0.31.1 65534 '["/bin/alertmanager"]' fill_alertmanager "$BIN/alertmanager"
  image json-exporter quay.io/prometheuscommunity/json-exporter:v0.7.0 65534 '["/bin/json_exporter"]' fill_json_exporter "$BIN/json_exporter"
}

# image NAME REF USER ENTRYPOINT FILL INPUT... -> $IMAGES/NAME.tar, unless its inputs are unchanged.
image() {
  local name=$1 ref=$2 user=$3 entrypoint=$4 fill=$5; shift 5
  local out=$IMAGES/$name.tar key
  key=$(stamp_key "$HERE/images.sh" "$HERE/lib.sh" "$@" <<<"$ref $user $entrypoint")
  if up_to_date "image-$name" "$key" "$out"; then log "image $ref: up to date"; return; fi
  local t0 work; t0=$(now); work=$(mktemp -d)
  mkdir -p "$work/rootfs/etc" "$work/rootfs/tmp"
  chmod 1777 "$work/rootfs/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\napp:x:100:101:app:/home/app:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$work/rootfs/etc/passwd"
  printf 'root:x:0:\napp:x:101:\nnonroot:x:65532:\nnogroup:x:65534:\n' >"$work/rootfs/etc/group"
  "$fill" "$work/rootfs" "$@"

  local layout=$work/layout tag=${ref##*:} args=()
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci insert --image "$layout:$tag" "$work/rootfs" /
  while read -r part; do args+=(--config.entrypoint "$part"); done < <(node -e 'for (const p of JSON.parse(process.argv[1])) console.log(p)' "$entrypoint")
  umoci config --image "$layout:$tag" --config.user "$user" --config.env "PATH=$IMAGE_PATH" --config.workingdir "$(workdir_of "$name")" \
    --author k0s-platform --config.label "org.opencontainers.image.description=built locally by k0s-platform's e2e toolchain" "${args[@]}"
  # containerd names an imported image after this annotation.
  node -e '
    const fs = require("node:fs"); const [file, ref] = process.argv.slice(1);
    const index = JSON.parse(fs.readFileSync(file, "utf8"));
    for (const m of index.manifests) m.annotations = { ...m.annotations, "io.containerd.image.name": ref };
    fs.writeFileSync(file, JSON.stringify(index));' "$layout/index.json" "$ref"
  umoci gc --layout "$layout"
  tar -C "$layout" -cf "$out.tmp" . && mv "$out.tmp" "$out"
  rm -rf "$work"
  mark_built "image-$name" "$key"
  log "image $ref: $(du -h "$out" | cut -f1) in $(elapsed "$t0")"
}

workdir_of() { echo /; }

# copy_with_libs ROOTFS FILE... -> FILEs at their own paths, with every shared library they load.
copy_with_libs() {
  local rootfs=$1 file lib; shift
  for file in "$@"; do
    install -D -m 0755 "$file" "$rootfs$file"
    for lib in $(ldd "$file" 2>/dev/null | grep -o '/[^ ]*' || true); do
      [[ -e $rootfs$lib ]] || install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
    done
  done
}

busybox_into() {
  local rootfs=$1 applet
  install -D -m 0755 /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do [[ -e $rootfs/bin/$applet ]] || ln -s busybox "$rootfs/bin/$applet"; done
}

ca_certificates_into() { install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt"; }

# Debian's iptables in nf_tables mode, the mode k0s selects on a Debian host (iptables --version).
iptables_into() {
  local rootfs=$1 xtables=/usr/lib/x86_64-linux-gnu/xtables tool
  copy_with_libs "$rootfs" /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi "$xtables"/*.so
  for tool in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf xtables-nft-multi "$rootfs/usr/sbin/$tool"
    ln -sf xtables-legacy-multi "$rootfs/usr/sbin/${tool/tables/tables-legacy}"
  done
}

fill_pause() { mkdir -p "$1"; gcc -Os -Wall -Werror -static -DVERSION=v3.10.1 -o "$1/pause" "$2"; strip "$1/pause"; }

fill_kube_proxy() {
  install -D -m 0755 "$2" "$1/usr/local/bin/kube-proxy"
  iptables_into "$1"
  copy_with_libs "$1" /usr/sbin/conntrack
}

# CoreDNS binds port 53 as a non-root user, so the binary carries the capability, as upstream's image.
fill_coredns() {
  install -D -m 0755 "$2" "$1/coredns"
  setcap cap_net_bind_service=+ep "$1/coredns"
  ca_certificates_into "$1"
}

# kube-router's image also runs k0s's install-cniconf init container, a /bin/sh script.
fill_kube_router() {
  install -D -m 0755 "$2" "$1/usr/local/bin/kube-router"
  busybox_into "$1"
  iptables_into "$1"
  copy_with_libs "$1" /usr/sbin/ipset
}

# k0s's cni-node image copies CNI plugins onto the host (`install`); this one carries the kit's
# CNI plugins 1.8.0 (e2e/toolchain/cni-plugins) and its own installer script.
fill_cni_node() {
  local rootfs=$1 installer=$2; shift 2
  busybox_into "$rootfs"
  mkdir -p "$rootfs/opt/cni/bin"
  install -m 0755 "$@" "$rootfs/opt/cni/bin/"
  install -D -m 0755 "$installer" "$rootfs/usr/local/bin/cni-node"
}

fill_metrics_server() { install -D -m 0755 "$2" "$1/metrics-server"; }

# binary_with_ca ROOTFS BINARY PATH -> BINARY at PATH in the image, with CA certificates for its TLS clients.
binary_with_ca() {
  install -D -m 0755 "$2" "$1$3"
  ca_certificates_into "$1"
}

fill_flux_controller() { binary_with_ca "$1" "$2" "/usr/local/bin/$(basename "$2")"; }

fill_traefik() { binary_with_ca "$1" "$2" /usr/local/bin/traefik; }

# agnhost at the root, as the Kubernetes project's own image has it.
fill_agnhost() { install -D -m 0755 "$2" "$1/agnhost"; }

# As upstream's images: VictoriaMetrics' binaries named *-prod at the root, Prometheus' in /bin.
fill_victoria_metrics() { binary_with_ca "$1" "$2" /victoria-metrics-prod; }

fill_vmalert() { binary_with_ca "$1" "$2" /vmalert-prod; }

fill_alertmanager() { binary_with_ca "$1" "$2" /bin/alertmanager; }

fill_json_exporter() { binary_with_ca "$1" "$2" /bin/json_exporter; }
