/**
 * Decoding of the msgpack metadata payloads (FORMAT §6) into the model of ./model.ts.
 * Lenient about field types (a field of an unexpected type reads as null; `raw` keeps it), strict
 * about msgpack itself (malformed msgpack is a CryoFormatError naming the section's offset).
 *
 * @module
 */
import { Decoder } from '@msgpack/msgpack';
import { CryoFormatError } from './errors.js';
import {
  REGISTER_NAMES, REGISTERS_SIZE,
  type Creds, type FdInfo, type ImageMeta, type MmInfo, type ProcessInfo, type RawMap, type Registers,
  type RLimit, type SigAction, type ThreadInfo, type VmaInfo,
} from './model.js';
import type { SectionInfo } from './format.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Decode one msgpack map payload; throws CryoFormatError (code MSGPACK) naming the section. */
export function decodeMetadataMap(payload: Uint8Array, section: SectionInfo): RawMap {
  const limit = Math.max(16, payload.length);
  const decoder = new Decoder({
    useBigInt64: true,
    maxStrLength: limit,
    maxBinLength: limit,
    maxArrayLength: limit,
    maxMapLength: limit,
    maxExtLength: limit,
  });
  let value: unknown;
  try {
    value = decoder.decode(payload);
  } catch (error) {
    throw new CryoFormatError({
      code: 'MSGPACK',
      offset: section.offset,
      subject: 'section',
      reason: `malformed msgpack in ${section.typeName} payload`,
      expected: 'one msgpack map',
      found: (error as Error).message,
      cause: error,
    });
  }
  if (!isMap(value)) {
    throw new CryoFormatError({
      code: 'MSGPACK',
      offset: section.offset,
      subject: 'section',
      reason: `${section.typeName} payload is not a msgpack map`,
      expected: 'map',
      found: describe(value),
    });
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'nil';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Uint8Array) return 'bin';
  return typeof value;
}

// ---- lenient field readers ----------------------------------------------------------------------

/** A plain decoded map (not an array, not bytes). */
export function isMap(value: unknown): value is RawMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
    && !(value instanceof Date);
}

/** A kernel byte string: `str` as is, `bin` decoded as UTF-8 with replacement characters. */
export function text(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return utf8.decode(value);
  return null;
}

/** The bytes of a `str` or `bin` field (a `str` is encoded as UTF-8). */
export function bytesOf(value: unknown): Uint8Array | null {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return new TextEncoder().encode(value);
  return null;
}

/** An integer as a number (lossy above 2^53). */
export function int(value: unknown): number | null {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  return null;
}

/** An integer or a little-endian `bin` of up to 8 bytes, as an unsigned 64-bit bigint. */
export function big(value: unknown): bigint | null {
  if (typeof value === 'bigint') return BigInt.asUintN(64, value);
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt.asUintN(64, BigInt(value));
  if (value instanceof Uint8Array && value.length > 0 && value.length <= 8) {
    let v = 0n;
    for (let i = value.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(value[i]!);
    return v;
  }
  return null;
}

export function bool(value: unknown): boolean | null {
  return typeof value === 'boolean' ? value : null;
}

function array(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function map(value: unknown): RawMap | null {
  return isMap(value) ? value : null;
}

function texts(value: unknown): string[] {
  return array(value).map((v) => text(v) ?? '');
}

function ints(value: unknown): number[] {
  return array(value).map((v) => int(v) ?? 0);
}

function bins(value: unknown): Uint8Array[] {
  return array(value).filter((v): v is Uint8Array => v instanceof Uint8Array);
}

// ---- IMAGE_META ---------------------------------------------------------------------------------

export function imageMetaFromMap(raw: RawMap): ImageMeta {
  const host = map(raw.host);
  const options = map(raw.options);
  return {
    format: text(raw.format),
    tool: text(raw.tool),
    createdAt: int(raw.createdAt),
    host: host && {
      hostname: text(host.hostname),
      kernel: text(host.kernel),
      machine: text(host.machine),
      pageSize: int(host.pageSize),
    },
    rootPid: int(raw.rootPid),
    pids: ints(raw.pids),
    options: options && { tree: bool(options.tree), kill: bool(options.kill) },
    raw,
  };
}

// ---- PROCESS ------------------------------------------------------------------------------------

/**
 * Decode a PROCESS map. `pid` is the section's owner (used when the map has no pid). Page-map fields
 * (`pageMap`, `storedPageCount`, VMA page counts) are filled in by the reader.
 */
export function processFromMap(raw: RawMap, pid: number): ProcessInfo {
  return {
    pid: int(raw.pid) ?? pid,
    ppid: int(raw.ppid),
    pgid: int(raw.pgid),
    sid: int(raw.sid),
    comm: text(raw.comm),
    state: text(raw.state),
    cmdline: texts(raw.cmdline),
    environ: texts(raw.environ),
    exe: text(raw.exe),
    cwd: text(raw.cwd),
    root: text(raw.root),
    umask: int(raw.umask),
    personality: int(raw.personality),
    creds: credsFromValue(raw.creds),
    rlimits: array(raw.rlimits).map(rlimitFromValue),
    mm: mmFromValue(raw.mm),
    auxv: raw.auxv instanceof Uint8Array ? raw.auxv : null,
    sigactions: array(raw.sigactions).map(sigactionFromValue),
    pendingShared: bins(raw.pendingShared),
    threads: array(raw.threads).filter(isMap).map(threadFromMap),
    vmas: array(raw.vmas).filter(isMap).map(vmaFromMap),
    fds: array(raw.fds).filter(isMap).map(fdFromMap),
    pageMap: [],
    storedPageCount: 0,
    raw,
  };
}

function credsFromValue(value: unknown): Creds | null {
  const m = map(value);
  if (!m) return null;
  return {
    uid: ints(m.uid),
    gid: ints(m.gid),
    groups: ints(m.groups),
    capInh: big(m.capInh),
    capPrm: big(m.capPrm),
    capEff: big(m.capEff),
    capBnd: big(m.capBnd),
    capAmb: big(m.capAmb),
    noNewPrivs: bool(m.noNewPrivs),
    seccomp: int(m.seccomp),
  };
}

function rlimitFromValue(value: unknown): RLimit {
  const pair = array(value);
  return { soft: big(pair[0]), hard: big(pair[1]) };
}

const MM_KEYS = [
  'startCode', 'endCode', 'startData', 'endData', 'startBrk', 'brk', 'startStack', 'argStart', 'argEnd',
  'envStart', 'envEnd',
] as const;

function mmFromValue(value: unknown): MmInfo | null {
  const m = map(value);
  if (!m) return null;
  const mm = {} as MmInfo;
  for (const key of MM_KEYS) mm[key] = big(m[key]);
  return mm;
}

function sigactionFromValue(value: unknown): SigAction | null {
  const m = map(value);
  if (!m) return null;
  return { handler: big(m.handler) ?? 0n, flags: int(m.flags) ?? 0, restorer: big(m.restorer) ?? 0n, mask: big(m.mask) ?? 0n };
}

// ---- threads ------------------------------------------------------------------------------------

/** Decode the 216-byte `regs` bin (27 little-endian u64, kernel order); null if not 216 bytes. */
export function decodeRegisters(bytes: unknown): Registers | null {
  if (!(bytes instanceof Uint8Array) || bytes.length !== REGISTERS_SIZE) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const regs = {} as Registers;
  REGISTER_NAMES.forEach((name, i) => {
    regs[name] = view.getBigUint64(i * 8, true);
  });
  return regs;
}

/** Encode registers as the 216-byte `regs` bin. */
export function encodeRegisters(regs: Registers): Uint8Array {
  const bytes = new Uint8Array(REGISTERS_SIZE);
  const view = new DataView(bytes.buffer);
  REGISTER_NAMES.forEach((name, i) => view.setBigUint64(i * 8, BigInt.asUintN(64, regs[name]), true));
  return bytes;
}

export function threadFromMap(raw: RawMap): ThreadInfo {
  const robust = map(raw.robustList);
  const rseq = map(raw.rseq);
  const alt = map(raw.sigaltstack);
  return {
    tid: int(raw.tid) ?? 0,
    comm: text(raw.comm),
    state: text(raw.state),
    registers: decodeRegisters(raw.regs),
    restart: text(raw.restart),
    xstate: raw.xstate instanceof Uint8Array ? raw.xstate : null,
    xfeatures: big(raw.xfeatures),
    fsBase: big(raw.fsBase),
    gsBase: big(raw.gsBase),
    sigmask: big(raw.sigmask),
    pending: bins(raw.pending),
    clearChildTid: big(raw.clearChildTid),
    robustList: robust && { head: big(robust.head) ?? 0n, len: int(robust.len) ?? 0 },
    rseq: rseq && { ptr: big(rseq.ptr) ?? 0n, size: int(rseq.size) ?? 0, signature: int(rseq.signature) ?? 0 },
    sigaltstack: alt && { sp: big(alt.sp) ?? 0n, size: int(alt.size) ?? 0, flags: int(alt.flags) ?? 0 },
    raw,
  };
}

// ---- VMAs and fds -------------------------------------------------------------------------------

export function vmaFromMap(raw: RawMap): VmaInfo {
  const dev = array(raw.dev);
  return {
    start: big(raw.start) ?? 0n,
    end: big(raw.end) ?? 0n,
    prot: int(raw.prot) ?? 0,
    shared: bool(raw.shared) ?? false,
    offset: big(raw.offset) ?? 0n,
    dev: dev.length === 2 ? [int(dev[0]) ?? 0, int(dev[1]) ?? 0] : null,
    inode: int(raw.inode),
    name: text(raw.name) ?? '',
    path: text(raw.path),
    kind: text(raw.kind),
    vmFlags: texts(raw.vmFlags),
    pagesStored: 0,
    zeroPages: 0,
    raw,
  };
}

export function fdFromMap(raw: RawMap): FdInfo {
  const pipe = map(raw.pipe);
  const socket = map(raw.socket);
  const fdinfo = map(raw.fdinfo);
  return {
    fd: int(raw.fd) ?? -1,
    type: text(raw.type),
    path: text(raw.path),
    flags: int(raw.flags),
    cloexec: bool(raw.cloexec),
    pos: int(raw.pos),
    mntId: int(raw.mntId),
    mode: int(raw.mode),
    size: int(raw.size),
    dev: int(raw.dev),
    rdev: int(raw.rdev),
    inode: int(raw.inode),
    nlink: int(raw.nlink),
    mtime: raw.mtime === undefined || raw.mtime === null ? null : big(raw.mtime),
    deleted: bool(raw.deleted),
    contentBlob: int(raw.contentBlob),
    pipe: pipe && { inode: int(pipe.inode), dataBlob: int(pipe.dataBlob), dataLength: int(pipe.dataLength) },
    socket: socket && {
      family: text(socket.family),
      type: text(socket.type),
      protocol: int(socket.protocol),
      state: text(socket.state),
      local: text(socket.local),
      peer: text(socket.peer),
      inode: int(socket.inode),
    },
    fdinfo: fdinfo ? Object.fromEntries(Object.entries(fdinfo).map(([k, v]) => [k, text(v) ?? String(v)])) : {},
    raw,
  };
}
