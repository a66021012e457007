#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kubectl from their Go
# modules with the machine's Go toolchain, so the integration tests get a real
# control plane without Docker or downloaded binaries.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces the staging
# modules with ./staging paths. A throwaway module (in a temp dir, never
# committed) requires the release and replaces each staging module with its
# published v0.Y.Z tag instead. Binaries are cached by version in
# $OURO_CACHE/k8s/<version>/bin; a binary is rebuilt only when it is missing or
# reports another version, and is written to a per-run temp name then renamed,
# so an interrupted build never looks finished. Two builds at once (two test
# runs, or a test and a user) are safe: a lock (flock) on the version's folder
# serialises them, and the second reuses what the first built.
#
# Usage: scripts/build-control-plane.sh         build what is missing; print the bin dir
#        scripts/build-control-plane.sh --bin-dir   print the bin dir only
# Progress and timings go to stderr; stdout is only the bin dir.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=control-plane-versions.env
source "$here/control-plane-versions.env"
: "${KUBERNETES_VERSION:?}" "${ETCD_VERSION:?}"

cache=${OURO_CACHE:-$HOME/.cache/ouroboros}
bin=$cache/k8s/$KUBERNETES_VERSION/bin
if [[ ${1:-} == --bin-dir ]]; then
  echo "$bin"
  exit 0
fi

log() { printf '[build-control-plane] %s\n' "$*" >&2; }

# step NAME CMD...: run CMD, report how long it took.
step() {
  local name=$1 start=$SECONDS
  shift
  log "$name ..."
  "$@"
  log "$name done in $((SECONDS - start))s"
}

# has_version BINARY TEXT...: BINARY exists and its version output contains TEXT.
has_version() {
  local binary=$1 want=$2
  shift 2
  [[ -x $bin/$binary ]] || return 1
  # Not piped into `grep -q`: grep exiting early would fail the pipe (pipefail).
  local output
  output=$("$bin/$binary" "$@" 2>&1) || return 1
  [[ $output == *"$want"* ]]
}

# missing_targets: fill k8s_targets and need_etcd with what is not built yet.
missing_targets() {
  k8s_targets=()
  has_version kube-apiserver "Kubernetes $KUBERNETES_VERSION" --version || k8s_targets+=(kube-apiserver)
  has_version kube-controller-manager "Kubernetes $KUBERNETES_VERSION" --version || k8s_targets+=(kube-controller-manager)
  has_version kubectl "Client Version: $KUBERNETES_VERSION" version --client || k8s_targets+=(kubectl)
  need_etcd=true
  has_version etcd "etcd Version: ${ETCD_VERSION#v}" --version && need_etcd=false
}

# all_built: true (and prints the bin dir) when nothing is missing.
all_built() {
  missing_targets
  [[ ${#k8s_targets[@]} -eq 0 && $need_etcd == false ]] || return 1
  log "Kubernetes $KUBERNETES_VERSION and etcd $ETCD_VERSION already built in $bin"
  echo "$bin"
}

all_built && exit 0

mkdir -p "$bin"
exec 9>"$cache/k8s/$KUBERNETES_VERSION/.build.lock"
if ! flock --nonblock 9; then
  log "another build of Kubernetes $KUBERNETES_VERSION is running; waiting for it"
  flock 9
fi
all_built && exit 0 # the build we waited for made everything
work=$(mktemp -d "$cache/k8s/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
total_start=$SECONDS
release_time="" # the release's commit time, set by prepare_kubernetes, stamped as buildDate
log "go: $(go version); building into $bin (scratch modules in $work)"

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=mod"

# json_field FILE KEY: one top-level string field of a JSON document.
json_field() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# build_binary MODULE_DIR PACKAGE NAME LDFLAGS: go build into a per-run temp name, then rename.
build_binary() {
  local dir=$1 package=$2 name=$3 ldflags=$4 partial
  partial=$(mktemp "$bin/.$name.XXXXXX")
  (cd "$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$partial" "$package")
  chmod 0755 "$partial"
  mv -f "$partial" "$bin/$name"
}

prepare_kubernetes() {
  local meta=$work/kubernetes.json release_mod
  go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" >"$meta"
  release_mod=$(json_field "$meta" GoMod)
  release_time=$(json_field "$(json_field "$meta" Info)" Time)

  local want_etcd
  want_etcd=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2}' "$release_mod")
  if [[ $want_etcd != "$ETCD_VERSION" ]]; then
    log "Kubernetes $KUBERNETES_VERSION requires etcd server $want_etcd, but control-plane-versions.env says $ETCD_VERSION"
    exit 1
  fi

  local mod=$work/kubernetes
  mkdir -p "$mod"
  {
    echo "module ouroboros.local/kube-build"
    grep -E '^(go|godebug|toolchain) ' "$release_mod"
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    # Every `k8s.io/NAME => ./staging/...` becomes the published k8s.io/NAME v0.Y.Z.
    local staging_tag=v0.${KUBERNETES_VERSION#v1.}
    awk -v tag="$staging_tag" '$2 == "=>" && $3 ~ /^\.\/staging\// {print "replace " $1 " => " $1 " " tag}' "$release_mod"
  } >"$mod/go.mod"
  log "throwaway go.mod: $(grep -c '^replace' "$mod/go.mod") staging modules pinned to v0.${KUBERNETES_VERSION#v1.}"
  (cd "$mod" && go list -deps "${k8s_targets[@]/#/k8s.io/kubernetes/cmd/}" >/dev/null)
}

# The ldflags of hack/lib/version.sh, so /version reports the real release.
kubernetes_ldflags() {
  local major=${KUBERNETES_VERSION#v} minor flags=""
  minor=${major#*.}
  minor=${minor%%.*}
  major=${major%%.*}
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$release_time"
  done
  echo "$flags"
}

prepare_etcd() {
  local mod=$work/etcd meta=$work/etcd.json
  mkdir -p "$mod"
  go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >"$meta"
  {
    echo "module ouroboros.local/etcd-build"
    grep -E '^(go|godebug|toolchain) ' "$(json_field "$meta" GoMod)"
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  } >"$mod/go.mod"
  (cd "$mod" && go list -deps go.etcd.io/etcd/server/v3 >/dev/null)
}

if [[ $need_etcd == true ]]; then
  step "resolve etcd $ETCD_VERSION modules" prepare_etcd
  step "build etcd" build_binary "$work/etcd" go.etcd.io/etcd/server/v3 etcd ""
fi

if [[ ${#k8s_targets[@]} -gt 0 ]]; then
  step "resolve Kubernetes $KUBERNETES_VERSION modules" prepare_kubernetes
  ldflags=$(kubernetes_ldflags)
  for target in "${k8s_targets[@]}"; do
    step "build $target" build_binary "$work/kubernetes" "k8s.io/kubernetes/cmd/$target" "$target" "$ldflags"
  done
fi

log "all built in $((SECONDS - total_start))s: $(ls "$bin" | tr '\n' ' ')"
echo "$bin"
