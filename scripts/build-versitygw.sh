#!/usr/bin/env bash
# Builds the Versity S3 Gateway (versitygw, an S3-compatible object server)
# from its Go module (github.com/versity/versitygw) with the machine's Go
# toolchain, so the artifact store's s3:// path is tested against a real S3
# server without Docker or a downloaded binary. Why versitygw and not MinIO:
# README, "Object storage".
#
# The binary is cached by version in $OURO_CACHE/versitygw/<version>/bin/versitygw
# and is rebuilt only when missing or reporting another version. Builds are safe
# to run twice at once: a lock (flock) on the version's folder serialises them,
# the second finds the first's binary, and the binary is written under a per-run
# temporary name then renamed, so an interrupted build never looks finished.
# The ldflags set what versitygw's own Makefile sets (main.Version, BuildTime).
#
# Usage: scripts/build-versitygw.sh            build if missing; print the binary's path
#        scripts/build-versitygw.sh --path     print the binary's path only
# Progress and timings go to stderr; stdout is only the path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versitygw-version.env
source "$here/versitygw-version.env"
: "${VERSITYGW_VERSION:?}"

cache=${OURO_CACHE:-$HOME/.cache/ouroboros}
dir=$cache/versitygw/$VERSITYGW_VERSION
gateway=$dir/bin/versitygw
if [[ ${1:-} == --path ]]; then
  echo "$gateway"
  exit 0
fi

log() { printf '[build-versitygw] %s\n' "$*" >&2; }

built() {
  [[ -x $gateway ]] || return 1
  local output
  output=$("$gateway" --version 2>&1) || return 1
  [[ $output == *"Version  : $VERSITYGW_VERSION"* ]]
}

if built; then
  echo "$gateway"
  exit 0
fi

mkdir -p "$dir/bin"
exec 9>"$dir/.build.lock"
if ! flock --nonblock 9; then
  log "another build of versitygw $VERSITYGW_VERSION is running; waiting for it"
  flock 9
fi
if built; then # the build we waited for made it
  log "versitygw $VERSITYGW_VERSION already built in $dir/bin"
  echo "$gateway"
  exit 0
fi

start=$SECONDS
work=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "go: $(go version); building versitygw $VERSITYGW_VERSION into $dir/bin"

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=mod"
json_field() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# A throwaway module that requires the pinned release, so that the release's own
# go.mod (not the newest of each dependency) decides every version.
meta=$work/versitygw.json
go mod download -json "github.com/versity/versitygw@$VERSITYGW_VERSION" >"$meta"
release_mod=$(json_field "$meta" GoMod)
released=$(json_field "$(json_field "$meta" Info)" Time)
{
  echo "module ouroboros.local/versitygw-build"
  grep -E '^(go|godebug) ' "$release_mod"
  echo "require github.com/versity/versitygw $VERSITYGW_VERSION"
} >"$work/go.mod"
(cd "$work" && go list -deps github.com/versity/versitygw/cmd/versitygw >/dev/null)

ldflags="-s -w -X main.Version=$VERSITYGW_VERSION -X main.BuildTime=$released -X main.Build=goproxy"
partial=$(mktemp "$dir/bin/.versitygw.XXXXXX")
(cd "$work" && go build -trimpath -ldflags "$ldflags" -o "$partial" github.com/versity/versitygw/cmd/versitygw)
chmod 0755 "$partial"
mv -f "$partial" "$gateway"
log "versitygw $VERSITYGW_VERSION built in $((SECONDS - start))s"
echo "$gateway"
