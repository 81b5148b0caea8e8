#!/usr/bin/env bash
# Builds the vcsim harness (test/vcsim) into test/vcsim/bin/vcsim-harness.
#
# Idempotent: installs Debian's golang-go and golang-github-vmware-govmomi-dev
# only when missing (govmomi 0.24 source lands in /usr/share/gocode; Debian
# ships no vcsim command, hence this harness), and skips the build when the
# binary is newer than every .go source. Works from nothing on a fresh Debian
# machine (needs root or sudo for apt-get). FORCE=1 rebuilds anyway.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/test/vcsim"
BIN="$SRC/bin/vcsim-harness"
GOCODE=/usr/share/gocode

log() { echo "build-vcsim: $*"; }

need_pkgs=()
command -v go >/dev/null 2>&1 || need_pkgs+=(golang-go)
[ -d "$GOCODE/src/github.com/vmware/govmomi/simulator" ] || need_pkgs+=(golang-github-vmware-govmomi-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  log "installing ${need_pkgs[*]} with apt-get"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need_pkgs[@]}"
else
  log "go and govmomi source already installed ($(go version | awk '{print $3}'))"
fi

if [ -z "${FORCE:-}" ] && [ -x "$BIN" ]; then
  newer="$(find "$SRC" -maxdepth 1 -name '*.go' -newer "$BIN" | head -n1)"
  if [ -z "$newer" ]; then
    log "up to date: $BIN"
    exit 0
  fi
  log "source changed ($newer), rebuilding"
fi

mkdir -p "$SRC/bin" "$ROOT/.run/gocache"
log "building $BIN (GOPATH mode against $GOCODE)"
cd "$SRC"
# GOPATH mode: the package is built from its directory; its imports resolve
# from Debian's GOPATH tree. -p 2 keeps the build light on small machines.
GOPATH="$GOCODE" GO111MODULE=off GOFLAGS= GOCACHE="$ROOT/.run/gocache" \
  go build -p 2 -o "$BIN.tmp" .
mv "$BIN.tmp" "$BIN"
log "built $BIN"
