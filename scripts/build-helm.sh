#!/usr/bin/env bash
# Builds the real `helm` CLI from its Go module (helm.sh/helm/v3) with the
# machine's Go toolchain, so the chart is linted, rendered and installed by the
# same helm that users run, without downloading a binary.
#
# The binary is cached by version in $OURO_CACHE/helm/<version>/bin/helm and is
# rebuilt only when missing or reporting another version. Builds are safe to run
# twice at once: a lock (flock) on the version's folder serialises them, the
# second finds the first's binary, and the binary is written under a per-run
# temporary name then renamed, so an interrupted build never looks finished.
# The ldflags are those of helm's own Makefile (version, and the Kubernetes
# version that `helm template` and `helm lint` assume).
#
# Usage: scripts/build-helm.sh            build if missing; print the binary's path
#        scripts/build-helm.sh --path     print the binary's path only
# Progress and timings go to stderr; stdout is only the path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=helm-version.env
source "$here/helm-version.env"
: "${HELM_VERSION:?}"

cache=${OURO_CACHE:-$HOME/.cache/ouroboros}
dir=$cache/helm/$HELM_VERSION
helm=$dir/bin/helm
if [[ ${1:-} == --path ]]; then
  echo "$helm"
  exit 0
fi

tool=helm
binary=$helm
# shellcheck source=go-tool.sh
source "$here/go-tool.sh"
built() {
  [[ -x $helm ]] || return 1
  local output
  output=$("$helm" version --short 2>&1) || return 1
  [[ $output == "$HELM_VERSION"* ]]
}
go_tool_prepare "$HELM_VERSION"

go_tool_module helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
# The client-go minor version helm was built against is the Kubernetes version
# it assumes when there is no cluster to ask (helm's Makefile does the same).
k8s_minor=$(awk '$1 == "k8s.io/client-go" {print $2}' "$release_mod" | cut -d. -f2)

ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
go_tool_build helm.sh/helm/v3/cmd/helm "$ldflags"
go_tool_finish
