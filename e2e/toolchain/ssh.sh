# The SSH-host rung's kit (sourced by build.sh): the command provider, k0s as one binary with its
# components embedded (as its release is), and a Debian 12 root filesystem for the rehearsal droplet.

COMMAND_PROVIDER_VERSION=$(third_party_tag pulumi-command) # = @pulumi/command in package-lock.json, with a v
COMMAND_PROVIDER_VERSION=${COMMAND_PROVIDER_VERSION#v}
# What a fresh debian-12-x64 droplet holds that k0s relies on, and what the rehearsal needs to boot
# (systemd as PID 1, sshd, networkd). iptables: k0s's embedded xtables here are Debian's, which load
# its libraries.
DROPLET_PACKAGES=systemd,systemd-sysv,openssh-server,dbus,iproute2,curl,ca-certificates,procps,iptables,kmod,less
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

build_command_provider() {
  local out=$BIN/pulumi-resource-command key
  key=$(stamp_key "$HERE/ssh.sh" "$HERE/lib.sh" <<<"${THIRD_PARTY_SOURCES[pulumi-command]} $COMMAND_PROVIDER_VERSION")
  if up_to_date command-provider "$key" "$out"; then log "command-provider: up to date"; return; fi
  local t0 source; t0=$(now)
  source=$(third_party_source pulumi-command)/provider
  (cd "$source" && go build -trimpath -o "$out" \
    -ldflags "$LDFLAGS_BASE -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$COMMAND_PROVIDER_VERSION" \
    ./cmd/pulumi-resource-command)
  mark_built command-provider "$key"
  log "command-provider: built in $(elapsed "$t0")"
}

# k0s with its components embedded, by k0s's own mechanism (the Makefile's EMBEDDED_BINS_BUILDMODE
# path): the binaries are staged, hack/gen-bindata packs them and writes the offsets file, k0s is
# built without the noembedbins tag, and the pack is appended. A scratch copy of the source takes
# the generated file, so the snapshot stays pristine.
build_k0s_embedded() {
  local out=$BIN/k0s-embedded key staged=(kubelet kube-apiserver kube-controller-manager kube-scheduler kine)
  local debian=(/usr/bin/containerd /usr/bin/containerd-shim /usr/bin/containerd-shim-runc-v2 /usr/sbin/runc /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi)
  local name inputs=()
  for name in "${staged[@]}"; do inputs+=("$STAMPS/$name"); done
  key=$(stamp_key "$HERE/ssh.sh" "$HERE/node.sh" "$HERE/lib.sh" "${inputs[@]}" "${debian[@]}" <<<"${THIRD_PARTY_SOURCES[k0s]} $(k0s_ldflags)")
  if up_to_date k0s-embedded "$key" "$out"; then log "k0s-embedded: up to date"; return; fi
  local t0 source scratch=$SRC/k0s-embedded; t0=$(now)
  source=$(third_party_source k0s)
  rm -rf "$scratch" && mkdir -p "$scratch" && cp -a "$source/." "$scratch/"
  chmod -R u+w "$scratch"
  local bin=$scratch/embedded-bins/staging/linux/bin
  mkdir -p "$bin"
  for name in "${staged[@]}"; do cp "$BIN/$name" "$bin/"; done
  cp "${debian[@]}" "$bin/"
  (
    cd "$scratch"
    go run -tags=hack hack/gen-bindata/cmd/main.go -o bindata_linux -pkg assets \
      -gofile pkg/assets/zz_generated_offsets_linux.go -prefix embedded-bins/staging/linux/ embedded-bins/staging/linux/bin
    go build -trimpath -tags osusergo -ldflags "$LDFLAGS_BASE $(k0s_ldflags)" -o k0s main.go
    cat k0s bindata_linux >"$out.tmp"
  )
  chmod 0755 "$out.tmp" && mv "$out.tmp" "$out"
  rm -rf "$scratch"
  mark_built k0s-embedded "$key"
  log "k0s-embedded: $(du -h "$out" | cut -f1) in $(elapsed "$t0")"
}

# A Debian 12 root filesystem like a fresh droplet's, from Debian's own packages.
build_droplet_rootfs() {
  local out=$CACHE/droplet-rootfs.tar key
  key=$(stamp_key "$HERE/ssh.sh" <<<"bookworm $DROPLET_PACKAGES")
  if up_to_date droplet-rootfs "$key" "$out"; then log "droplet-rootfs: up to date"; return; fi
  local t0 scratch=$SRC/droplet-rootfs; t0=$(now)
  rm -rf "$scratch"
  debootstrap --variant=minbase --include="$DROPLET_PACKAGES" bookworm "$scratch" "$DEBIAN_MIRROR" >/dev/null
  tar -C "$scratch" --numeric-owner -cf "$out.tmp" . && mv "$out.tmp" "$out"
  rm -rf "$scratch"
  mark_built droplet-rootfs "$key"
  log "droplet-rootfs: $(du -h "$out" | cut -f1) in $(elapsed "$t0")"
}
