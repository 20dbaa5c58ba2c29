export { NativeUnavailableError, addonPath, loadAddon, loadAddonFrom, type NativeAddon, type NativeUnavailableReason, type NativeWatcher } from './addon.js';
export { check, systemError } from './errors.js';
export {
  EFD_NONBLOCK, EFD_SEMAPHORE, MFD_ALLOW_SEALING, MFD_HUGETLB, NativeProcess, PROT_READ, PROT_WRITE, openFailure, openNativeProcess,
  type NativeProcessOptions,
} from './native-process.js';
export { AbortError, Poller } from './poller.js';
export {
  SCM_MAX_FD, SOCK_SEQPACKET, SOCK_STREAM, peerCred, recvFds, recvFdsAsync, sendFds, socketpair, unixAccept, unixConnect, unixListen,
  type PeerCred, type Received,
} from './unix-socket.js';
