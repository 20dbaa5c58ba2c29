// IOMMU_DESTROY, IOMMU_OPTION and IOMMU_VFIO_IOAS (the kernel's main.c, ioas.c option helpers and
// vfio_compat.c's IOMMU_VFIO_IOAS).

import * as U from '@viommu/uapi';
import { SystemError, iommu_destroy, iommu_option, iommu_vfio_ioas } from '@viommu/uapi';
import { registerIoctl } from '../ioctl/registry.js';
import type { Ucmd } from '../ioctl/ucmd.js';
import { getIoas, type Ioas } from './ioas.js';
import { getCompatIoas } from './vfio-compat.js';

function destroyIoctl(ucmd: Ucmd): void {
  const cmd = iommu_destroy.decode(ucmd.cmd);
  ucmd.ctx.objects.destroyById(cmd.id);
}

function optionIoctl(ucmd: Ucmd): void {
  const cmd = iommu_option.decode(ucmd.cmd);
  if (cmd.__reserved) throw new SystemError('EOPNOTSUPP', 'ioctl', 'OPTION __reserved');
  let val: bigint;
  switch (cmd.option_id) {
    case U.IOMMU_OPTION_RLIMIT_MODE:
      val = rlimitMode(ucmd, cmd.object_id, cmd.op, cmd.val64);
      break;
    case U.IOMMU_OPTION_HUGE_PAGES:
      val = hugePages(getIoas(ucmd.ctx, cmd.object_id), cmd.op, cmd.val64);
      break;
    default:
      throw new SystemError('EOPNOTSUPP', 'ioctl', `option ${cmd.option_id}`);
  }
  // Only val64 goes back, for SET as well as GET.
  iommu_option.set(ucmd.cmd, 'val64', val);
  ucmd.user.write(16, ucmd.cmd.subarray(16, 24));
}

function rlimitMode(ucmd: Ucmd, objectId: number, op: number, val64: bigint): bigint {
  if (objectId) throw new SystemError('EOPNOTSUPP', 'ioctl', 'RLIMIT_MODE takes object_id 0');
  if (op === U.IOMMU_OPTION_OP_GET) return ucmd.ctx.accountMode === 1 ? 1n : 0n;
  if (op === U.IOMMU_OPTION_OP_SET) {
    if (!ucmd.capSysResource) throw new SystemError('EPERM', 'ioctl', 'RLIMIT_MODE needs CAP_SYS_RESOURCE');
    if (ucmd.ctx.objects.occupied > 0) throw new SystemError('EBUSY', 'ioctl', 'context has objects');
    if (val64 === 0n) ucmd.ctx.accountMode = 0;
    else if (val64 === 1n) ucmd.ctx.accountMode = 1;
    else throw new SystemError('EINVAL', 'ioctl', 'RLIMIT_MODE value');
    return val64;
  }
  throw new SystemError('EOPNOTSUPP', 'ioctl', `option op ${op}`);
}

function hugePages(ioas: Ioas, op: number, val64: bigint): bigint {
  if (op === U.IOMMU_OPTION_OP_GET) return ioas.iopt.hugePages ? 1n : 0n;
  if (op === U.IOMMU_OPTION_OP_SET) {
    if (val64 === 0n) ioas.iopt.setHugePages(false);
    else if (val64 === 1n) ioas.iopt.setHugePages(true);
    else throw new SystemError('EINVAL', 'ioctl', 'HUGE_PAGES value');
    return val64;
  }
  throw new SystemError('EOPNOTSUPP', 'ioctl', `option op ${op}`);
}

function vfioIoasIoctl(ucmd: Ucmd): void {
  const cmd = iommu_vfio_ioas.decode(ucmd.cmd);
  if (cmd.__reserved) throw new SystemError('EOPNOTSUPP', 'ioctl', 'VFIO_IOAS __reserved');
  switch (cmd.op) {
    case U.IOMMU_VFIO_IOAS_GET: {
      const ioas = getCompatIoas(ucmd.ctx);
      iommu_vfio_ioas.set(ucmd.cmd, 'ioas_id', ioas.id);
      ucmd.respond();
      return;
    }
    case U.IOMMU_VFIO_IOAS_SET:
      ucmd.ctx.vfioIoas = getIoas(ucmd.ctx, cmd.ioas_id);
      return;
    case U.IOMMU_VFIO_IOAS_CLEAR:
      ucmd.ctx.vfioIoas = undefined;
      return;
    default:
      throw new SystemError('EOPNOTSUPP', 'ioctl', `VFIO_IOAS op ${cmd.op}`);
  }
}

registerIoctl({ name: 'IOMMU_DESTROY', request: U.IOMMU_DESTROY, struct: iommu_destroy, handler: destroyIoctl });
registerIoctl({ name: 'IOMMU_OPTION', request: U.IOMMU_OPTION, struct: iommu_option, handler: optionIoctl });
registerIoctl({ name: 'IOMMU_VFIO_IOAS', request: U.IOMMU_VFIO_IOAS, struct: iommu_vfio_ioas, handler: vfioIoasIoctl });
