#!/bin/bash
# Boot the lane's kernel under QEMU (TCG: nested KVM hangs on these machines) with this machine's
# root file system shared read-only, run SCRIPT (a host path) inside as root, and power off.
# The script's output is OUTDIR/log (printed at the end); the console is OUTDIR/console; the
# guest sees OUTDIR, writable, at /tmp/out.
# usage: boot.sh BZIMAGE SCRIPT OUTDIR [MEM_MB] [TIMEOUT_S]
set -euo pipefail
KERNEL=$1; SCRIPT=$2; OUT=$3; MEM=${4:-2048}; LIMIT=${5:-1800}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"; rm -f "$OUT/log"
APPEND="console=ttyS0 earlyprintk=serial panic=-1 ro root=hostroot rootfstype=9p"
APPEND+=" rootflags=trans=virtio,version=9p2000.L,msize=512000 init=$HERE/guest-init.sh viommu.run=$SCRIPT"
timeout "$LIMIT" qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp 2 -m "$MEM" \
  -nographic -no-reboot -kernel "$KERNEL" -append "$APPEND" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$OUT",mount_tag=out,security_model=none \
  > "$OUT/console" 2>&1 || echo "kernel-lane: qemu exited with $? (124 = timed out after ${LIMIT}s)" >&2
if [ -f "$OUT/log" ]; then cat "$OUT/log"; else echo "kernel-lane: no log from the guest; console tail:"; tail -30 "$OUT/console"; exit 1; fi
