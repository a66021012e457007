#!/usr/bin/env bash
# Make `prometheus` and `promtool` available for the tests (Debian's
# `prometheus` package ships both). Prints the directory holding them.
# Exit 0 when they are there (already, or installed now), 3 when they are not
# and cannot be installed here (no apt-get, or not root): the tests skip then,
# saying so.
set -euo pipefail

if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
  dirname "$(command -v promtool)"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-prometheus: no promtool/prometheus on PATH and no apt-get to install Debian's prometheus package" >&2
  exit 3
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-prometheus: no promtool/prometheus on PATH; as root: apt-get install -y prometheus" >&2
  exit 3
fi
echo "install-prometheus: apt-get install prometheus (promtool and the server, for the tests)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# --no-install-recommends: the server and promtool, without the node exporter and its friends.
apt-get install -y -qq --no-install-recommends prometheus >&2
dirname "$(command -v promtool)"
