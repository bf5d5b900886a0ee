// Planning a rewrite: from an open image and the user's PID map and relocations, compute the new
// metadata maps, the in-memory patches (glibc's cached thread IDs) and a field-by-field list of every
// change. Nothing is written here; ./stream.ts writes the plan out.
import type { CryoImage } from '../core/reader.js';
import type { RawMap } from '../core/model.js';
import type { PidMap } from './pid-map.js';
import { Relocator, RewriteOptionError, type Relocation } from './relocate.js';

/** One changed field, for --dry-run and for the report. */
export interface FieldChange {
  /** Where: "image", "process 42", "process 42 thread 43", "process 42 fd 3", "process 42 vma 0x7f..". */
  where: string;
  field: string;
  from: string;
  to: string;
}

/** A 4-byte write into a process's memory (a store page of the image). */
export interface MemoryPatch {
  pid: number;
  address: bigint;
  from: number;
  to: number;
}

/** A descriptor given a new path by --relocate-fd; `pid` absent means every process. */
export interface FdRelocation {
  pid?: number;
  fd: number;
  path: string;
}

export interface RewriteRequest {
  /** Complete map from every image PID/TID to its new value (identity where unchanged), or none. */
  pidMap?: PidMap;
  relocations?: Relocation[];
  fdRelocations?: FdRelocation[];
}

export interface RewritePlan {
  /** The new IMAGE_META map. */
  meta: RawMap;
  /** Old PID → new PROCESS map. */
  processes: Map<number, RawMap>;
  /** Old PID → new PID for section owners (identity when not remapped). */
  ownerMap: (pid: number) => number;
  patches: MemoryPatch[];
  changes: FieldChange[];
  /** Things that could not be changed and may matter (threads whose cached TID was not found, ...). */
  warnings: string[];
}

/** glibc (2.11 and later, x86_64) keeps the thread ID in `struct pthread` at fs_base + 0x2d0. */
const GLIBC_TID_OFFSET = 0x2d0n;

const num = (value: unknown): number | null =>
  typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : null;

const big = (value: unknown): bigint | null =>
  typeof value === 'bigint' ? value : typeof value === 'number' ? BigInt(value) : null;

export async function planRewrite(image: CryoImage, request: RewriteRequest): Promise<RewritePlan> {
  const pidMap = request.pidMap ?? new Map<number, number>();
  const mapPid = (pid: number) => pidMap.get(pid) ?? pid;
  const relocator = new Relocator(request.relocations ?? []);
  const changes: FieldChange[] = [];
  const warnings: string[] = [];
  const patches: MemoryPatch[] = [];

  const setField = (map: RawMap, key: string, value: unknown, where: string, shown: (v: unknown) => string = String) => {
    if (map[key] === value) return;
    changes.push({ where, field: key, from: shown(map[key]), to: shown(value) });
    map[key] = value;
  };
  const remapField = (map: RawMap, key: string, where: string) => {
    const old = num(map[key]);
    if (old !== null && mapPid(old) !== old) setField(map, key, mapPid(old), where);
  };
  const procPath = (path: string) => rewriteProcPath(path, mapPid);
  const newPath = (path: string) => {
    const fromProc = procPath(path);
    const moved = relocator.apply(fromProc);
    return moved ?? fromProc;
  };
  const pathField = (map: RawMap, key: string, where: string) => {
    const old = map[key];
    if (typeof old !== 'string') return;
    const next = newPath(old);
    if (next !== old) setField(map, key, next, where);
  };

  for (const fd of request.fdRelocations ?? []) {
    if (fd.pid !== undefined && !image.process(fd.pid)) throw new RewriteOptionError(`--relocate-fd: no process ${fd.pid} in this image`);
    const owners = image.processes.filter((p) => (fd.pid === undefined || p.pid === fd.pid) && p.fds.some((f) => f.fd === fd.fd));
    if (!owners.length) throw new RewriteOptionError(`--relocate-fd: no descriptor ${fd.fd} in ${fd.pid === undefined ? 'any process' : `process ${fd.pid}`}`);
  }

  const meta = structuredClone(image.meta.raw);
  remapField(meta, 'rootPid', 'image');
  if (Array.isArray(meta.pids)) {
    const oldPids = meta.pids.map(num);
    if (oldPids.some((p) => p !== null && mapPid(p) !== p)) {
      setField(meta, 'pids', oldPids.map((p) => (p === null ? p : mapPid(p))), 'image', (v) => JSON.stringify((v as unknown[]).map(num)));
    }
  }

  const processes = new Map<number, RawMap>();
  for (const process of image.processes) {
    const raw = structuredClone(process.raw);
    const where = `process ${process.pid}`;
    for (const key of ['pid', 'ppid', 'pgid', 'sid']) remapField(raw, key, where);
    for (const key of ['exe', 'cwd', 'root']) pathField(raw, key, where);
    remapSiginfos(raw.pendingShared, mapPid, where, 'pendingShared', changes);

    for (const thread of (Array.isArray(raw.threads) ? raw.threads : []) as RawMap[]) {
      const tid = num(thread.tid);
      if (tid === null) continue;
      const tWhere = `${where} thread ${tid}`;
      remapField(thread, 'tid', tWhere);
      remapSiginfos(thread.pending, mapPid, tWhere, 'pending', changes);
      if (mapPid(tid) !== tid) {
        const patch = await findCachedTid(image, process.pid, thread, tid);
        if (patch) {
          patches.push({ ...patch, to: mapPid(tid) });
          changes.push({ where: tWhere, field: `memory 0x${patch.address.toString(16)} (glibc cached TID)`, from: String(tid), to: String(mapPid(tid)) });
        } else {
          warnings.push(`${tWhere}: glibc's cached thread ID was not found at fs_base+0x2d0 or the clear_child_tid address; it was not patched (pthread functions of this thread may misbehave)`);
        }
      }
    }

    for (const vma of (Array.isArray(raw.vmas) ? raw.vmas : []) as RawMap[]) {
      const start = big(vma.start);
      const vWhere = `${where} vma 0x${(start ?? 0n).toString(16)}`;
      if (typeof vma.path === 'string') {
        const next = newPath(vma.path);
        if (next !== vma.path) {
          const oldPath = vma.path;
          setField(vma, 'path', next, vWhere);
          if (typeof vma.name === 'string' && (vma.name === oldPath || vma.name.startsWith(oldPath + ' ('))) {
            setField(vma, 'name', next + vma.name.slice(oldPath.length), vWhere);
          }
        }
      }
    }

    for (const fd of (Array.isArray(raw.fds) ? raw.fds : []) as RawMap[]) {
      const n = num(fd.fd);
      const fWhere = `${where} fd ${n}`;
      const explicit = (request.fdRelocations ?? []).find((r) => r.fd === n && (r.pid === undefined || r.pid === process.pid));
      if (explicit) {
        setField(fd, 'path', explicit.path, fWhere);
      } else if (typeof fd.path === 'string' && fd.path.startsWith('/')) {
        pathField(fd, 'path', fWhere);
      }
      const socket = fd.socket as RawMap | undefined;
      if (socket && typeof socket === 'object' && socket.family === 'unix') {
        for (const key of ['local', 'peer']) {
          const value = socket[key];
          if (typeof value === 'string' && value.startsWith('/')) {
            const next = relocator.apply(value);
            if (next !== null && next !== value) setField(socket, key, next, `${fWhere} socket`);
          }
        }
      }
      const info = fd.fdinfo as RawMap | undefined;
      if (info && typeof info === 'object' && typeof info.Pid === 'string') {
        const pid = Number(info.Pid.trim());
        if (Number.isInteger(pid) && mapPid(pid) !== pid) setField(info, 'Pid', String(mapPid(pid)), `${fWhere} fdinfo`);
      }
    }
    processes.set(process.pid, raw);
  }

  return { meta, processes, ownerMap: mapPid, patches, changes, warnings };
}

/** "/proc/42/fd" → "/proc/4242/fd" (also /proc/42/task/43/...). */
export function rewriteProcPath(path: string, mapPid: (pid: number) => number): string {
  return path.replace(/^\/proc\/(\d+)(?=\/|$)(?:\/task\/(\d+)(?=\/|$))?/, (_whole, pid: string, tid?: string) =>
    `/proc/${mapPid(Number(pid))}` + (tid === undefined ? '' : `/task/${mapPid(Number(tid))}`),
  );
}

/** si_pid (offset 16) of signals sent by a process (si_code ≤ 0: SI_USER, SI_QUEUE, SI_TKILL, ...). */
function remapSiginfos(list: unknown, mapPid: (pid: number) => number, where: string, field: string, changes: FieldChange[]): void {
  if (!Array.isArray(list)) return;
  list.forEach((info, i) => {
    if (!(info instanceof Uint8Array) || info.length < 24) return;
    const view = new DataView(info.buffer, info.byteOffset, info.byteLength);
    if (view.getInt32(8, true) > 0) return; // sent by the kernel: no sender PID
    const pid = view.getInt32(16, true);
    if (pid > 0 && mapPid(pid) !== pid) {
      view.setInt32(16, mapPid(pid), true);
      changes.push({ where, field: `${field}[${i}].si_pid`, from: String(pid), to: String(mapPid(pid)) });
    }
  });
}

/**
 * Where glibc keeps this thread's TID in memory: fs_base + 0x2d0, which is also where the kernel's
 * clear_child_tid points for threads glibc created. Accept a place only if it holds the old TID.
 */
async function findCachedTid(image: CryoImage, pid: number, thread: RawMap, tid: number): Promise<{ pid: number; address: bigint; from: number } | null> {
  const candidates: bigint[] = [];
  const fsBase = big(thread.fsBase);
  const clearChildTid = big(thread.clearChildTid);
  if (clearChildTid) candidates.push(clearChildTid);
  if (fsBase) candidates.push(fsBase + GLIBC_TID_OFFSET);
  for (const address of [...new Set(candidates)]) {
    if (image.pageState(pid, address) !== 'data') continue;
    const bytes = await image.readMemory(pid, address, 4);
    const value = new DataView(bytes.buffer, bytes.byteOffset).getInt32(0, true);
    if (value === tid) return { pid, address, from: tid };
  }
  return null;
}
