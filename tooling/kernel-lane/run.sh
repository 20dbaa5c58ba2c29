#!/bin/bash
# The real-kernel lane in one command: build the Linux 7.2.13 test kernel if it is not cached, boot
# it under QEMU, run scenario modules through @viommu/native on its real /dev/iommu, run the same
# modules on the simulator here, and compare them case by case.
# usage: run.sh [--module PATH]... [--filter REGEX] [--no-sim]
#   default modules: packages/native/dist/smoke.js, and packages/backend-mock/dist/index.js (the
#   port of the kernel's iommufd selftest) when it is built.
# Results: tooling/kernel-lane/results/{log,console,native.json,sim.json,compare.txt}.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${VIOMMU_LANE_OUT:-$HERE/results}
MODULES=(); PASS=(); SIM=1
while [ $# -gt 0 ]; do
  case $1 in
    --module) MODULES+=("$2"); shift 2 ;;
    --filter) PASS+=(--filter "$2"); shift 2 ;;
    --no-sim) SIM=0; shift ;;
    *) echo "usage: run.sh [--module PATH]... [--filter REGEX] [--no-sim]" >&2; exit 2 ;;
  esac
done

# What runs in the guest is the checkout's compiled JavaScript: build it here first.
cd "$REPO"
node_modules/.bin/tsc --build packages/native
node packages/native/scripts/build-addon.mjs --required
if [ ${#MODULES[@]} -eq 0 ]; then
  MODULES=(packages/native/dist/smoke.js)
  if [ -f packages/backend-mock/tsconfig.json ]; then
    node_modules/.bin/tsc --build packages/backend-mock >/dev/null 2>&1 || echo "kernel-lane: backend-mock built with type errors" >&2
    [ -f packages/backend-mock/dist/index.js ] && MODULES+=(packages/backend-mock/dist/index.js)
  fi
fi
ARGS=()
for m in "${MODULES[@]}"; do ARGS+=(--module "$m"); done
ARGS+=("${PASS[@]+"${PASS[@]}"}")

IMG=$("$HERE/build-kernel.sh" | tail -1)
mkdir -p "$OUT"
rm -f "$OUT/native.json" "$OUT/sim.json"
# The guest script: hugepages for the selftest's hugepage variants, then the runner on /dev/iommu.
{
  echo "cd '$REPO'"
  echo "echo 256 > /proc/sys/vm/nr_hugepages"
  printf 'node tooling/kernel-lane/runner.mjs --target native --json /tmp/out/native.json'
  printf " '%s'" "${ARGS[@]}"
  echo
} > "$OUT/guest.sh"
echo "kernel-lane: booting $IMG (TCG; about a minute to boot and start Node.js)"
"$HERE/boot.sh" "$IMG" "$OUT/guest.sh" "$OUT"
[ -f "$OUT/native.json" ] || { echo "kernel-lane: the guest wrote no results" >&2; exit 1; }

if [ $SIM -eq 1 ]; then
  node_modules/.bin/tsc --build packages/core >/dev/null 2>&1 || echo "kernel-lane: core built with type errors" >&2
  echo "kernel-lane: the same scenarios on the simulator"
  node "$HERE/runner.mjs" --target sim --json "$OUT/sim.json" "${ARGS[@]}" > "$OUT/sim.log" 2>&1 || true
  tail -1 "$OUT/sim.log"
fi
echo "kernel-lane: comparison (full table in $OUT/compare.txt)"
SIMARG=(); [ -f "$OUT/sim.json" ] && SIMARG=(--sim "$OUT/sim.json")
node "$HERE/compare.mjs" "$OUT/native.json" "${SIMARG[@]+"${SIMARG[@]}"}" --table "$OUT/compare.txt"
