# Shared by the toolchain scripts (sourced, not run): where the cache lives, logging, input
# stamps, and Go builds of pinned modules. Every input comes from a registry through its ordinary
# client: Go modules through the Go module proxy, Debian's packages, npm (test/toolchainSources.test.ts).

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

# Static, reproducible, lean binaries; never reach for another Go toolchain, and fail rather than
# silently edit go.mod/go.sum.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
LDFLAGS_BASE="-s -w"

log() { printf '[toolchain] %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# stamp_key INPUT... -> hash of what decides a build's output: the Go version, stdin, and each
# INPUT, a file's contents or a shell function's definition. A build names its own function rather
# than its script, so editing one build (or a helper it does not call) leaves every other stamp alone.
stamp_key() {
  local input
  {
    go version
    for input in "$@"; do
      if declare -F "$input" >/dev/null; then declare -f "$input"; else cat "$input"; fi
    done
    cat -
  } | sha256sum | cut -d' ' -f1
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
  key=$(stamp_key go_tool "$mod/go.mod" "$mod/go.sum" <<<"$package $LDFLAGS_BASE $ldflags $CGO_ENABLED ${CGO_CFLAGS:-} ${GO_TAGS:-}")
  if up_to_date "$name" "$key" "$BIN/$name"; then log "$name: up to date"; return; fi
  local t0; t0=$(now)
  (cd "$mod" && go build -trimpath ${GO_TAGS:+-tags "$GO_TAGS"} -ldflags "$LDFLAGS_BASE $ldflags" -o "$BIN/$name" "$package")
  mark_built "$name" "$key"
  log "$name: built in $(elapsed "$t0")"
}

# own_program NAME DIR -> builds our own small Go program in DIR (its main package, on served
# modules) into $BIN/NAME, unless nothing it is built from changed.
own_program() {
  local name=$1 mod=$2 key
  key=$(stamp_key own_program "$mod/go.mod" "$mod/go.sum" "$mod/main.go" <<<"$LDFLAGS_BASE")
  if up_to_date "$name" "$key" "$BIN/$name"; then log "$name: up to date"; return; fi
  local t0; t0=$(now)
  mkdir -p "$BIN"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS_BASE" -o "$BIN/$name" .)
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

# ensure_debian_packages PACKAGE... -> installs the missing ones (as root, from Debian's archive).
ensure_debian_packages() {
  local missing=() package
  for package in "$@"; do dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package"); done
  [[ ${#missing[@]} -eq 0 ]] && return
  if [[ $(id -u) != 0 ]]; then log "missing Debian packages: ${missing[*]} (install them as root)"; return 1; fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
