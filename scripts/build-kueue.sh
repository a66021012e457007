#!/usr/bin/env bash
# Builds the real Kueue manager (sigs.k8s.io/kueue/cmd/kueue) from its Go module
# with the machine's Go toolchain, so the integration tests queue TrainingRun
# Jobs through the same Kueue that clusters run, without Docker or a downloaded
# binary. Kueue's CRDs are copied from the same module version
# (config/components/crd/bases) next to the binary.
#
# Cached by version in $OURO_CACHE/kueue/<version>/{bin/kueue,crds/}; rebuilt
# only when missing. Two builds at once are safe: a lock (flock) on the
# version's folder serialises them and the second reuses the first's binary;
# the binary and CRDs are written under per-run temporary names then renamed,
# so an interrupted build never looks finished. The ldflags set the version
# the way Kueue's own Makefile does.
#
# Usage: scripts/build-kueue.sh            build if missing; print the cache dir
#        scripts/build-kueue.sh --dir      print the cache dir only
# The cache dir holds bin/kueue and crds/*.yaml. Progress and timings go to
# stderr; stdout is only the dir.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=kueue-version.env
source "$here/kueue-version.env"
: "${KUEUE_VERSION:?}"

cache=${OURO_CACHE:-$HOME/.cache/ouroboros}
dir=$cache/kueue/$KUEUE_VERSION
if [[ ${1:-} == --dir ]]; then
  echo "$dir"
  exit 0
fi

log() { printf '[build-kueue] %s\n' "$*" >&2; }

# built: the binary and the version stamp (version.txt) both exist (the stamp is written
# last, after the binary and the CRDs are in place).
built() {
  [[ -x $dir/bin/kueue && -d $dir/crds && -f $dir/version.txt ]] || return 1
  [[ $(cat "$dir/version.txt") == "$KUEUE_VERSION" ]]
}

if built; then
  echo "$dir"
  exit 0
fi

mkdir -p "$dir/bin"
exec 9>"$dir/.build.lock"
if ! flock --nonblock 9; then
  log "another build of kueue $KUEUE_VERSION is running; waiting for it"
  flock 9
fi
if built; then # the build we waited for made it
  log "kueue $KUEUE_VERSION already built in $dir"
  echo "$dir"
  exit 0
fi

start=$SECONDS
work=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "go: $(go version); building kueue $KUEUE_VERSION into $dir"

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=mod"
json_field() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

meta=$work/kueue.json
go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" >"$meta"
release_mod=$(json_field "$meta" GoMod)
source_dir=$(json_field "$meta" Dir)
# A throwaway module that requires the release: the release's own go.mod pins
# every dependency (minimal version selection keeps them), and it has no
# replace directives that `go install` would refuse.
{
  echo "module ouroboros.local/kueue-build"
  grep -E '^(go|godebug|toolchain) ' "$release_mod"
  echo "require sigs.k8s.io/kueue $KUEUE_VERSION"
} >"$work/go.mod"
(cd "$work" && go list -deps sigs.k8s.io/kueue/cmd/kueue >/dev/null)

ldflags="-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION"
partial=$(mktemp "$dir/bin/.kueue.XXXXXX")
(cd "$work" && go build -trimpath -ldflags "$ldflags" -o "$partial" sigs.k8s.io/kueue/cmd/kueue)
chmod 0755 "$partial"
mv -f "$partial" "$dir/bin/kueue"

crds=$(mktemp -d "$work/crds.XXXXXX")
cp "$source_dir"/config/components/crd/bases/*.yaml "$crds/"
chmod 0755 "$crds"
chmod 0644 "$crds"/*.yaml
rm -rf "$dir/crds"
mv "$crds" "$dir/crds"
echo "$KUEUE_VERSION" >"$dir/version.txt"
log "kueue $KUEUE_VERSION built in $((SECONDS - start))s"
echo "$dir"
