// The frame layout and opcodes of the viommud protocol (docs/protocol.md). Every frame is a fixed
// 16-byte little-endian header followed by its payload; the header's length counts both.

/** Protocol major version: a daemon refuses a client whose major differs. */
export const PROTOCOL_MAJOR = 1;
export const PROTOCOL_MINOR = 2;
/** "VIOM" little-endian: the first word of HELLO, so a stray client is told apart at once. */
export const HELLO_MAGIC = 0x4d4f4956;

export const HEADER_SIZE = 16;
/** Default largest frame either side accepts (header included); bigger is a protocol error. */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

export const OP = {
  HELLO: 1,
  OPEN: 2,
  CLOSE: 3,
  IOCTL: 4,
  READ: 5,
  WRITE: 6,
  POLL: 7,
  MMAP: 8,
  MUNMAP: 9,
  MEM_ALLOC: 10,
  MEM_FREE: 11,
  MEMFD_CREATE: 12,
  FTRUNCATE: 13,
  SUBSCRIBE: 14,
  UNSUBSCRIBE: 15,
  /** Daemon to client, unsolicited: records read from a subscribed fd (PUSH flag set). */
  EVENT: 16,
  /** Daemon to client: the frame it could not accept, then it disconnects. */
  PROTOCOL_ERROR: 17,
  /** 1.1, SCM_RIGHTS: an fd the client passed on the fd channel becomes an fd of the session's process. */
  FD_IMPORT: 18,
  /** 1.1, SCM_RIGHTS: user memory backed by a memfd the client passed (shared, not mirrored). */
  MEM_SHARED: 19,
} as const;
export type Opcode = (typeof OP)[keyof typeof OP];

export const OP_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(OP).map(([k, v]) => [v, k]));

export const FLAG = {
  /** The frame answers the request with the same id. */
  REPLY: 1,
  /** The payload ends with a memory-sync section (mirrored user memory that changed). */
  MEM: 2,
  /** Unsolicited daemon-to-client frame (id is the subscription id). */
  PUSH: 4,
} as const;

/** Feature bits exchanged in HELLO; the session uses the intersection. */
export const FEATURE = {
  /** Mirrored user memory (MEM_ALLOC / memory-sync sections); always set by this version. */
  MIRRORED_MEMORY: 1,
  /** SUBSCRIBE / EVENT streaming with lost-event counts. */
  EVENT_STREAM: 2,
  /** memfd_create / ftruncate (IOMMU_IOAS_MAP_FILE on the daemon's side). */
  MEMFD: 4,
  /** File descriptors passed as SCM_RIGHTS on a side channel (1.1; @viommu/native on both ends). */
  SCM_RIGHTS: 8,
  /**
   * The daemon passes the vEVENTQ and FAULT fds the kernel returns to the client on the fd channel
   * (1.2; native backend with SCM_RIGHTS), which then reads, writes and polls them itself.
   */
  EVENT_FDS: 16,
} as const;

export interface FrameHeader {
  length: number;
  id: number;
  op: number;
  flags: number;
  /** 0, or the positive errno of a failed request. */
  errno: number;
}

export function writeHeader(dst: Uint8Array, h: FrameHeader): void {
  const v = new DataView(dst.buffer, dst.byteOffset, HEADER_SIZE);
  v.setUint32(0, h.length, true);
  v.setUint32(4, h.id, true);
  v.setUint16(8, h.op, true);
  v.setUint16(10, h.flags, true);
  v.setInt32(12, h.errno, true);
}

export function readHeader(src: Uint8Array): FrameHeader {
  const v = new DataView(src.buffer, src.byteOffset, HEADER_SIZE);
  return { length: v.getUint32(0, true), id: v.getUint32(4, true), op: v.getUint16(8, true), flags: v.getUint16(10, true), errno: v.getInt32(12, true) };
}
