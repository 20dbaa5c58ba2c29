#!/bin/bash
# The real-kernel lane in one command: build the Linux 7.2.13 test kernel if it is not cached, boot
# it under QEMU, run scenario suites through @viommu/native on its real /dev/iommu, run the same
# suites on the simulator here, and compare them case by case.
# usage: run.sh [--module PATH]... [--export NAME] [--fail-nth] [--filter REGEX] [--no-sim]
#   Without --module, the default suites:
#     selftest  packages/native/dist/smoke.js + packages/backend-mock/dist/index.js `scenarios`
#               (the port of the kernel's iommufd selftest), when backend-mock is built;
#     fail_nth  backend-mock's `failNthScenarios` (iommufd_fail_nth.c) with fault injection.
# Results: tooling/kernel-lane/results/ (log, console, <suite>.native.json, <suite>.sim.json,
# <suite>.compare.txt). Exit 0 only if no suite failed on the kernel or differed from the simulator.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${VIOMMU_LANE_OUT:-$HERE/results}
CUSTOM=(); FILTER=(); SIM=1
while [ $# -gt 0 ]; do
  case $1 in
    --module|--export) CUSTOM+=("$1" "$2"); shift 2 ;;
    --fail-nth) CUSTOM+=(--fail-nth); shift ;;
    --filter) FILTER=(--filter "$2"); shift 2 ;;
    --no-sim) SIM=0; shift ;;
    *) echo "usage: run.sh [--module PATH]... [--export NAME] [--fail-nth] [--filter REGEX] [--no-sim]" >&2; exit 2 ;;
  esac
done

# What runs in the guest is the checkout's compiled JavaScript: build it here first.
cd "$REPO"
node_modules/.bin/tsc --build packages/native
node packages/native/scripts/build-addon.mjs --required
MOCK=packages/backend-mock/dist/index.js
if [ -f packages/backend-mock/tsconfig.json ]; then
  node_modules/.bin/tsc --build packages/backend-mock >/dev/null 2>&1 || echo "kernel-lane: backend-mock built with type errors" >&2
fi

# Suites: a name and the runner arguments, one per line.
SUITES=()
if [ ${#CUSTOM[@]} -gt 0 ]; then
  SUITES+=("custom $(printf "'%s' " "${CUSTOM[@]}")")
else
  if [ -f "$MOCK" ]; then SUITES+=("selftest --module packages/native/dist/smoke.js --module $MOCK")
  else SUITES+=("selftest --module packages/native/dist/smoke.js"); fi
  if [ -f "$MOCK" ] && grep -q failNthScenarios packages/backend-mock/dist/fail-nth.js 2>/dev/null; then
    SUITES+=("fail_nth --module $MOCK --export failNthScenarios --fail-nth")
  fi
fi
FILTERARG=$([ ${#FILTER[@]} -gt 0 ] && printf "'%s' " "${FILTER[@]}" || true)

IMG=$("$HERE/build-kernel.sh" | tail -1)
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.compare.txt
# The guest script: what iommufd_fail_nth.c's constructor sets up, hugepages for the selftest's
# hugepage variants, then one runner per suite on /dev/iommu.
{
  echo "cd '$REPO'"
  echo "echo 256 > /proc/sys/vm/nr_hugepages"
  echo "D=/sys/kernel/debug; echo N > \$D/failslab/ignore-gfp-wait 2>/dev/null"
  echo "for f in \$D/fail*/verbose; do echo 0 > \$f 2>/dev/null; done"
  for s in "${SUITES[@]}"; do
    name=${s%% *}; args=${s#* }
    echo "echo '== suite $name'"
    echo "node tooling/kernel-lane/runner.mjs --target native --json /tmp/out/$name.native.json $args $FILTERARG"
  done
} > "$OUT/guest.sh"
echo "kernel-lane: booting $IMG (TCG; about a minute to boot and start Node.js)"
"$HERE/boot.sh" "$IMG" "$OUT/guest.sh" "$OUT"

status=0
node_modules/.bin/tsc --build packages/core >/dev/null 2>&1 || echo "kernel-lane: core built with type errors" >&2
for s in "${SUITES[@]}"; do
  name=${s%% *}; args=${s#* }
  echo "== $name"
  if [ ! -f "$OUT/$name.native.json" ]; then echo "kernel-lane: the guest wrote no results for $name" >&2; status=1; continue; fi
  SIMARG=()
  if [ $SIM -eq 1 ]; then
    eval "node '$HERE/runner.mjs' --target sim --json '$OUT/$name.sim.json' $args $FILTERARG" > "$OUT/$name.sim.log" 2>&1 || true
    [ -f "$OUT/$name.sim.json" ] && SIMARG=(--sim "$OUT/$name.sim.json") || tail -3 "$OUT/$name.sim.log"
  fi
  node "$HERE/compare.mjs" "$OUT/$name.native.json" "${SIMARG[@]+"${SIMARG[@]}"}" --table "$OUT/$name.compare.txt" || status=1
done
exit $status
