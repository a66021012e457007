# Sourced by the scripts that build one Go tool from its module into the cache
# (build-helm.sh, build-versitygw.sh, build-kueue.sh): the lock, the work
# folder, the Go environment, the throwaway module that pins a release's
# dependencies, and the rename that make a build safe to run twice at once and
# never leave a half-written binary under its final name.
#
# The caller sets `tool` (its name in logs), `binary` (the cached path,
# $OURO_CACHE/<tool>/<version>/bin/<name>), optionally `result` (what the
# script prints on stdout when done; default: $binary) and defines `built`
# (true when `binary` exists and reports the pinned version). The steps:
# go_tool_prepare, go_tool_module, go_tool_build, then go_tool_finish.

log() { printf '[build-%s] %s\n' "$tool" "$*" >&2; }

# json_field FILE FIELD: one top-level field of a JSON file (go mod download -json, .info).
json_field() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# go_tool_prepare VERSION: print $binary and exit if it is built; else hold the
# version folder's build lock (waiting for a build in progress, and exiting if
# that one made the binary), make the work folder $work (removed on exit), and
# set the Go environment of a reproducible static build.
go_tool_prepare() {
  local version=$1 dir
  dir=$(dirname "$(dirname "$binary")")
  if built; then
    echo "${result:-$binary}"
    exit 0
  fi
  mkdir -p "$dir/bin"
  exec 9>"$dir/.build.lock"
  if ! flock --nonblock 9; then
    log "another build of $tool $version is running; waiting for it"
    flock 9
  fi
  if built; then # the build we waited for made it
    log "$tool $version already built in $dir/bin"
    echo "${result:-$binary}"
    exit 0
  fi
  build_start=$SECONDS
  work=$(mktemp -d "$dir/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  log "go: $(go version); building $tool $version into $dir/bin"
  export CGO_ENABLED=0
  export GOFLAGS="${GOFLAGS:-} -mod=mod"
}

# go_tool_module MODULE VERSION PACKAGE: a throwaway module in $work that requires
# MODULE@VERSION, so the release's own go.mod (not the newest of each
# dependency) decides every version, with PACKAGE's dependencies downloaded.
# Sets release_mod (the release's go.mod), release_dir (its source) and
# release_info (its .info JSON, with the release Time).
go_tool_module() {
  local module=$1 version=$2 package=$3 meta=$work/module.json
  go mod download -json "$module@$version" >"$meta"
  release_mod=$(json_field "$meta" GoMod)
  release_dir=$(json_field "$meta" Dir)
  release_info=$(json_field "$meta" Info)
  {
    echo "module ouroboros.local/$tool-build"
    grep -E '^(go|godebug|toolchain) ' "$release_mod"
    echo "require $module $version"
  } >"$work/go.mod"
  (cd "$work" && go list -deps "$package" >/dev/null)
}

# go_tool_build PACKAGE LDFLAGS: build PACKAGE in $work under a per-run temporary
# name beside $binary, then rename it into place.
go_tool_build() {
  local partial
  partial=$(mktemp "$(dirname "$binary")/.$(basename "$binary").XXXXXX")
  (cd "$work" && go build -trimpath -ldflags "$2" -o "$partial" "$1")
  chmod 0755 "$partial"
  mv -f "$partial" "$binary"
}

# go_tool_finish: log the build's time and print the result.
go_tool_finish() {
  log "$tool built in $((SECONDS - build_start))s"
  echo "${result:-$binary}"
}
