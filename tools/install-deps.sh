#!/usr/bin/env bash
# install-deps.sh PKG... — install the Debian packages among PKG... that are
# missing.  Quiet no-op when all are installed.  As root: apt-get update once,
# then apt-get install (noninteractive).  Not root: print the exact sudo line
# and exit 1.  Called by `make deps`.
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: $0 PKG..." >&2; exit 2; }

missing=()
for pkg in "$@"; do
    # dpkg-query(1): Status is "install ok installed" only when fully installed.
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "sudo apt-get install -y ${missing[*]}"
    exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
