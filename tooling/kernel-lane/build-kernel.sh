#!/bin/bash
# Build (once) the lane's Linux 7.2.13 test kernel and print the path of its bzImage on the last line.
# The source comes from Debian's linux-source-7.2 package (suite sid) through this machine's own
# Debian archive; VIOMMU_KSRC=/path/to/linux-source-7.2 reuses an already unpacked tree instead.
# usage: build-kernel.sh [CACHE_DIR]   (default: $HOME/.cache/viommu-kernel)
set -euo pipefail
CACHE=${1:-${VIOMMU_KERNEL_CACHE:-$HOME/.cache/viommu-kernel}}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$CACHE"
OUT="$CACHE/build"
IMG="$OUT/arch/x86/boot/bzImage"
log() { echo "kernel-lane: $*" >&2; }

# 1. host tools: compiler side of kbuild, and QEMU to boot the result
need=()
for t in flex bison bc cpio; do command -v "$t" >/dev/null || need+=("$t"); done
[ -f /usr/include/libelf.h ] || need+=(libelf-dev)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update >/dev/null 2>&1 || true
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi

# Cached and still matching the config script: nothing to fetch or build.
if [ -f "$IMG" ] && [ ! "$HERE/kernel-config.sh" -nt "$IMG" ]; then echo "$IMG"; exit 0; fi

# 2. the source tree
if [ -n "${VIOMMU_KSRC:-}" ] && [ -f "$VIOMMU_KSRC/Makefile" ]; then
  SRC=$VIOMMU_KSRC
else
  SRC="$CACHE/linux-source-7.2"
  if [ ! -f "$SRC/Makefile" ]; then
    log "fetching linux-source-7.2 (sid)"
    LISTS="$CACHE/apt-lists"; mkdir -p "$LISTS/partial"
    URI=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$URI" ] || URI=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
    echo "deb [trusted=yes] $URI sid main" > "$CACHE/sid.list"
    APT=(-o "Dir::State::Lists=$LISTS" -o "Dir::Etc::SourceList=$CACHE/sid.list" -o Dir::Etc::SourceParts=/dev/null)
    apt-get "${APT[@]}" update >/dev/null
    (cd "$CACHE" && apt-get "${APT[@]}" download linux-source-7.2 >/dev/null 2>&1)
    rm -rf "$CACHE/pkg"
    dpkg -x "$CACHE"/linux-source-7.2_*_all.deb "$CACHE/pkg"
    tar -C "$CACHE" -xf "$CACHE"/pkg/usr/src/linux-source-7.2.tar.xz
    rm -rf "$CACHE/pkg" "$CACHE"/linux-source-7.2_*_all.deb
  fi
fi
grep -q '^VERSION = 7' "$SRC/Makefile" && grep -q '^PATCHLEVEL = 2' "$SRC/Makefile" \
  || { log "$SRC is not a Linux 7.2 tree"; exit 1; }

# 3. configure and build (kbuild is incremental: a changed config rebuilds only what it touches)
log "configuring and building in $OUT (10-20 min on 2 cores; log in $CACHE/build.log)"
"$HERE/kernel-config.sh" "$SRC" "$OUT"
if ! make -C "$SRC" O="$OUT" -j"$(nproc)" bzImage >"$CACHE/build.log" 2>&1; then
  tail -30 "$CACHE/build.log" >&2; exit 1
fi
echo "$IMG"
