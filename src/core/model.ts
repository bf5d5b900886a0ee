/**
 * The typed model of a checkpoint image: what a reader of `.cryo` files (and an importer of other
 * formats, such as CRIU image directories) produces. Plain data, no I/O: every field is decoded from
 * the metadata maps of docs/FORMAT.md §6, and keeps the names used there.
 *
 * Conventions:
 * - Addresses, register values and other values that may use all 64 bits are `bigint`.
 *   Counts, ids, sizes, flags and modes are `number` (a value that does not fit in 53 bits is kept
 *   exactly in `raw`, and converted lossily in the typed field).
 * - `null` means unknown / not applicable (msgpack `nil` or an absent key, FORMAT §6).
 * - Byte strings from the kernel (paths, argv, environment, comm) are decoded as UTF-8 with
 *   replacement characters when they were stored as msgpack `bin`; the exact bytes stay in `raw`.
 * - `raw` is the whole decoded msgpack map, unknown keys included, so that a rewriter can write it back.
 *
 * @module
 */

/** A decoded msgpack map: string keys, values as decoded (`Uint8Array` for bin, `bigint` for 64-bit ints). */
export type RawMap = Record<string, unknown>;

/** IMAGE_META (FORMAT §6.1). */
export interface ImageMeta {
  /** `"cryo"` for images written by this project. */
  format: string | null;
  /** Writer name and version, e.g. `"cryo-helper 0.1.0"`. */
  tool: string | null;
  /** Unix time of the dump in milliseconds. */
  createdAt: number | null;
  host: HostInfo | null;
  /** PID of the root of the dumped tree. */
  rootPid: number | null;
  /** Every process in the image, parents before children. */
  pids: number[];
  options: DumpOptions | null;
  raw: RawMap;
}

export interface HostInfo {
  hostname: string | null;
  /** uname release. */
  kernel: string | null;
  /** `"x86_64"`. */
  machine: string | null;
  pageSize: number | null;
}

export interface DumpOptions {
  tree: boolean | null;
  kill: boolean | null;
}

/** PROCESS (FORMAT §6.2), plus what the reader computes from the page map. */
export interface ProcessInfo {
  pid: number;
  ppid: number | null;
  pgid: number | null;
  sid: number | null;
  comm: string | null;
  /** One letter from `/proc/PID/stat` before the freeze (`R`, `S`, `D`, `T`, ...). */
  state: string | null;
  cmdline: string[];
  environ: string[];
  exe: string | null;
  cwd: string | null;
  root: string | null;
  umask: number | null;
  personality: number | null;
  creds: Creds | null;
  /** 16 entries, index = `RLIMIT_*` number (empty when unknown). */
  rlimits: RLimit[];
  mm: MmInfo | null;
  /** `/proc/PID/auxv` as read (pairs of u64). */
  auxv: Uint8Array | null;
  /** 64 entries, index `n-1` for signal `n`; `null` for SIGKILL, SIGSTOP and unknown entries. */
  sigactions: (SigAction | null)[];
  /** Process-wide pending signals, each a 128-byte `siginfo_t`. */
  pendingShared: Uint8Array[];
  /** The thread-group leader first. */
  threads: ThreadInfo[];
  /** Ascending addresses. */
  vmas: VmaInfo[];
  /** Ascending fd numbers. */
  fds: FdInfo[];
  /** The page map (FORMAT §5.1), sorted by `vaddr`; empty when the process has no stored memory. */
  pageMap: PageMapEntry[];
  /** N, the number of pages in the process's page store (FORMAT §5.2). */
  storedPageCount: number;
  raw: RawMap;
}

/** Credentials (FORMAT §6.2 `creds`). */
export interface Creds {
  /** `[real, effective, saved, fs]`. */
  uid: number[];
  /** `[real, effective, saved, fs]`. */
  gid: number[];
  groups: number[];
  capInh: bigint | null;
  capPrm: bigint | null;
  capEff: bigint | null;
  capBnd: bigint | null;
  capAmb: bigint | null;
  noNewPrivs: boolean | null;
  /** Seccomp mode. */
  seccomp: number | null;
}

/** One resource limit; `null` stands for RLIM_INFINITY. */
export interface RLimit {
  soft: bigint | null;
  hard: bigint | null;
}

/** FORMAT §6.2 `mm`. */
export interface MmInfo {
  startCode: bigint | null;
  endCode: bigint | null;
  startData: bigint | null;
  endData: bigint | null;
  startBrk: bigint | null;
  brk: bigint | null;
  startStack: bigint | null;
  argStart: bigint | null;
  argEnd: bigint | null;
  envStart: bigint | null;
  envEnd: bigint | null;
}

/** One signal disposition (FORMAT §6.2 `sigactions`). */
export interface SigAction {
  /** 0n = SIG_DFL, 1n = SIG_IGN, otherwise the handler address. */
  handler: bigint;
  flags: number;
  restorer: bigint;
  mask: bigint;
}

/** The 27 registers of x86_64 `struct user_regs_struct`, in kernel order (FORMAT §6.3 `regs`). */
export interface Registers {
  r15: bigint; r14: bigint; r13: bigint; r12: bigint;
  rbp: bigint; rbx: bigint; r11: bigint; r10: bigint;
  r9: bigint; r8: bigint; rax: bigint; rcx: bigint;
  rdx: bigint; rsi: bigint; rdi: bigint; orig_rax: bigint;
  rip: bigint; cs: bigint; eflags: bigint; rsp: bigint;
  ss: bigint; fs_base: bigint; gs_base: bigint; ds: bigint;
  es: bigint; fs: bigint; gs: bigint;
}

/** Register names in the order of the 216-byte `regs` bin. */
export const REGISTER_NAMES: readonly (keyof Registers)[] = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi',
  'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
];

/** Size of the `regs` bin: 27 little-endian u64. */
export const REGISTERS_SIZE = 216;

/** How the dumper fixed up a thread stopped in a syscall (FORMAT §6.3 `restart`). */
export type RestartKind = 'none' | 'restart' | 'eintr';

/** Thread (FORMAT §6.3). */
export interface ThreadInfo {
  tid: number;
  comm: string | null;
  state: string | null;
  /** Decoded `regs`; `null` when absent or not 216 bytes (the bytes stay in `raw.regs`). */
  registers: Registers | null;
  /** `"none"`, `"restart"`, `"eintr"`, or another string from a newer writer. */
  restart: RestartKind | string | null;
  /** The `NT_X86_XSTATE` regset as the kernel gave it. */
  xstate: Uint8Array | null;
  /** XCR0 of the dumping host. */
  xfeatures: bigint | null;
  fsBase: bigint | null;
  gsBase: bigint | null;
  /** Blocked signals, bit `n-1` for signal `n`. */
  sigmask: bigint | null;
  /** Per-thread pending signals, each a 128-byte `siginfo_t`. */
  pending: Uint8Array[];
  clearChildTid: bigint | null;
  robustList: { head: bigint; len: number } | null;
  rseq: { ptr: bigint; size: number; signature: number } | null;
  sigaltstack: { sp: bigint; size: number; flags: number } | null;
  raw: RawMap;
}

/** FORMAT §6.4 `kind`. Other strings may come from newer writers. */
export type VmaKind =
  | 'anon' | 'heap' | 'stack' | 'file' | 'shmem' | 'memfd' | 'deleted' | 'vdso' | 'vvar' | 'vsyscall';

/** VMA (FORMAT §6.4), plus page counts computed from the page map. */
export interface VmaInfo {
  /** `[start, end)`. */
  start: bigint;
  end: bigint;
  /** Bit 0 read, bit 1 write, bit 2 exec. */
  prot: number;
  shared: boolean;
  /** File offset. */
  offset: bigint;
  /** `[major, minor]`, or null. */
  dev: [number, number] | null;
  inode: number | null;
  /** The maps path column as printed; empty for plain anonymous memory. */
  name: string;
  /** Backing file's path for file mappings (without ` (deleted)`), else null. */
  path: string | null;
  kind: VmaKind | string | null;
  vmFlags: string[];
  /** Pages of this VMA held in the page store (DATA runs of the page map). */
  pagesStored: number;
  /** Pages of this VMA recorded as all zeros (ZERO runs of the page map). */
  zeroPages: number;
  raw: RawMap;
}

/** FORMAT §6.5 `type`. Other strings may come from newer writers. */
export type FdType =
  | 'file' | 'dir' | 'pipe' | 'fifo' | 'socket' | 'tty' | 'chr' | 'blk' | 'eventfd' | 'epoll'
  | 'timerfd' | 'signalfd' | 'inotify' | 'fanotify' | 'pidfd' | 'memfd' | 'anon' | 'unknown';

/** File descriptor (FORMAT §6.5). */
export interface FdInfo {
  fd: number;
  type: FdType | string | null;
  path: string | null;
  flags: number | null;
  cloexec: boolean | null;
  pos: number | null;
  mntId: number | null;
  mode: number | null;
  size: number | null;
  dev: number | null;
  rdev: number | null;
  inode: number | null;
  nlink: number | null;
  /** Modification time in nanoseconds. */
  mtime: bigint | null;
  deleted: boolean | null;
  /** For deleted regular files: the blob holding the whole content. */
  contentBlob: number | null;
  pipe: PipeInfo | null;
  socket: SocketInfo | null;
  /** Remaining `fdinfo` lines, `name -> value` as text. */
  fdinfo: Record<string, string>;
  raw: RawMap;
}

export interface PipeInfo {
  inode: number | null;
  /** Blob of the bytes waiting in the pipe; null if none. */
  dataBlob: number | null;
  dataLength: number | null;
}

export interface SocketInfo {
  family: string | null;
  type: string | null;
  protocol: number | null;
  state: string | null;
  local: string | null;
  peer: string | null;
  inode: number | null;
}

/** Page-map entry kinds (FORMAT §5.1; PARENT and DELTA: incremental images, §5.4). */
export const PageKind = { DATA: 0, ZERO: 1, PARENT: 2, DELTA: 3 } as const;
export type PageKind = (typeof PageKind)[keyof typeof PageKind];

/** One run of the page map (FORMAT §5.1). */
export interface PageMapEntry {
  /** Address of the first page, a multiple of 4096. */
  vaddr: bigint;
  pageCount: number;
  kind: PageKind;
  /** DATA: store index of the first page; ZERO: 0. */
  storeIndex: number;
}

/** Whether one page of a process's memory is held by the image. */
export type PageState = 'data' | 'zero' | 'not-stored';

/** The result of reading memory with page states. */
export interface MemoryRead {
  /** The bytes; pages that are not stored read as zeros. */
  bytes: Uint8Array;
  /** Page-aligned address ranges `[start, end)` in the requested span not covered by the page map. */
  notStored: { start: bigint; end: bigint }[];
}

/**
 * What every source of checkpoint images offers: the decoded metadata, and on-demand access to memory
 * and blobs. The `.cryo` reader implements it; importers of other formats may too.
 */
export interface CheckpointImage {
  meta: ImageMeta;
  /** In the order of `meta.pids` when given, else in file order. */
  processes: ProcessInfo[];
  /** The process with this PID, or undefined. */
  process(pid: number): ProcessInfo | undefined;
  /** Read `length` bytes of a process's memory at `address`; pages not stored read as zeros. */
  readMemory(pid: number, address: bigint | number, length: number): Promise<Uint8Array>;
  /** Like readMemory, and also reports which pages were not stored. */
  readMemoryDetailed(pid: number, address: bigint | number, length: number): Promise<MemoryRead>;
  /** The bytes of a blob (FORMAT §7). A blob with no sections is empty. */
  readBlob(id: number): Promise<Uint8Array>;
}
