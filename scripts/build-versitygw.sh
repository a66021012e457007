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

tool=versitygw
binary=$gateway
# shellcheck source=go-tool.sh
source "$here/go-tool.sh"
built() {
  [[ -x $gateway ]] || return 1
  local output
  output=$("$gateway" --version 2>&1) || return 1
  [[ $output == *"Version  : $VERSITYGW_VERSION"* ]]
}
go_tool_prepare "$VERSITYGW_VERSION"

go_tool_module github.com/versity/versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw
released=$(json_field "$release_info" Time)

ldflags="-s -w -X main.Version=$VERSITYGW_VERSION -X main.BuildTime=$released -X main.Build=goproxy"
go_tool_build github.com/versity/versitygw/cmd/versitygw "$ldflags"
go_tool_finish
