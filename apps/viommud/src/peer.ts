// SO_PEERCRED through @viommu/native's addon, when it loads.
import type { PeerCredentials } from './session.js';

export async function nativePeerCred(onError?: (message: string) => void): Promise<((fd: number) => PeerCredentials | undefined) | undefined> {
  try {
    const native = await import('@viommu/native');
    const addon = native.loadAddon();
    return (fd) => {
      const r = addon.peerCred(fd);
      if (typeof r === 'number') return undefined;
      const [pid, uid, gid] = r;
      return { pid, uid, gid };
    };
  } catch (e) {
    onError?.((e as Error).message);
    return undefined;
  }
}
