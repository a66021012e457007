# Sourced by the scripts that build one Go tool from its module into the cache
# (build-helm.sh, build-versitygw.sh): the lock, the work folder, the Go
# environment and the rename that make a build safe to run twice at once and
# never leave a half-written binary under its final name.
#
# The caller sets `tool` (its name in logs), `binary` (the cached path,
# $OURO_CACHE/<tool>/<version>/bin/<name>) and defines `built` (true when
# `binary` exists and reports the pinned version).

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
    echo "$binary"
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
    echo "$binary"
    exit 0
  fi
  build_start=$SECONDS
  work=$(mktemp -d "$dir/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  log "go: $(go version); building $tool $version into $dir/bin"
  export CGO_ENABLED=0
  export GOFLAGS="${GOFLAGS:-} -mod=mod"
}

# go_tool_build PACKAGE LDFLAGS: build PACKAGE in $work under a per-run temporary
# name beside $binary, rename it into place, and print its path.
go_tool_build() {
  local partial
  partial=$(mktemp "$(dirname "$binary")/.$(basename "$binary").XXXXXX")
  (cd "$work" && go build -trimpath -ldflags "$2" -o "$partial" "$1")
  chmod 0755 "$partial"
  mv -f "$partial" "$binary"
  log "$tool built in $((SECONDS - build_start))s"
  echo "$binary"
}
