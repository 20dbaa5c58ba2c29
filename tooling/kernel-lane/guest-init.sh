#!/bin/sh
# PID 1 of the lane's guest. The host's / is the (read-only, 9p) root; this mounts the kernel's
# pseudo file systems, a tmpfs /tmp, and the writable 9p share "out" at /tmp/out, runs the script
# named by viommu.run= on the kernel command line, and powers the guest off.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /tmp/out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out /tmp/out
script=$(sed -n 's/.*viommu\.run=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "kernel-lane guest: $(uname -r), running $script"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp
sh "$script" > /tmp/out/log 2>&1
echo "exit=$?" >> /tmp/out/log
sync
echo o > /proc/sysrq-trigger 2>/dev/null
poweroff -f
