# The SSH-host rung's kit (sourced by build.sh): a Debian 12 root filesystem for the rehearsal
# droplet, and k0s-test-double, the small program of our own that the rung's release server serves
# in k0s's place (k0s itself is refused by the Go module proxy, so no real k0s runs on this rung).

# What a fresh debian-12-x64 droplet holds that the program's scripts rely on (bash, curl,
# sha256sum, systemd, sshd, sudo for a non-root sshUser), and what the rehearsal needs to boot
# (systemd as PID 1, networkd).
DROPLET_PACKAGES=systemd,systemd-sysv,openssh-server,dbus,iproute2,curl,ca-certificates,procps,iptables,kmod,less,sudo
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# A Debian 12 root filesystem like a fresh droplet's, from Debian's own packages.
build_droplet_rootfs() {
  local out=$CACHE/droplet-rootfs.tar key
  key=$(stamp_key build_droplet_rootfs <<<"bookworm $DROPLET_PACKAGES")
  if up_to_date droplet-rootfs "$key" "$out"; then log "droplet-rootfs: up to date"; return; fi
  local t0 scratch=$SRC/droplet-rootfs; t0=$(now)
  rm -rf "$scratch"
  mkdir -p "$SRC"
  debootstrap --variant=minbase --include="$DROPLET_PACKAGES" bookworm "$scratch" "$DEBIAN_MIRROR" >/dev/null
  tar -C "$scratch" --numeric-owner -cf "$out.tmp" . && mv "$out.tmp" "$out"
  rm -rf "$scratch"
  mark_built droplet-rootfs "$key"
  log "droplet-rootfs: $(du -h "$out" | cut -f1) in $(elapsed "$t0")"
}

# k0s-test-double: our own Go module (standard library only, e2e/ssh/k0s-test-double/), static. It
# reports the program's default k0sVersion (Pulumi.yaml), so the default download path installs it.
# The SSH rung installs k0s at the release before the default first, as a cluster created before
# the default moved, and then upgrades it in place to the default: a double for each.
K0S_UPGRADE_FROM=v1.35.4+k0s.0

build_k0s_test_double() {
  local mod=$ROOT/e2e/ssh/k0s-test-double out=$BIN/k0s-test-double key version
  version=$(awk '/^  k0sVersion:/ { found = 1 } found && /default:/ { print $2; exit }' "$ROOT/Pulumi.yaml")
  key=$(stamp_key build_k0s_test_double "$mod/go.mod" "$mod/main.go" <<<"$version $K0S_UPGRADE_FROM")
  if up_to_date k0s-test-double "$key" "$out" "$out-upgrade-from"; then log "k0s-test-double: up to date"; return; fi
  local t0; t0=$(now)
  mkdir -p "$BIN"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS_BASE -X main.version=$version" -o "$out" .)
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS_BASE -X main.version=$K0S_UPGRADE_FROM" -o "$out-upgrade-from" .)
  mark_built k0s-test-double "$key"
  log "k0s-test-double: $version, and $K0S_UPGRADE_FROM to upgrade from, in $(elapsed "$t0")"
}

# The S3-compatible storage the rung's backups go to (e2e/ssh/s3-test-server): a small program of
# our own on github.com/johannesboyne/gofakes3, a served module.
build_s3_test_server() {
  own_program s3-test-server "$ROOT/e2e/ssh/s3-test-server"
}
