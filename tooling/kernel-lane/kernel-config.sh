#!/bin/bash
# Configure the lane's test kernel: x86_64, tinyconfig plus what QEMU + virtio-9p boot needs,
# plus iommufd and its selftest mock driver (CONFIG_IOMMUFD_TEST) and what its tests touch
# (hugetlbfs, memfd, eventfd, Unix sockets for fd passing).
# usage: kernel-config.sh SRC_DIR BUILD_DIR
set -euo pipefail
SRC=$1; O=$2
mkdir -p "$O"
make -C "$SRC" O="$O" tinyconfig >/dev/null
cfg() { "$SRC/scripts/config" --file "$O/.config" "$@"; }
# boot, console and the 9p root
BASE="64BIT SMP PRINTK TTY SERIAL_8250 SERIAL_8250_CONSOLE EARLY_PRINTK BINFMT_ELF BINFMT_SCRIPT
  DEVTMPFS DEVTMPFS_MOUNT PROC_FS SYSFS TMPFS SHMEM MULTIUSER PCI PCI_MSI ACPI
  HYPERVISOR_GUEST PARAVIRT KVM_GUEST VIRTIO_MENU VIRTIO VIRTIO_PCI NET NET_9P NET_9P_VIRTIO 9P_FS"
# what Node.js and our tests use
USER="FUTEX EPOLL EVENTFD SIGNALFD TIMERFD AIO FILE_LOCKING POSIX_TIMERS HIGH_RES_TIMERS
  ADVISE_SYSCALLS MEMFD_CREATE UNIX INET TRANSPARENT_HUGEPAGE HUGETLBFS HUGETLB_PAGE DEBUG_FS"
# iommufd and the selftest mock (IOMMUFD_TEST hangs off the runtime-testing and fault-injection menus)
IOMMU="COMPILE_TEST GENERIC_PT IOMMU_SUPPORT IOMMU_PT IOMMU_PT_AMDV1 IOMMUFD AMD_IOMMU IOMMU_SVA
  DEBUG_KERNEL RUNTIME_TESTING_MENU FAULT_INJECTION FAILSLAB FAULT_INJECTION_DEBUG_FS IOMMUFD_TEST"
for o in $BASE $USER $IOMMU; do cfg -e "$o"; done
make -C "$SRC" O="$O" olddefconfig >/dev/null
missing=0
for o in IOMMUFD IOMMUFD_TEST IOMMU_IOPF MEMFD_CREATE EVENTFD UNIX HUGETLBFS 9P_FS NET_9P_VIRTIO VIRTIO_PCI SERIAL_8250_CONSOLE; do
  grep -q "^CONFIG_$o=y" "$O/.config" || { echo "kernel-config: CONFIG_$o is not set" >&2; missing=1; }
done
exit $missing
