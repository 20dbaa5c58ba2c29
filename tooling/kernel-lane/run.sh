#!/bin/bash
# The real-kernel lane in one command: build the Linux 7.2.13 test kernel if it is not cached, boot
# it under QEMU, run scenario suites through @viommu/native on its real /dev/iommu, run the same
# suites on the simulator here, and compare them case by case.
# usage: run.sh [--module PATH]... [--export NAME] [--fail-nth] [--filter REGEX] [--no-sim]
#               [--daemon | --no-daemon | --daemon-all]
#   Without --module, the default suites:
#     selftest  packages/native/dist/smoke.js + packages/backend-mock/dist/index.js `scenarios`
#               (the port of the kernel's iommufd selftest), when backend-mock is built;
#     fail_nth  backend-mock's `failNthScenarios` (iommufd_fail_nth.c) with fault injection.
#   --daemon (the default; --no-daemon leaves it out) runs every suite a second time in the same
#   boot through viommud: the guest starts `viommud --backend native` on a socket in /tmp and the
#   runner gives each case its own connection (connectDaemonProcess). Those results are compared
#   with the in-process run of the same boot and with the simulator. Every call is a synchronous
#   round trip to the daemon, 50-90 ms under TCG, so the cases of DAEMON_DEFER (8,000-25,000 calls
#   each: hours together) are deferred there unless --daemon-all is given.
# Results: tooling/kernel-lane/results/ (log, console, viommud.log, <suite>.native.json,
# <suite>.daemon.json, <suite>.sim.json, <suite>.compare.txt, <suite>.daemon.compare.txt).
# Exit 0 only if no suite failed on the kernel or differed from a baseline.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${VIOMMU_LANE_OUT:-$HERE/results}
CUSTOM=(); FILTER=(); SIM=1; DAEMON=${VIOMMU_LANE_DAEMON:-1}; DAEMON_ALL=0
# access_rw (25,000 ioctls), access_rw_unaligned (12,600) and ioas_iova_alloc (8,000-16,000).
DAEMON_DEFER='^iommufd_ioas\.[a-z_]+\.(access_rw|access_rw_unaligned|ioas_iova_alloc)$'
DEFER_WHY='8,000-25,000 synchronous daemon round trips at 50-90 ms each under TCG (run with --daemon-all)'
while [ $# -gt 0 ]; do
  case $1 in
    --module|--export) CUSTOM+=("$1" "$2"); shift 2 ;;
    --fail-nth) CUSTOM+=(--fail-nth); shift ;;
    --filter) FILTER=(--filter "$2"); shift 2 ;;
    --no-sim) SIM=0; shift ;;
    --daemon) DAEMON=1; shift ;;
    --no-daemon) DAEMON=0; shift ;;
    --daemon-all) DAEMON=1; DAEMON_ALL=1; shift ;;
    --daemon-fd-passing) DAEMON_FD=--fd-passing; shift ;;
    *) echo "usage: run.sh [--module PATH]... [--export NAME] [--fail-nth] [--filter REGEX] [--no-sim] [--daemon|--no-daemon|--daemon-all] [--daemon-fd-passing]" >&2; exit 2 ;;
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
if [ $DAEMON -eq 1 ]; then
  # viommud and @viommu/protocol (the runner's daemon target), with what they reference.
  node_modules/.bin/tsc --build apps/viommud || { echo "kernel-lane: viommud does not build" >&2; exit 1; }
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
rm -f "$OUT"/*.json "$OUT"/*.compare.txt "$OUT"/viommud.log
# The guest script: what iommufd_fail_nth.c's constructor sets up, hugepages for the selftest's
# hugepage variants, then one runner per suite on /dev/iommu; then, with the daemon, viommud on the
# same /dev/iommu and every suite again through it (`date +%s` around each run: TCG timings).
SOCK=/tmp/viommud.sock
{
  echo "cd '$REPO'"
  echo "echo 256 > /proc/sys/vm/nr_hugepages"
  echo "D=/sys/kernel/debug; echo N > \$D/failslab/ignore-gfp-wait 2>/dev/null"
  echo "for f in \$D/fail*/verbose; do echo 0 > \$f 2>/dev/null; done"
  for s in "${SUITES[@]}"; do
    name=${s%% *}; args=${s#* }
    echo "echo \"== suite $name (in-process) at \$(date +%s)\""
    echo "node tooling/kernel-lane/runner.mjs --target native --json /tmp/out/$name.native.json $args $FILTERARG"
  done
  if [ $DAEMON -eq 1 ]; then
    echo "echo \"== viommud --backend native at \$(date +%s)\""
    echo "node apps/viommud/dist/cli.js --backend native --socket $SOCK > /tmp/out/viommud.log 2>&1 &"
    echo "DPID=\$!; i=0"
    echo "while [ ! -S $SOCK ] && [ \$i -lt 600 ] && kill -0 \$DPID 2>/dev/null; do sleep 0.5; i=\$((i+1)); done"
    echo "[ -S $SOCK ] && echo \"viommud up at \$(date +%s)\" || { echo 'viommud did not start:'; tail -5 /tmp/out/viommud.log; }"
    for s in "${SUITES[@]}"; do
      name=${s%% *}; args=${s#* }
      echo "echo \"== suite $name (through viommud) at \$(date +%s)\""
      DEFERARG=$([ $DAEMON_ALL -eq 1 ] || printf -- "--defer '%s' '%s'" "$DAEMON_DEFER" "$DEFER_WHY")
      echo "node tooling/kernel-lane/runner.mjs --target daemon --socket $SOCK ${DAEMON_FD:-} --json /tmp/out/$name.daemon.json $args $FILTERARG $DEFERARG"
    done
    # Two connections at once: the session processes must be kept apart by the kernel (ADR 0125).
    echo "echo \"== isolation (through viommud) at \$(date +%s)\""
    echo "node tooling/kernel-lane/isolation.mjs --socket $SOCK --json /tmp/out/isolation.json"
    echo "kill -TERM \$DPID; wait \$DPID; echo \"viommud exit=\$? at \$(date +%s)\""
  fi
} > "$OUT/guest.sh"
echo "kernel-lane: booting $IMG (TCG; about a minute to boot and start Node.js)"
# Through the daemon a buffer lives three times (the daemon's real pages, its shadow, the client's
# copy and shadow: ADR 0120), so the guest gets more memory then.
"$HERE/boot.sh" "$IMG" "$OUT/guest.sh" "$OUT" $([ $DAEMON -eq 1 ] && echo 4096 || echo 2048) 3600

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
  if [ $DAEMON -eq 1 ]; then
    echo "== $name through viommud"
    if [ ! -f "$OUT/$name.daemon.json" ]; then echo "kernel-lane: the guest wrote no daemon results for $name" >&2; status=1; continue; fi
    node "$HERE/compare.mjs" "$OUT/$name.daemon.json" --native "$OUT/$name.native.json" "${SIMARG[@]+"${SIMARG[@]}"}" \
      --table "$OUT/$name.daemon.compare.txt" || status=1
  fi
done
if [ $DAEMON -eq 1 ]; then
  echo "== isolation through viommud"
  if [ ! -f "$OUT/isolation.json" ]; then echo "kernel-lane: the guest wrote no isolation results" >&2; status=1
  else node -e 'const r=require(process.argv[1]).results; for (const c of r) console.log(c.status, c.name, c.message ?? ""); process.exit(r.every((c) => c.status === "pass") ? 0 : 1)' "$OUT/isolation.json" || status=1; fi
fi
exit $status
