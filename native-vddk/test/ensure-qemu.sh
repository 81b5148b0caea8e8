#!/usr/bin/env bash
# Makes sure qemu-img is available for the file-target tests (apt-based hosts).
set -euo pipefail
command -v qemu-img >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-utils >/dev/null
fi
command -v qemu-img >/dev/null 2>&1
