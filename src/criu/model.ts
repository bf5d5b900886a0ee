/**
 * A CRIU checkpoint mapped into the cryo-img model (src/core/model.ts): processes, threads, VMAs, file
 * descriptors, page maps, blobs, and memory reads through the CRIU pagemap + pages images.
 *
 * What CRIU does not record is `null` (FORMAT §6 "unknown"): the one-letter state of a live task, the
 * dev/inode of mappings, VmFlags, the syscall restart fix-up, the dump time. What it records differently
 * is converted: `thread_info.fpregs` is reassembled into a standard-format XSAVE area; `sa_entry` list
 * (62 entries, SIGKILL/SIGSTOP left out) into the 64-slot sigaction table; `cap_*` word pairs into
 * 64-bit masks; argv and environment are read from the process's memory (mm_arg_*, mm_env_*).
 *
 * Page map: CRIU PE_PRESENT runs become DATA runs whose store indices are page numbers in the process's
 * `pages-<id>.img`; PE_PARENT runs become DATA runs numbered after those (pages held by the parent
 * dump); lazy-only runs are left out (not in the image). Shared memory (memfd, shared anonymous, SysV)
 * is in per-object pagemaps in CRIU: it is not in a process's page map, but `readMemory` reads it, and
 * `pagesStored` of such a VMA counts the object's pages it maps.
 *
 * Blobs: unread pipe/FIFO data (one per pipe, ids from 1) and ghost-file contents (after the pipes).
 *
 * @module
 */
import {
  PageKind, REGISTER_NAMES,
  type CheckpointImage, type Creds, type FdInfo, type ImageMeta, type MemoryRead, type MmInfo, type PageMapEntry,
  type PageState, type ProcessInfo, type Registers, type RLimit, type SigAction, type SocketInfo,
  type ThreadInfo, type VmaInfo,
} from '../core/model.js';
import { CriuCheckpoint, PAGE_SIZE, PE_PARENT, PE_PRESENT, VMA, findRun, type Pagemap } from './checkpoint.js';
import { CriuSourceError } from './errors.js';
import { fdTypeName } from './explore.js';
import { toBigInt, toNumber, type DecodedMessage } from './protobuf.js';
import { DICTS } from './pretty.js';
import type { CriuDirectory } from './source.js';

type M = DecodedMessage;

const RLIM_INFINITY = (1n << 64n) - 1n;
const SIGKILL = 9;
const SIGSTOP = 19;
const S_IFMT = 0o170000;

const utf8 = new TextDecoder('utf-8');

function sub(m: M | undefined, key: string): M | undefined {
  return m?.[key] as M | undefined;
}
function num(m: M | undefined, key: string): number | null {
  const v = m?.[key];
  return v === undefined ? null : toNumber(v);
}
function big(m: M | undefined, key: string): bigint | null {
  const v = m?.[key];
  return v === undefined ? null : toBigInt(v);
}
function list<T = M>(m: M | undefined, key: string): T[] {
  return (m?.[key] as T[] | undefined) ?? [];
}
/** Two u32 words (low first) as one 64-bit mask. */
function words64(w: unknown[]): bigint | null {
  if (w.length === 0) return null;
  let v = 0n;
  w.forEach((x, i) => { v |= toBigInt(x) << BigInt(32 * i); });
  return v;
}

/** Options of {@link criuToModel}. */
export interface CriuModelOptions {
  /** Read argv and the environment from each process's memory (default true). */
  readArgs?: boolean;
}

/** One blob: how to get its bytes. */
interface BlobEntry {
  length: number | null;
  load: () => Promise<Uint8Array>;
}

/** A CRIU checkpoint as a {@link CheckpointImage}. */
export class CriuCheckpointImage implements CheckpointImage {
  /** `"criu"`: what kind of source this is. */
  readonly format = 'criu' as const;
  private readonly byPid: Map<number, ProcessInfo>;

  /** @internal use {@link criuToModel} */
  constructor(
    /** The decoded CRIU checkpoint under this model (raw images, explorers). */
    readonly checkpoint: CriuCheckpoint,
    readonly meta: ImageMeta,
    readonly processes: ProcessInfo[],
    private readonly pagemaps: Map<number, Pagemap | null>,
    private readonly blobs: Map<number, BlobEntry>,
  ) {
    this.byPid = new Map(processes.map((p) => [p.pid, p]));
  }

  /** How errors and reports name the source. */
  get label(): string {
    return this.checkpoint.label;
  }

  process(pid: number): ProcessInfo | undefined {
    return this.byPid.get(pid);
  }

  private need(pid: number): void {
    if (!this.byPid.has(pid)) throw new CriuSourceError(`${this.label}: no process ${pid} in the checkpoint`);
  }

  async readMemory(pid: number, address: bigint | number, length: number): Promise<Uint8Array> {
    this.need(pid);
    return (await this.checkpoint.readMemory(pid, address, length)).bytes;
  }

  async readMemoryDetailed(pid: number, address: bigint | number, length: number): Promise<MemoryRead> {
    this.need(pid);
    return this.checkpoint.readMemory(pid, address, length);
  }

  /**
   * Whether the process's own page map holds the page at `address` (`data`), or not (`not-stored`).
   * Shared-memory pages are in per-object pagemaps: use readMemoryDetailed for those.
   */
  pageState(pid: number, address: bigint | number): PageState {
    this.need(pid);
    const pm = this.pagemaps.get(pid);
    const a = Number(address);
    if (!pm || !Number.isSafeInteger(a)) return 'not-stored';
    const run = findRun(pm, a);
    return run && run.flags & (PE_PRESENT | PE_PARENT) ? 'data' : 'not-stored';
  }

  get blobIds(): number[] {
    return [...this.blobs.keys()];
  }

  blobLength(id: number | bigint): number | null {
    return this.blobs.get(Number(id))?.length ?? null;
  }

  async readBlob(id: number | bigint): Promise<Uint8Array> {
    const b = this.blobs.get(Number(id));
    if (!b) return new Uint8Array(0);
    return b.load();
  }

  /** Bytes of the image directory's files (what `inspect` reports as the image size). */
  async sizeBytes(): Promise<number> {
    let n = 0;
    for (const name of await this.checkpoint.list()) n += (await this.checkpoint.dir.size(name)) ?? 0;
    return n;
  }

  async close(): Promise<void> {
    await this.checkpoint.close();
  }
}

/** Open a CRIU image directory (or archive, as a CriuDirectory) as a model image. */
export async function openCriuImage(dir: CriuDirectory, options: CriuModelOptions = {}): Promise<CriuCheckpointImage> {
  const cp = await CriuCheckpoint.open(dir);
  try {
    return await criuToModel(cp, options);
  } catch (e) {
    await cp.close().catch(() => undefined);
    throw e;
  }
}

const MACHINES: Record<number, string> = {
  1: 'x86_64', 2: 'arm', 3: 'aarch64', 4: 'ppc64le', 5: 's390x', 6: 'mips64', 7: 'loongarch64', 8: 'riscv64',
};

/** Map a decoded CRIU checkpoint into the model. Reads every metadata image, and argv/env pages. */
export async function criuToModel(cp: CriuCheckpoint, options: CriuModelOptions = {}): Promise<CriuCheckpointImage> {
  const files = await cp.files();
  const pipeData = await cp.pipeData();
  const blobs = new Map<number, BlobEntry>();
  const pipeBlob = new Map<number, number>();
  for (const [pipeId, data] of pipeData) {
    if (data.length === 0) continue;
    const id = blobs.size + 1;
    blobs.set(id, { length: data.length, load: async () => data });
    pipeBlob.set(pipeId, id);
  }
  // remapped (unlinked) files: orig file id -> { type, ghost blob }
  const remaps = new Map<number, { type: number; blob: number | null }>();
  for (const r of (await cp.maybeImage('remap-fpath.img'))?.entries ?? []) {
    const type = num(r, 'remap_type') ?? 0;
    let blob: number | null = null;
    if (type === 1) {
      const name = `ghost-file-${toNumber(r['remap_id']).toString(16)}.img`;
      if (await cp.has(name)) {
        const id = blobs.size + 1;
        const size = await ghostSize(cp, name);
        blobs.set(id, { length: size, load: () => ghostContent(cp, name) });
        blob = id;
      }
    }
    remaps.set(toNumber(r['orig_id']), { type, blob });
  }
  const memfds = await cp.memfdInodes();
  const ttyInfo = new Map<number, M>();
  for (const t of (await cp.maybeImage('tty-info.img'))?.entries ?? []) ttyInfo.set(toNumber(t['id']), t);
  const locks = (await cp.maybeImage('filelocks.img'))?.entries ?? [];
  const sysvKeys = new Map<number, number>();
  for (const name of (await cp.list()).filter((n) => /^ipcns-shm-\d+\.img$/.test(n))) {
    for (const e of (await cp.image(name)).entries) {
      const desc = sub(e, 'desc');
      if (desc) sysvKeys.set(toNumber(desc['id']), toNumber(desc['key']));
    }
  }
  const ctx: MapContext = { cp, files, pipeBlob, pipeData, remaps, memfds, ttyInfo, locks, sysvKeys };

  const processes: ProcessInfo[] = [];
  const pagemaps = new Map<number, Pagemap | null>();
  let machine: string | null = null;
  for (const entry of cp.pstree) {
    const pid = toNumber(entry['pid']);
    const p = await mapProcess(ctx, entry, options);
    processes.push(p.info);
    pagemaps.set(pid, p.pagemap);
    machine ??= p.machine;
  }
  const inv = cp.inventory;
  let xfeatures: bigint | null = null;
  const cpuinfo = await cp.maybeImage('cpuinfo.img');
  const x86 = list(cpuinfo?.entries[0], 'x86_entry')[0];
  if (x86) xfeatures = big(x86, 'xfeatures_mask');
  if (xfeatures !== null) for (const p of processes) for (const t of p.threads) t.xfeatures = xfeatures;
  const uts = (await cp.list()).find((n) => /^utsns-\d+\.img$/.test(n));
  const hostname = uts ? ((await cp.image(uts)).entries[0]?.['nodename'] as string | undefined) ?? null : null;
  const meta: ImageMeta = {
    format: 'criu',
    tool: `criu (image version ${num(inv, 'img_version') ?? '?'})`,
    createdAt: null,
    host: { hostname, kernel: null, machine, pageSize: PAGE_SIZE },
    rootPid: processes[0]?.pid ?? null,
    pids: processes.map((p) => p.pid),
    options: null,
    raw: { source: 'criu', label: cp.label, inventory: inv, ...(await containerMeta(cp)) },
  };
  return new CriuCheckpointImage(cp, meta, processes, pagemaps, blobs);
}

/** Container engine metadata next to checkpoint/ in Podman / CRI-O archives (config.dump, spec.dump). */
async function containerMeta(cp: CriuCheckpoint): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  if (!cp.dir.readAux) return out;
  for (const [key, name] of [['container', 'config.dump'], ['spec', 'spec.dump'], ['containerStatus', 'status.dump']] as const) {
    const bytes = await cp.dir.readAux(name);
    if (!bytes) continue;
    try { out[key] = JSON.parse(utf8.decode(bytes)) as unknown; } catch { out[key] = utf8.decode(bytes); }
  }
  return out;
}

interface MapContext {
  cp: CriuCheckpoint;
  files: Map<number, M>;
  pipeBlob: Map<number, number>;
  pipeData: Map<number, Uint8Array>;
  remaps: Map<number, { type: number; blob: number | null }>;
  memfds: Map<number, M>;
  ttyInfo: Map<number, M>;
  /** filelocks.img entries. */
  locks: M[];
  /** SysV shm id → key (ipcns-shm-*.img). */
  sysvKeys: Map<number, number>;
}

async function ghostImage(cp: CriuCheckpoint, name: string): Promise<M[]> {
  return (await cp.image(name)).entries;
}

async function ghostSize(cp: CriuCheckpoint, name: string): Promise<number | null> {
  const [head, ...chunks] = await ghostImage(cp, name);
  if (head?.['size'] !== undefined) return toNumber(head['size']);
  if (head?.['extra'] instanceof Uint8Array) return head['extra'].length;
  if (chunks.length) return Math.max(...chunks.map((c) => toNumber(c['off']) + toNumber(c['len'])));
  return null;
}

/** The whole content of a ghost (deleted) file: plain, or chunked (sparse: holes read as zeros). */
async function ghostContent(cp: CriuCheckpoint, name: string): Promise<Uint8Array> {
  const [head, ...chunks] = await ghostImage(cp, name);
  if (!head) return new Uint8Array(0);
  if (head['chunks'] !== true) return (head['extra'] as Uint8Array | undefined) ?? new Uint8Array(0);
  const size = (await ghostSize(cp, name)) ?? 0;
  const out = new Uint8Array(size);
  for (const c of chunks) out.set((c['extra'] as Uint8Array).subarray(0, Math.max(0, size - toNumber(c['off']))), toNumber(c['off']));
  return out;
}

function taskStateLetter(state: number | null): string | null {
  // CRIU keeps Alive/Zombie/Stopped, not the scheduler state of a live task
  if (state === 3) return 'Z';
  if (state === 6) return 'T';
  return null;
}

function splitNul(bytes: Uint8Array): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0) { out.push(utf8.decode(bytes.subarray(start, i))); start = i + 1; }
  }
  if (start < bytes.length) out.push(utf8.decode(bytes.subarray(start)));
  return out;
}

async function readStrings(cp: CriuCheckpoint, pid: number, start: number | null, end: number | null): Promise<string[]> {
  if (start === null || end === null || end <= start || end - start > 1 << 24) return [];
  try {
    const r = await cp.readMemory(pid, start, end - start);
    if (r.notStored.length) return [];
    return splitNul(r.bytes);
  } catch {
    return []; // unreadable pages (unknown pagemap layout, missing parent): argv unknown, not fatal
  }
}

async function mapProcess(ctx: MapContext, entry: M, options: CriuModelOptions):
  Promise<{ info: ProcessInfo; pagemap: Pagemap | null; machine: string | null }> {
  const { cp } = ctx;
  const pid = toNumber(entry['pid']);
  const ppid = toNumber(entry['ppid']);
  const tids = cp.threads(pid);
  const hasCore = await cp.has(`core-${pid}.img`);
  const core = hasCore ? await cp.core(pid) : undefined;
  const tc = sub(core, 'tc');
  const taskState = num(tc, 'task_state');
  const alive = hasCore && (await cp.has(`mm-${pid}.img`));
  const mm = alive ? await cp.mm(pid) : undefined;
  const fs = alive && (await cp.has(`fs-${pid}.img`)) ? await cp.fs(pid) : undefined;
  const pagemap = alive ? await cp.pagemap(`pagemap-${pid}.img`) : null;

  const threads: ThreadInfo[] = [];
  for (const tid of tids) {
    const tcore = tid === pid ? core : (await cp.has(`core-${tid}.img`)) ? await cp.core(tid) : undefined;
    threads.push(mapThread(tid, tcore, tid === pid ? tc : undefined));
  }

  const leaderThreadCore = sub(core, 'thread_core');
  const creds = mapCreds(sub(leaderThreadCore, 'creds'), num(leaderThreadCore, 'seccomp_mode') ?? num(tc, 'old_seccomp_mode'));

  const rlimits: RLimit[] = list(sub(tc, 'rlimits'), 'rlimits').map((r) => {
    const cur = toBigInt(r['cur']);
    const max = toBigInt(r['max']);
    return { soft: cur === RLIM_INFINITY ? null : cur, hard: max === RLIM_INFINITY ? null : max };
  });

  const sigactions: (SigAction | null)[] = new Array<SigAction | null>(64).fill(null);
  const sas = list(tc, 'sigactions');
  let k = 0;
  for (let sig = 1; sig <= 64 && k < sas.length; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP) continue;
    const sa = sas[k++]!;
    sigactions[sig - 1] = {
      handler: toBigInt(sa['sigaction']), flags: toNumber(sa['flags']), restorer: toBigInt(sa['restorer']),
      mask: toBigInt(sa['mask']),
    };
  }

  let mmInfo: MmInfo | null = null;
  let auxv: Uint8Array | null = null;
  if (mm) {
    mmInfo = {
      startCode: big(mm, 'mm_start_code'), endCode: big(mm, 'mm_end_code'), startData: big(mm, 'mm_start_data'),
      endData: big(mm, 'mm_end_data'), startBrk: big(mm, 'mm_start_brk'), brk: big(mm, 'mm_brk'),
      startStack: big(mm, 'mm_start_stack'), argStart: big(mm, 'mm_arg_start'), argEnd: big(mm, 'mm_arg_end'),
      envStart: big(mm, 'mm_env_start'), envEnd: big(mm, 'mm_env_end'),
    };
    const words = list<unknown>(mm, 'mm_saved_auxv');
    auxv = new Uint8Array(words.length * 8);
    const view = new DataView(auxv.buffer);
    words.forEach((w, i) => view.setBigUint64(i * 8, BigInt.asUintN(64, toBigInt(w)), true));
  }

  const readArgs = options.readArgs !== false && mm !== undefined;
  const cmdline = readArgs ? await readStrings(cp, pid, num(mm, 'mm_arg_start'), num(mm, 'mm_arg_end')) : [];
  const environ = readArgs ? await readStrings(cp, pid, num(mm, 'mm_env_start'), num(mm, 'mm_env_end')) : [];

  const vmas: VmaInfo[] = [];
  for (const v of list(mm, 'vmas')) vmas.push(await mapVma(ctx, v, pagemap));

  const fds: FdInfo[] = [];
  if (alive && (await cp.has(`ids-${pid}.img`))) {
    for (const fd of await cp.fdinfo(pid)) fds.push(await mapFd(ctx, fd));
    fds.sort((a, b) => a.fd - b.fd);
    for (const lock of ctx.locks) {
      if (num(lock, 'pid') !== pid) continue;
      const f = fds.find((x) => x.fd === num(lock, 'fd'));
      if (f) f.fdinfo['lock'] = f.fdinfo['lock'] ? `${f.fdinfo['lock']}; ${lockText(lock)}` : lockText(lock);
    }
  }

  // page map: PE_PRESENT → DATA with page-file indices; PE_PARENT → DATA numbered after them
  const pageMap: PageMapEntry[] = [];
  let parentIndex = pagemap?.presentPages ?? 0;
  for (const run of pagemap?.runs ?? []) {
    if (run.flags & PE_PRESENT) {
      pageMap.push({ vaddr: BigInt(run.vaddr), pageCount: run.nrPages, kind: PageKind.DATA, storeIndex: run.fileOffset / PAGE_SIZE });
    } else if (run.flags & PE_PARENT) {
      pageMap.push({ vaddr: BigInt(run.vaddr), pageCount: run.nrPages, kind: PageKind.DATA, storeIndex: parentIndex });
      parentIndex += run.nrPages;
    }
  }

  const exeId = num(mm, 'exe_file_id');
  const info: ProcessInfo = {
    pid,
    ppid: ppid === 0 ? null : ppid,
    pgid: num(entry, 'pgid'),
    sid: num(entry, 'sid'),
    comm: (tc?.['comm'] as string | undefined) ?? null,
    state: taskStateLetter(taskState),
    cmdline,
    environ,
    exe: exeId !== null ? await cp.filePath(exeId) : null,
    cwd: fs ? await cp.filePath(toNumber(fs['cwd_id'])) : null,
    root: fs ? await cp.filePath(toNumber(fs['root_id'])) : null,
    umask: num(fs, 'umask'),
    personality: num(tc, 'personality'),
    creds,
    rlimits,
    mm: mmInfo,
    auxv,
    sigactions,
    pendingShared: list(sub(tc, 'signals_s'), 'signals').map((s) => s['siginfo'] as Uint8Array),
    threads,
    vmas,
    fds,
    pageMap,
    storedPageCount: parentIndex,
    raw: { source: 'criu', pstree: entry, taskState, core: core ?? null, mm: mm ? { ...mm, vmas: undefined } : null, fs: fs ?? null },
  };
  return { info, pagemap, machine: core ? MACHINES[toNumber(core['mtype'])] ?? null : null };
}

/** A file lock as /proc/locks shows it: `POSIX WRITE 0-EOF`. */
export function lockText(l: M): string {
  const flag = num(l, 'flag') ?? 0;
  const type = num(l, 'type') ?? 0;
  const kind = ({ 1: 'POSIX', 2: 'FLOCK', 4: 'OFDLCK', 8: 'LEASE' } as Record<number, string>)[flag] ?? `flag ${flag}`;
  // fl_ltype: F_RDLCK 0, F_WRLCK 1, F_UNLCK 2; flock may carry LOCK_MAND (32)
  const mode = type & 32 ? 'MANDATORY' : ({ 0: 'READ', 1: 'WRITE', 2: 'UNLCK' } as Record<number, string>)[type] ?? `type ${type}`;
  const start = big(l, 'start') ?? 0n;
  const len = big(l, 'len') ?? 0n;
  return `${kind} ${mode} ${start}-${len === 0n ? 'EOF' : String(start + len - 1n)}`;
}

function mapCreds(c: M | undefined, seccomp: number | null): Creds | null {
  if (!c) return null;
  return {
    uid: [num(c, 'uid')!, num(c, 'euid')!, num(c, 'suid')!, num(c, 'fsuid')!],
    gid: [num(c, 'gid')!, num(c, 'egid')!, num(c, 'sgid')!, num(c, 'fsgid')!],
    groups: list<unknown>(c, 'groups').map(toNumber),
    capInh: words64(list(c, 'cap_inh')), capPrm: words64(list(c, 'cap_prm')), capEff: words64(list(c, 'cap_eff')),
    capBnd: words64(list(c, 'cap_bnd')), capAmb: words64(list(c, 'cap_amb')),
    noNewPrivs: c['no_new_privs'] === undefined ? null : toNumber(c['no_new_privs']) !== 0,
    seccomp,
  };
}

const CRIU_REGS: Record<keyof Registers, string> = {
  r15: 'r15', r14: 'r14', r13: 'r13', r12: 'r12', rbp: 'bp', rbx: 'bx', r11: 'r11', r10: 'r10', r9: 'r9', r8: 'r8',
  rax: 'ax', rcx: 'cx', rdx: 'dx', rsi: 'si', rdi: 'di', orig_rax: 'orig_ax', rip: 'ip', cs: 'cs', eflags: 'flags',
  rsp: 'sp', ss: 'ss', fs_base: 'fs_base', gs_base: 'gs_base', ds: 'ds', es: 'es', fs: 'fs', gs: 'gs',
};

function mapThread(tid: number, core: M | undefined, leaderTc: M | undefined): ThreadInfo {
  const ti = sub(core, 'thread_info');
  const gp = sub(ti, 'gpregs');
  const thc = sub(core, 'thread_core');
  let registers: Registers | null = null;
  if (gp) {
    const r = {} as Registers;
    for (const name of REGISTER_NAMES) r[name] = toBigInt(gp[CRIU_REGS[name]]);
    registers = r;
  }
  const sas = sub(thc, 'sas');
  const rseq = sub(thc, 'rseq_entry');
  const tc = leaderTc ?? sub(core, 'tc');
  return {
    tid,
    comm: (thc?.['comm'] as string | undefined) ?? (tc?.['comm'] as string | undefined) ?? null,
    state: taskStateLetter(num(tc, 'task_state')),
    registers,
    restart: null,
    xstate: ti ? xsaveArea(sub(ti, 'fpregs')) : null,
    xfeatures: null,
    fsBase: big(gp, 'fs_base'),
    gsBase: big(gp, 'gs_base'),
    sigmask: big(thc, 'blk_sigset') ?? big(tc, 'blk_sigset'),
    pending: list(sub(thc, 'signals_p'), 'signals').map((s) => s['siginfo'] as Uint8Array),
    clearChildTid: big(ti, 'clear_tid_addr'),
    robustList: thc && thc['futex_rla'] !== undefined ? { head: toBigInt(thc['futex_rla']), len: toNumber(thc['futex_rla_len']) } : null,
    rseq: rseq ? { ptr: toBigInt(rseq['rseq_abi_pointer']), size: toNumber(rseq['rseq_abi_size']), signature: toNumber(rseq['signature']) } : null,
    sigaltstack: sas ? { sp: toBigInt(sas['ss_sp']), size: toNumber(sas['ss_size']), flags: toNumber(sas['ss_flags']) } : null,
    raw: core ? { source: 'criu', core } : { source: 'criu' },
  };
}

/**
 * Reassemble a standard-format XSAVE area from CRIU's decomposed x86 FPU state: the 512-byte legacy
 * (FXSAVE) region, the 64-byte header (XSTATE_BV), and the components CRIU keeps at their standard
 * offsets (AVX 576, MPX 960/1024, opmask 1088, ZMM_Hi256 1152, Hi16_ZMM 1664, PKRU 2688).
 */
export function xsaveArea(fp: M | undefined): Uint8Array | null {
  if (!fp) return null;
  const xs = sub(fp, 'xsave');
  const comps: [string, number, number][] = [
    ['ymmh_space', 576, 4], ['bndreg_state', 960, 8], ['bndcsr_state', 1024, 8], ['opmask_reg', 1088, 8],
    ['zmm_upper', 1152, 8], ['hi16_zmm', 1664, 8], ['pkru', 2688, 4],
  ];
  let size = xs ? 576 : 512;
  if (xs) for (const [key, off, w] of comps) { const n = list(xs, key).length; if (n) size = Math.max(size, off + n * w); }
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint16(0, num(fp, 'cwd') ?? 0, true);
  v.setUint16(2, num(fp, 'swd') ?? 0, true);
  v.setUint8(4, num(fp, 'twd') ?? 0);
  v.setUint16(6, num(fp, 'fop') ?? 0, true);
  v.setBigUint64(8, BigInt.asUintN(64, big(fp, 'rip') ?? 0n), true);
  v.setBigUint64(16, BigInt.asUintN(64, big(fp, 'rdp') ?? 0n), true);
  v.setUint32(24, num(fp, 'mxcsr') ?? 0, true);
  v.setUint32(28, num(fp, 'mxcsr_mask') ?? 0, true);
  list<unknown>(fp, 'st_space').slice(0, 32).forEach((w, i) => v.setUint32(32 + i * 4, toNumber(w), true));
  list<unknown>(fp, 'xmm_space').slice(0, 64).forEach((w, i) => v.setUint32(160 + i * 4, toNumber(w), true));
  if (xs) {
    v.setBigUint64(512, BigInt.asUintN(64, big(xs, 'xstate_bv') ?? 0n), true);
    for (const [key, off, w] of comps) {
      list<unknown>(xs, key).forEach((x, i) => {
        if (w === 4) v.setUint32(off + i * 4, toNumber(x), true);
        else v.setBigUint64(off + i * 8, BigInt.asUintN(64, toBigInt(x)), true);
      });
    }
  }
  return out;
}

function vmaKind(status: number, flags: number, deleted: boolean): string {
  if (status & VMA.AREA_VDSO) return 'vdso';
  if (status & VMA.AREA_VVAR) return 'vvar';
  if (status & VMA.AREA_VSYSCALL) return 'vsyscall';
  if (status & VMA.AREA_HEAP) return 'heap';
  if (status & VMA.AREA_STACK || flags & 0x100) return 'stack';
  if (status & VMA.AREA_MEMFD) return 'memfd';
  if (status & (VMA.ANON_SHARED | VMA.AREA_SYSVIPC)) return 'shmem';
  if (status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED)) return deleted ? 'deleted' : 'file';
  return 'anon';
}

function memfdPath(inode: M | undefined): string | null {
  const name = inode?.['name'] as string | undefined;
  if (name === undefined) return null;
  return name.startsWith('/') ? name : `/memfd:${name}`;
}

async function mapVma(ctx: MapContext, v: M, pagemap: Pagemap | null): Promise<VmaInfo> {
  const status = toNumber(v['status']);
  const flags = toNumber(v['flags']);
  const start = toBigInt(v['start']);
  const end = toBigInt(v['end']);
  const shmid = toNumber(v['shmid']);
  let path: string | null = null;
  let deleted = false;
  let name = '';
  let shmemPm: Pagemap | null = null;
  const objectOffset = toNumber(v['pgoff']);
  if (status & VMA.AREA_MEMFD) {
    const memfd = sub(ctx.files.get(shmid), 'memfd');
    const inode = memfd ? ctx.memfds.get(toNumber(memfd['inode_id'])) : undefined;
    path = memfdPath(inode);
    name = path ? `${path} (deleted)` : '';
    if (inode) shmemPm = await ctx.cp.pagemap(`pagemap-shmem-${toNumber(inode['shmid'])}.img`);
  } else if (status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED)) {
    path = await ctx.cp.filePath(shmid);
    const remap = ctx.remaps.get(shmid);
    deleted = remap !== undefined && remap.type !== 2;
    name = path ? (deleted ? `${path} (deleted)` : path) : '';
  } else if (status & (VMA.ANON_SHARED | VMA.AREA_SYSVIPC)) {
    // as /proc/PID/maps names them: SysV segments by key, shared anonymous memory as /dev/zero
    const key = ctx.sysvKeys.get(shmid);
    if (status & VMA.AREA_SYSVIPC) name = key !== undefined ? `/SYSV${(key >>> 0).toString(16).padStart(8, '0')} (deleted)` : '/SYSV (deleted)';
    else name = '/dev/zero (deleted)';
    shmemPm = await ctx.cp.pagemap(`pagemap-shmem-${shmid}.img`);
  } else if (status & VMA.AREA_HEAP) name = '[heap]';
  else if (status & VMA.AREA_STACK || flags & 0x100) name = '[stack]';
  else if (status & VMA.AREA_VDSO) name = '[vdso]';
  else if (status & VMA.AREA_VVAR) name = '[vvar]';
  else if (status & VMA.AREA_VSYSCALL) name = '[vsyscall]';

  // pages held for this VMA: its own pagemap, or the shared object's range it maps
  let pagesStored = 0;
  const s = Number(start);
  const e = Number(end);
  const count = (pm: Pagemap | null, lo: number, hi: number) => {
    if (!pm) return 0;
    let n = 0;
    for (const r of pm.runs) {
      if (!(r.flags & (PE_PRESENT | PE_PARENT))) continue;
      const a = Math.max(lo, r.vaddr);
      const b = Math.min(hi, r.vaddr + r.nrPages * PAGE_SIZE);
      if (b > a) n += (b - a) / PAGE_SIZE;
    }
    return n;
  };
  if (Number.isSafeInteger(e)) {
    if (shmemPm) pagesStored = count(shmemPm, objectOffset, objectOffset + (e - s));
    else pagesStored = count(pagemap, s, e);
  }
  return {
    start, end,
    prot: toNumber(v['prot']),
    shared: (flags & 1) !== 0,
    offset: toBigInt(v['pgoff']),
    dev: null,
    inode: status & (VMA.ANON_SHARED | VMA.AREA_SYSVIPC) ? shmid : null,
    name,
    path,
    kind: vmaKind(status, flags, deleted),
    vmFlags: [],
    pagesStored,
    zeroPages: 0,
    raw: { source: 'criu', vma: v },
  };
}

const FD_TYPES: Record<string, string> = {
  REG: 'file', PIPE: 'pipe', FIFO: 'fifo', INETSK: 'socket', UNIXSK: 'socket', PACKETSK: 'socket', NETLINKSK: 'socket',
  EVENTFD: 'eventfd', EVENTPOLL: 'epoll', INOTIFY: 'inotify', FANOTIFY: 'fanotify', SIGNALFD: 'signalfd',
  TIMERFD: 'timerfd', TTY: 'tty', MEMFD: 'memfd', PIDFD: 'pidfd', BPFMAP: 'anon', NS: 'file', TUNF: 'chr', EXT: 'unknown',
};

function regType(mode: number | null): string {
  switch ((mode ?? 0) & S_IFMT) {
    case 0o040000: return 'dir';
    case 0o020000: return 'chr';
    case 0o060000: return 'blk';
    case 0o010000: return 'fifo';
    default: return 'file';
  }
}

function ipString(words: unknown[], family: number): string {
  const bytes: number[] = [];
  for (const w of words) { const n = toNumber(w) >>> 0; bytes.push(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24); }
  if (family === 2) return bytes.slice(0, 4).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

function unixName(name: Uint8Array | undefined): string | null {
  if (!name || name.length === 0) return null;
  if (name[0] === 0) return '@' + utf8.decode(name.subarray(1));
  return utf8.decode(name);
}

function ttyPath(info: M | undefined): string | null {
  if (!info) return null;
  const rdev = toNumber(info['rdev']);
  const major = (rdev >>> 8) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
  switch (toNumber(info['type'])) {
    case 1: return major === 5 && minor === 2 ? '/dev/ptmx' : `/dev/pts/${num(sub(info, 'pty'), 'index') ?? minor}`;
    case 2: return '/dev/console';
    case 3: return `/dev/tty${minor}`;
    case 4: return '/dev/tty';
    case 6: return `/dev/ttyS${minor - 64}`;
    default: return null;
  }
}

async function mapFd(ctx: MapContext, fdEntry: M): Promise<FdInfo> {
  const typeNum = toNumber(fdEntry['type']);
  const typeName = fdTypeName(typeNum);
  const id = toNumber(fdEntry['id']);
  const file = ctx.files.get(id);
  const fd: FdInfo = {
    fd: toNumber(fdEntry['fd']),
    type: FD_TYPES[typeName] ?? 'unknown',
    path: null, flags: null,
    cloexec: (toNumber(fdEntry['flags']) & 1) !== 0,
    pos: null, mntId: null, mode: null, size: null, dev: null, rdev: null, inode: null, nlink: null, mtime: null,
    deleted: null, contentBlob: null, pipe: null, socket: null, fdinfo: {},
    raw: { source: 'criu', fdinfo: fdEntry, file: file ?? null },
  };
  switch (typeName) {
    case 'REG': {
      const reg = sub(file, 'reg');
      if (!reg) break;
      fd.path = reg['name'] as string;
      fd.flags = num(reg, 'flags');
      fd.pos = num(reg, 'pos');
      const mnt = num(reg, 'mnt_id');
      fd.mntId = mnt === null || mnt === -1 ? null : mnt;
      fd.mode = num(reg, 'mode');
      fd.size = num(reg, 'size');
      fd.type = regType(fd.mode);
      const remap = ctx.remaps.get(id);
      fd.deleted = remap ? remap.type !== 2 : false;
      fd.contentBlob = remap?.blob ?? null;
      break;
    }
    case 'PIPE': case 'FIFO': {
      const p = sub(file, typeName === 'PIPE' ? 'pipe' : 'fifo');
      if (!p) break;
      const pipeId = toNumber(p['pipe_id']);
      if (typeName === 'PIPE') {
        fd.path = `pipe:[${pipeId}]`;
        fd.flags = num(p, 'flags');
      } else {
        const regf = num(p, 'regf_id');
        const reg = regf !== null ? sub(ctx.files.get(regf), 'reg') : undefined;
        fd.path = (reg?.['name'] as string | undefined) ?? null;
        fd.flags = num(reg, 'flags');
      }
      const data = ctx.pipeData.get(pipeId);
      fd.pipe = { inode: pipeId, dataBlob: ctx.pipeBlob.get(pipeId) ?? null, dataLength: data ? data.length : null };
      break;
    }
    case 'INETSK': {
      const s = sub(file, 'isk');
      if (!s) break;
      const family = toNumber(s['family']);
      const ino = toNumber(s['ino']);
      const src = ipString(list(s, 'src_addr'), family);
      const dst = ipString(list(s, 'dst_addr'), family);
      const fmt = (a: string, port: number) => (family === 10 ? `[${a}]:${port}` : `${a}:${port}`);
      const sock: SocketInfo = {
        family: family === 2 ? 'inet' : family === 10 ? 'inet6' : 'other',
        type: (DICTS['sk']!['type']![toNumber(s['type'])] ?? String(s['type'])).toLowerCase(),
        protocol: toNumber(s['proto']),
        state: DICTS['sk']!['state']![toNumber(s['state'])] ?? String(s['state']),
        local: fmt(src, toNumber(s['src_port'])),
        peer: toNumber(s['dst_port']) !== 0 ? fmt(dst, toNumber(s['dst_port'])) : null,
        inode: ino,
      };
      fd.socket = sock;
      fd.path = `socket:[${ino}]`;
      fd.flags = num(s, 'flags');
      break;
    }
    case 'UNIXSK': {
      const s = sub(file, 'usk');
      if (!s) break;
      const ino = toNumber(s['ino']);
      const peer = toNumber(s['peer']);
      fd.socket = {
        family: 'unix',
        type: (DICTS['sk']!['type']![toNumber(s['type'])] ?? String(s['type'])).toLowerCase(),
        protocol: 0,
        state: DICTS['sk']!['state']![toNumber(s['state'])] ?? String(s['state']),
        local: unixName(s['name'] as Uint8Array | undefined),
        peer: peer ? `socket:[${peer}]` : null,
        inode: ino,
      };
      fd.path = `socket:[${ino}]`;
      fd.flags = num(s, 'flags');
      break;
    }
    case 'PACKETSK': case 'NETLINKSK': {
      const s = sub(file, typeName === 'PACKETSK' ? 'psk' : 'nlsk');
      if (!s) break;
      const ino = num(s, 'ino');
      fd.socket = {
        family: typeName === 'NETLINKSK' ? 'netlink' : 'other', type: typeName === 'NETLINKSK' ? 'raw' : String(num(s, 'type')),
        protocol: num(s, 'protocol'), state: null, local: null, peer: null, inode: ino,
      };
      fd.path = ino !== null ? `socket:[${ino}]` : null;
      fd.flags = num(s, 'flags');
      break;
    }
    case 'EVENTFD': {
      const e = sub(file, 'efd');
      fd.path = 'anon_inode:[eventfd]';
      fd.flags = num(e, 'flags');
      if (e) fd.fdinfo['eventfd-count'] = toBigInt(e['counter']).toString(16);
      break;
    }
    case 'EVENTPOLL': {
      const e = sub(file, 'epfd');
      fd.path = 'anon_inode:[eventpoll]';
      fd.flags = num(e, 'flags');
      let tfds = list(e, 'tfd');
      if (tfds.length === 0) {
        const legacy = await ctx.cp.maybeImage('eventpoll-tfd.img');
        tfds = legacy?.entries.filter((t) => toNumber(t['id']) === id) ?? [];
      }
      for (const t of tfds) {
        fd.fdinfo[`tfd ${toNumber(t['tfd'])}`] = `events: ${toNumber(t['events']).toString(16)} data: ${toBigInt(t['data']).toString(16)}`;
      }
      break;
    }
    case 'SIGNALFD': {
      const e = sub(file, 'sgfd');
      fd.path = 'anon_inode:[signalfd]';
      fd.flags = num(e, 'flags');
      if (e) fd.fdinfo['sigmask'] = toBigInt(e['sigmask']).toString(16).padStart(16, '0');
      break;
    }
    case 'TIMERFD': {
      const e = sub(file, 'tfd');
      fd.path = 'anon_inode:[timerfd]';
      fd.flags = num(e, 'flags');
      if (e) {
        fd.fdinfo['clockid'] = String(num(e, 'clockid'));
        fd.fdinfo['ticks'] = String(big(e, 'ticks'));
        fd.fdinfo['settime flags'] = String(num(e, 'settime_flags'));
        fd.fdinfo['it_value'] = `(${big(e, 'vsec')}, ${big(e, 'vnsec')})`;
        fd.fdinfo['it_interval'] = `(${big(e, 'isec')}, ${big(e, 'insec')})`;
      }
      break;
    }
    case 'INOTIFY': case 'FANOTIFY': {
      const e = sub(file, typeName === 'INOTIFY' ? 'ify' : 'ffy');
      fd.path = typeName === 'INOTIFY' ? 'anon_inode:inotify' : 'anon_inode:[fanotify]';
      fd.flags = num(e, 'flags');
      for (const w of list(e, 'wd')) {
        const fh = sub(w, 'f_handle');
        fd.fdinfo[`inotify wd:${num(w, 'wd')}`] =
          `ino:${big(w, 'i_ino')?.toString(16)} sdev:${num(w, 's_dev')?.toString(16)} mask:${num(w, 'mask')?.toString(16)}` +
          (fh?.['path'] ? ` path:${fh['path'] as string}` : '');
      }
      for (const m of list(e, 'mark')) {
        fd.fdinfo[`fanotify mark ${num(m, 'id')}`] = `type:${num(m, 'type')} mask:${num(m, 'mask')?.toString(16)}`;
      }
      break;
    }
    case 'MEMFD': {
      const m = sub(file, 'memfd');
      if (!m) break;
      const inode = ctx.memfds.get(toNumber(m['inode_id']));
      fd.path = memfdPath(inode);
      fd.flags = num(m, 'flags');
      fd.pos = num(m, 'pos');
      fd.size = num(inode, 'size');
      fd.mode = num(inode, 'mode');
      fd.inode = num(inode, 'shmid');
      fd.deleted = true;
      break;
    }
    case 'TTY': {
      const t = sub(file, 'tty');
      if (!t) break;
      const info = ctx.ttyInfo.get(toNumber(t['tty_info_id']));
      fd.path = ttyPath(info);
      fd.flags = num(t, 'flags');
      fd.rdev = num(info, 'rdev');
      break;
    }
    case 'PIDFD': {
      const p = sub(file, 'pidfd');
      fd.path = 'anon_inode:[pidfd]';
      fd.flags = num(p, 'flags');
      if (p) fd.fdinfo['Pid'] = String(num(p, 'nspid'));
      break;
    }
    case 'NS': {
      const n = sub(file, 'nsf');
      fd.flags = num(n, 'flags');
      fd.fdinfo['ns_id'] = String(num(n, 'ns_id'));
      break;
    }
    default:
      break;
  }
  return fd;
}
