cd '/work/main'
echo 256 > /proc/sys/vm/nr_hugepages
D=/sys/kernel/debug; echo N > $D/failslab/ignore-gfp-wait 2>/dev/null
for f in $D/fail*/verbose; do echo 0 > $f 2>/dev/null; done
echo "== suite selftest (in-process) at $(date +%s)"
node tooling/kernel-lane/runner.mjs --target native --json /tmp/out/selftest.native.json --module packages/native/dist/smoke.js --module packages/backend-mock/dist/index.js 
echo "== suite fail_nth (in-process) at $(date +%s)"
node tooling/kernel-lane/runner.mjs --target native --json /tmp/out/fail_nth.native.json --module packages/backend-mock/dist/index.js --export failNthScenarios --fail-nth 
echo "== viommud --backend native at $(date +%s)"
node apps/viommud/dist/cli.js --backend native --socket /tmp/viommud.sock > /tmp/out/viommud.log 2>&1 &
DPID=$!; i=0
while [ ! -S /tmp/viommud.sock ] && [ $i -lt 600 ] && kill -0 $DPID 2>/dev/null; do sleep 0.5; i=$((i+1)); done
[ -S /tmp/viommud.sock ] && echo "viommud up at $(date +%s)" || { echo 'viommud did not start:'; tail -5 /tmp/out/viommud.log; }
echo "== suite selftest (through viommud) at $(date +%s)"
node tooling/kernel-lane/runner.mjs --target daemon --socket /tmp/viommud.sock --fd-passing --json /tmp/out/selftest.daemon.json --module packages/native/dist/smoke.js --module packages/backend-mock/dist/index.js  --defer '^iommufd_ioas\.[a-z_]+\.(access_rw|access_rw_unaligned|ioas_iova_alloc)$' '8,000-25,000 synchronous daemon round trips at 50-90 ms each under TCG (run with --daemon-all)'
echo "== suite fail_nth (through viommud) at $(date +%s)"
node tooling/kernel-lane/runner.mjs --target daemon --socket /tmp/viommud.sock --fd-passing --json /tmp/out/fail_nth.daemon.json --module packages/backend-mock/dist/index.js --export failNthScenarios --fail-nth  --defer '^iommufd_ioas\.[a-z_]+\.(access_rw|access_rw_unaligned|ioas_iova_alloc)$' '8,000-25,000 synchronous daemon round trips at 50-90 ms each under TCG (run with --daemon-all)'
echo "== isolation (through viommud) at $(date +%s)"
node tooling/kernel-lane/isolation.mjs --socket /tmp/viommud.sock --json /tmp/out/isolation.json
kill -TERM $DPID; wait $DPID; echo "viommud exit=$? at $(date +%s)"
