# Shared by the toolchain scripts (sourced, not run): where the cache lives, logging, input
# stamps, Go builds of pinned modules, and the third-party sources the module proxy refuses.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# Outside the clone, so a fresh clone on the same machine (CI clones afresh) reuses every build;
# each target is still rebuilt when its inputs change. e2e/harness/toolchain.ts resolves the same path.
CACHE=${K0S_PLATFORM_TOOLCHAIN:-${XDG_CACHE_HOME:-$HOME/.cache}/k0s-platform/toolchain}
BIN=$CACHE/bin
STAMPS=$CACHE/stamps
IMAGES=$CACHE/images
SRC=$CACHE/src
mkdir -p "$BIN" "$STAMPS" "$IMAGES" "$SRC"

# Upstream sources the module proxy refuses: origin, tag and commit of each. Builds are stamped with
# these pins, so a warm cache needs none of the sources; a rebuild takes the pristine snapshot in
# <ancestor>/shared/third_party/<name> (or $K0S_PLATFORM_THIRD_PARTY/<name>) where there is one, and
# otherwise clones the same tag from its origin (a user's machine).
declare -A THIRD_PARTY_SOURCES=(
  [k0s]="https://github.com/k0sproject/k0s.git v1.35.4+k0s.0 b42a7462a089bf6dd0a67b00d03b163ce842e87f"
  [podinfo]="https://github.com/stefanprodan/podinfo.git 6.14.1 eec06d1ea459af4cb4e10e806f8be7c7bd58b361"
  [pulumi-language-nodejs]="https://github.com/pulumi/pulumi.git v3.248.0 a88168d865b7fd428e5a929cc54aeceaf72d203f"
  [pulumi-command]="https://github.com/pulumi/pulumi-command.git v1.2.1 7f3eb6f3b77cd0fa3895ba437a695dd393f7dd25"
  [traefik-helm-chart]="https://github.com/traefik/traefik-helm-chart.git v41.3.0 a8a66d0098703627b2cf352c66b1725c196a734a"
  [kube-state-metrics]="https://github.com/kubernetes/kube-state-metrics.git v2.19.1 45e1513e95beaaa2f2df92af9958cd9837bb66ab"
)

# third_party_tag NAME -> the tag NAME is pinned at, so versions stamped into builds cannot drift.
third_party_tag() {
  local origin tag commit
  read -r origin tag commit <<<"${THIRD_PARTY_SOURCES[$1]}"
  echo "$tag"
}

# Static, reproducible, lean binaries; never reach for another Go toolchain, and fail rather than
# silently edit go.mod/go.sum.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
LDFLAGS_BASE="-s -w"

log() { printf '[toolchain] %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# stamp_key FILE... -> hash of the inputs that decide a build's output (stdin is hashed too).
stamp_key() {
  { go version; cat "$@" -; } | sha256sum | cut -d' ' -f1
}

# up_to_date NAME KEY OUTPUT... -> true if every output exists and NAME's stamp is KEY.
up_to_date() {
  local name=$1 key=$2; shift 2
  local output
  for output in "$@"; do [[ -e $output ]] || return 1; done
  [[ -f $STAMPS/$name && $(cat "$STAMPS/$name") == "$key" ]]
}

mark_built() { echo "$2" >"$STAMPS/$1"; }

# go_tool MODULE PACKAGE [LDFLAGS] -> builds the `tool` PACKAGE of the module e2e/toolchain/MODULE
# into $BIN/<last path element of PACKAGE>, unless nothing it is built from changed.
go_tool() {
  local mod=$HERE/$1 package=$2 ldflags=${3:-} name key
  name=${package##*/}
  key=$(stamp_key "$mod/go.mod" "$mod/go.sum" "$HERE/lib.sh" <<<"$package $ldflags $CGO_ENABLED ${CGO_CFLAGS:-} ${GO_TAGS:-}")
  if up_to_date "$name" "$key" "$BIN/$name"; then log "$name: up to date"; return; fi
  local t0; t0=$(now)
  (cd "$mod" && go build -trimpath ${GO_TAGS:+-tags "$GO_TAGS"} -ldflags "$LDFLAGS_BASE $ldflags" -o "$BIN/$name" "$package")
  mark_built "$name" "$key"
  log "$name: built in $(elapsed "$t0")"
}

# module_dir MODULE@VERSION -> the module's directory in the module cache (downloading it first).
module_dir() {
  (cd / && GOFLAGS= go mod download -json "$1") | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const j = JSON.parse(s); if (j.Error) throw new Error(j.Error); console.log(j.Dir);
    })'
}

# third_party_snapshots -> the directories that may hold snapshots, most specific first.
third_party_snapshots() {
  [[ -n ${K0S_PLATFORM_THIRD_PARTY:-} ]] && echo "$K0S_PLATFORM_THIRD_PARTY"
  local dir=$ROOT
  while [[ $dir != / ]]; do
    dir=$(dirname "$dir")
    [[ -d $dir/shared/third_party ]] && echo "$dir/shared/third_party"
  done
  return 0
}

# third_party_source NAME -> a directory holding upstream's source at NAME's pinned commit.
third_party_source() {
  local name=$1 origin tag commit snapshot clone=$SRC/clones/$1
  read -r origin tag commit <<<"${THIRD_PARTY_SOURCES[$name]}"
  while read -r snapshot; do
    [[ -f $snapshot/$name/SOURCE.md ]] || continue
    grep -q "commit: $commit" "$snapshot/$name/SOURCE.md" || { log "$snapshot/$name is not $tag ($commit)"; return 1; }
    echo "$snapshot/$name"
    return
  done < <(third_party_snapshots)
  if [[ ! -d $clone/.git ]] || [[ $(git -C "$clone" rev-parse HEAD) != "$commit" ]]; then
    log "$name: no snapshot found; cloning $origin at $tag"
    rm -rf "$clone"
    git clone --quiet --depth 1 --branch "$tag" "$origin" "$clone" >&2 ||
      { log "$name: cannot clone $origin; put its snapshot in \$K0S_PLATFORM_THIRD_PARTY/$name"; return 1; }
    [[ $(git -C "$clone" rev-parse HEAD) == "$commit" ]] || { log "$origin $tag is not $commit"; return 1; }
  fi
  echo "$clone"
}

# ensure_debian_packages PACKAGE... -> installs the missing ones (as root, from Debian's archive).
ensure_debian_packages() {
  local missing=() package
  for package in "$@"; do dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package"); done
  [[ ${#missing[@]} -eq 0 ]] && return
  if [[ $(id -u) != 0 ]]; then log "missing Debian packages: ${missing[*]} (install them as root)"; return 1; fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
