/**
 * CRIU image file framing: magics, u32-length-prefixed protobuf entries, and the payloads some image
 * types carry after an entry. `decodeImage()` gives `{ magic: NAME, entries: [...] }` like `crit decode`.
 *
 * The dispatch is a table from type magic to message and payload handler (crit's `handlers`).
 * An image with an unknown type magic is still framed, and its entries kept with all fields unknown.
 *
 * @module
 */
import { CriuFormatError, WireError, type DecodeWarning } from './errors.js';
import { decodeMessageAt, toNumber, WireReader, type DecodedMessage, type MessageDef } from './protobuf.js';
import { messageDef, UNKNOWN_MESSAGE } from './schema.js';

export const IMG_COMMON_MAGIC = 0x54564319;
export const IMG_SERVICE_MAGIC = 0x55105940;
export const INVENTORY_MAGIC = 0x58313116;

/** What follows an entry: how many bytes, and how they are shown. */
interface ExtraHandler {
  /** Reads the payload that starts at `at`; returns the value and the number of bytes consumed. */
  read(buf: Uint8Array, at: number, entry: DecodedMessage, ctx: FrameContext): { value: unknown; size: number };
}

export interface ImageType {
  /** crit's name for the magic. */
  readonly name: string;
  readonly magic: number;
  /** Message table name of each entry. */
  readonly message: string;
  /** `pagemap`: head then entries; `ghost`: ghost-file layout. */
  readonly layout?: 'pagemap' | 'ghost';
  readonly extra?: ExtraHandler;
  /** Written after IMG_SERVICE_MAGIC instead of IMG_COMMON_MAGIC. */
  readonly service?: boolean;
}

interface FrameContext {
  file: string;
  warnings: DecodeWarning[];
  /** One reader over the whole file, reused for every entry. */
  reader?: WireReader;
}

function roundUp(x: number, y: number): number {
  return Math.ceil(x / y) * y;
}

function need(buf: Uint8Array, at: number, size: number, ctx: FrameContext, what: string): void {
  if (size > buf.length - at) {
    throw new CriuFormatError(ctx.file, at, `${what} of ${size} bytes runs past the end of the file (${buf.length - at} bytes left)`);
  }
}

const bytesPayload = (sizeOf: (e: DecodedMessage) => number, pad = 1): ExtraHandler => ({
  read(buf, at, entry, ctx) {
    const size = sizeOf(entry);
    need(buf, at, size, ctx, 'payload');
    const consumed = Math.min(roundUp(size, pad), buf.length - at);
    return { value: buf.subarray(at, at + size), size: consumed };
  },
});

const tcpStreamPayload: ExtraHandler = {
  read(buf, at, entry, ctx) {
    const inq = toNumber(entry['inq_len']);
    const outq = toNumber(entry['outq_len']);
    need(buf, at, inq + outq, ctx, 'TCP queue data');
    return { value: { inq: buf.subarray(at, at + inq), outq: buf.subarray(at + inq, at + inq + outq) }, size: inq + outq };
  },
};

const semPayload: ExtraHandler = {
  read(buf, at, entry, ctx) {
    const n = toNumber(entry['nsems']);
    need(buf, at, n * 2, ctx, 'semaphore values');
    const view = new DataView(buf.buffer, buf.byteOffset + at, n * 2);
    const values: number[] = [];
    for (let i = 0; i < n; i++) values.push(view.getUint16(i * 2, true));
    return { value: values, size: Math.min(roundUp(n * 2, 8), buf.length - at) };
  },
};

const msgQueuePayload: ExtraHandler = {
  read(buf, at, entry, ctx) {
    const qnum = toNumber(entry['qnum']);
    const out: unknown[] = [];
    let p = at;
    for (let i = 0; i < qnum && p < buf.length; i++) {
      const { message, next } = readEntry(buf, p, messageDef('ipc_msg'), ctx, `message ${i}`);
      const msize = toNumber(message['msize']);
      need(buf, next, msize, ctx, 'IPC message data');
      out.push(message, buf.subarray(next, next + msize));
      p = next + Math.min(roundUp(msize, 8), buf.length - next);
    }
    return { value: out, size: p - at };
  },
};

const T = (name: string, magic: number, message: string, more: Partial<ImageType> = {}): ImageType =>
  ({ name, magic, message, ...more });

/** Every CRIU image type this reader knows, by crit name. */
export const IMAGE_TYPES: readonly ImageType[] = [
  T('INVENTORY', INVENTORY_MAGIC, 'inventory_entry'),
  T('PSTREE', 0x50273030, 'pstree_entry'),
  T('FDINFO', 0x56213732, 'fdinfo_entry'),
  T('PAGEMAP', 0x56084025, 'pagemap_entry', { layout: 'pagemap' }),
  T('CORE', 0x55053847, 'core_entry'),
  T('IDS', 0x54432030, 'task_kobj_ids_entry'),
  T('VMAS', 0x54123737, 'vma_entry'),
  T('PIPES', 0x56513555, 'pipe_entry'),
  T('PIPES_DATA', 0x56453709, 'pipe_data_entry', { extra: bytesPayload((e) => toNumber(e['bytes'])) }),
  T('FIFO', 0x58364939, 'fifo_entry'),
  T('FIFO_DATA', 0x59333054, 'pipe_data_entry', { extra: bytesPayload((e) => toNumber(e['bytes'])) }),
  T('SIGACT', 0x55344201, 'sa_entry'),
  T('UNIXSK', 0x54373943, 'unix_sk_entry'),
  T('INETSK', 0x56443851, 'inet_sk_entry'),
  T('PACKETSK', 0x60454618, 'packet_sock_entry'),
  T('ITIMERS', 0x57464056, 'itimer_entry'),
  T('POSIX_TIMERS', 0x52603957, 'posix_timer_entry'),
  T('SK_QUEUES', 0x56264026, 'sk_packet_entry', { extra: bytesPayload((e) => toNumber(e['length'])) }),
  T('UTSNS', 0x54473203, 'utsns_entry'),
  T('CREDS', 0x54023547, 'creds_entry'),
  T('IPC_VAR', 0x53115007, 'ipc_var_entry'),
  T('IPCNS_SHM', 0x46283044, 'ipc_shm_entry', { extra: bytesPayload((e) => toNumber(e['size']), 4) }),
  T('IPCNS_MSG', 0x55453737, 'ipc_msg_entry', { extra: msgQueuePayload }),
  T('IPCNS_SEM', 0x59573019, 'ipc_sem_entry', { extra: semPayload }),
  T('REG_FILES', 0x50363636, 'reg_file_entry'),
  T('EXT_FILES', 0x59255641, 'ext_file_entry'),
  T('FS', 0x51403912, 'fs_entry'),
  T('MM', 0x57492820, 'mm_entry'),
  T('REMAP_FPATH', 0x59133954, 'remap_file_path_entry'),
  T('GHOST_FILE', 0x52583605, 'ghost_file_entry', { layout: 'ghost' }),
  T('TCP_STREAM', 0x51465506, 'tcp_stream_entry', { extra: tcpStreamPayload }),
  T('EVENTFD_FILE', 0x44523722, 'eventfd_file_entry'),
  T('EVENTPOLL_FILE', 0x45023858, 'eventpoll_file_entry'),
  T('EVENTPOLL_TFD', 0x44433746, 'eventpoll_tfd_entry'),
  T('SIGNALFD', 0x57323820, 'signalfd_entry'),
  T('INOTIFY_FILE', 0x48424431, 'inotify_file_entry'),
  T('INOTIFY_WD', 0x54562009, 'inotify_wd_entry'),
  T('MNTS', 0x55563928, 'mnt_entry'),
  T('NETDEV', 0x57373951, 'net_device_entry'),
  T('NETNS', 0x55933752, 'netns_entry'),
  T('TTY_FILES', 0x59433025, 'tty_file_entry'),
  T('TTY_INFO', 0x59453036, 'tty_info_entry'),
  T('TTY_DATA', 0x59413026, 'tty_data_entry'),
  T('FILE_LOCKS', 0x54323616, 'file_lock_entry'),
  T('RLIMIT', 0x57113925, 'rlimit_entry'),
  T('FANOTIFY_FILE', 0x55096122, 'fanotify_file_entry'),
  T('FANOTIFY_MARK', 0x56506035, 'fanotify_mark_entry'),
  T('SIGNAL', 0x59255647, 'siginfo_entry'),
  T('NETLINK_SK', 0x58005614, 'netlink_sk_entry'),
  T('NS_FILES', 0x61394011, 'ns_file_entry'),
  T('TUNFILE', 0x57143751, 'tunfile_entry'),
  T('CGROUP', 0x59383330, 'cgroup_entry'),
  T('TIMERFD', 0x50493712, 'timerfd_entry'),
  T('CPUINFO', 0x61404013, 'cpuinfo_entry'),
  T('USERNS', 0x55474906, 'userns_entry'),
  T('SECCOMP', 0x64413049, 'seccomp_entry'),
  T('BINFMT_MISC', 0x67343323, 'binfmt_misc_entry'),
  T('AUTOFS', 0x49353943, 'autofs_entry'),
  T('FILES', 0x56303138, 'file_entry'),
  T('MEMFD_INODE', 0x48453499, 'memfd_inode_entry'),
  T('TIMENS', 0x43114433, 'timens_entry'),
  T('PIDNS', 0x61157326, 'pidns_entry'),
  T('BPFMAP_FILE', 0x57506142, 'bpfmap_file_entry'),
  T('BPFMAP_DATA', 0x64324033, 'bpfmap_data_entry', {
    extra: bytesPayload((e) => toNumber(e['keys_bytes']) + toNumber(e['values_bytes'])),
  }),
  T('APPARMOR', 0x59423047, 'apparmor_entry'),
  T('PIDFD', 0x54435556, 'pidfd_entry'),
  T('STATS', 0x57093306, 'stats_entry', { service: true }),
  T('IRMAP_CACHE', 0x57004059, 'irmap_cache_entry', { service: true }),
];

const BY_MAGIC = new Map<number, ImageType>(IMAGE_TYPES.map((t) => [t.magic, t]));
const BY_NAME = new Map<string, ImageType>(IMAGE_TYPES.map((t) => [t.name, t]));

export function imageTypeByMagic(magic: number): ImageType | undefined {
  return BY_MAGIC.get(magic);
}
export function imageTypeByName(name: string): ImageType | undefined {
  return BY_NAME.get(name);
}

/** Files of an image directory that hold raw data, not entries (pages, tarballs, ip-tool dumps). */
export function isRawImageName(name: string): boolean {
  return /^pages-\d+\.img$/.test(name) || /^pages-shmem-\d+\.img$/.test(name) ||
    /\.tar(\.gz)?$/.test(name) ||
    /^(ifaddr|route6?|rule|iptables|ip6tables|nftables|netns-ct|netns-exp)-\d+\.img$/.test(name);
}

/** A decoded image file. */
export interface CriuImage {
  /** The file name used in messages. */
  file: string;
  /** crit's name of the type magic (`"UNKNOWN"` for a magic this reader does not know). */
  magic: string;
  /** The type magic. */
  magicValue: number;
  /** The decoded entries (`extra` holds the payload after an entry, for the types that have one). */
  entries: DecodedMessage[];
  /** File offset of each entry's u32 size. */
  entryOffsets: number[];
  /** Non-fatal oddities (missing required fields, wire-type mismatches). */
  warnings: DecodeWarning[];
}

/** Offset of the first entry and the type magic. */
export function readImageHeader(buf: Uint8Array, file: string): { magic: number; start: number } {
  if (buf.length < 4) throw new CriuFormatError(file, 0, `file of ${buf.length} bytes is too short for an image magic`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const first = view.getUint32(0, true);
  if (first === INVENTORY_MAGIC) return { magic: first, start: 4 };
  if (first === IMG_COMMON_MAGIC || first === IMG_SERVICE_MAGIC) {
    if (buf.length < 8) throw new CriuFormatError(file, 4, 'file ends before the type magic');
    return { magic: view.getUint32(4, true), start: 8 };
  }
  throw new CriuFormatError(file, 0,
    `bad magic 0x${first.toString(16).padStart(8, '0')} (expected 0x54564319 or 0x55105940, or 0x58313116 for inventory)` +
    (isRawImageName(file.replace(/^.*\//, '')) ? '; this is a raw data image' : ''));
}

function readEntry(
  buf: Uint8Array, at: number, def: MessageDef, ctx: FrameContext, label: string,
): { message: DecodedMessage; next: number } {
  if (buf.length - at < 4) {
    throw new CriuFormatError(ctx.file, at, `${label}: truncated entry size (${buf.length - at} of 4 bytes)`);
  }
  const r = ctx.reader && ctx.reader.buf === buf ? ctx.reader : (ctx.reader = new WireReader(buf, 0, buf.length));
  const size = r.view.getUint32(at, true);
  const start = at + 4;
  if (size > buf.length - start) {
    throw new CriuFormatError(ctx.file, at,
      `${label}: entry of ${size} bytes runs past the end of the file (${buf.length - start} bytes left)`);
  }
  try {
    r.pos = start;
    const message = decodeMessageAt(r, start + size, def, { warnings: ctx.warnings });
    return { message, next: start + size };
  } catch (e) {
    if (e instanceof WireError) throw new CriuFormatError(ctx.file, e.offset, `${label} (${def.name}): ${e.reason}`);
    throw e;
  }
}

export interface DecodeImageOptions {
  /** Stop after this many entries (the pagemap head counts as one). */
  maxEntries?: number;
}

/**
 * Decode an image file held in `buf`. `file` names it in errors and chooses nothing else: the type is
 * taken from the magic, as crit does.
 * @throws CriuFormatError for a bad magic, a truncated or corrupted entry (file and offset named).
 */
export function decodeImage(buf: Uint8Array, file: string, options: DecodeImageOptions = {}): CriuImage {
  const { magic, start } = readImageHeader(buf, file);
  const type = BY_MAGIC.get(magic);
  const ctx: FrameContext = { file, warnings: [] };
  const image: CriuImage = {
    file, magic: type?.name ?? 'UNKNOWN', magicValue: magic, entries: [], entryOffsets: [], warnings: ctx.warnings,
  };
  if (!type) {
    ctx.warnings.push({ offset: 4, message: `unknown type magic 0x${magic.toString(16)}: entries kept with unknown fields` });
  }
  const max = options.maxEntries ?? Infinity;
  let def: MessageDef = type ? messageDef(type.layout === 'pagemap' ? 'pagemap_head' : type.message) : UNKNOWN_MESSAGE;
  let at = start;
  let chunks = false;
  while (at < buf.length && image.entries.length < max) {
    const i = image.entries.length;
    const { message, next } = readEntry(buf, at, def, ctx, `entry ${i}`);
    image.entryOffsets.push(at);
    image.entries.push(message);
    at = next;
    if (type?.layout === 'pagemap' && i === 0) def = messageDef('pagemap_entry');
    if (type?.layout === 'ghost') {
      if (i === 0) {
        chunks = message['chunks'] === true;
        if (!chunks) {
          message['extra'] = buf.subarray(at);
          at = buf.length;
        } else {
          def = messageDef('ghost_chunk_entry');
        }
      } else {
        const len = toNumber(message['len']);
        need(buf, at, len, ctx, `ghost chunk ${i}`);
        message['extra'] = buf.subarray(at, at + len);
        at += len;
      }
    } else if (type?.extra) {
      const { value, size } = type.extra.read(buf, at, message, ctx);
      message['extra'] = value;
      at += size;
    }
  }
  return image;
}

/** Count entries without decoding them (crit `info`; the pagemap head is not counted). */
export function countEntries(buf: Uint8Array, file: string): { magic: string; count: number } {
  const image = decodeImage(buf, file);
  const n = image.entries.length;
  return { magic: image.magic, count: image.magic === 'PAGEMAP' ? n - 1 : n };
}
