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

tool=kueue
binary=$dir/bin/kueue
result=$dir
# shellcheck source=go-tool.sh
source "$here/go-tool.sh"
# built: the binary and the version stamp (version.txt) both exist (the stamp is written
# last, after the binary and the CRDs are in place).
built() {
  [[ -x $binary && -d $dir/crds && -f $dir/version.txt ]] || return 1
  [[ $(cat "$dir/version.txt") == "$KUEUE_VERSION" ]]
}
go_tool_prepare "$KUEUE_VERSION"

go_tool_module sigs.k8s.io/kueue "$KUEUE_VERSION" sigs.k8s.io/kueue/cmd/kueue
go_tool_build sigs.k8s.io/kueue/cmd/kueue "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION"

crds=$(mktemp -d "$work/crds.XXXXXX")
cp "$release_dir"/config/components/crd/bases/*.yaml "$crds/"
chmod 0755 "$crds"
chmod 0644 "$crds"/*.yaml
rm -rf "$dir/crds"
mv "$crds" "$dir/crds"
echo "$KUEUE_VERSION" >"$dir/version.txt"
go_tool_finish
