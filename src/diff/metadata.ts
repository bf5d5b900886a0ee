/**
 * What changed in the metadata of two checkpoints: processes, threads (registers), memory maps (VMAs
 * added, removed, resized, protection changed), file descriptors and environment. Pure functions over
 * the model; no I/O. Values are kept as they are in the model (bigint, number, string, null).
 *
 * @module
 */
import { REGISTER_NAMES, type FdInfo, type ProcessInfo, type ThreadInfo, type VmaInfo } from '../core/model.js';

/** One field that differs. */
export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
}

/** A VMA, as named in diffs. */
export interface VmaRef {
  start: bigint;
  end: bigint;
  /** `rwxp` style. */
  prot: string;
  name: string;
}

export interface VmaChange {
  /** The VMA in the first image and in the second. */
  from: VmaRef;
  to: VmaRef;
  /** `resized` (start or end moved), `protection`, `other` (offset, flags, name...); may hold several. */
  kinds: ('resized' | 'protection' | 'other')[];
  changes: FieldChange[];
}

export interface FdRef {
  fd: number;
  type: string | null;
  path: string | null;
  pos: number | null;
}

export interface FdChange {
  fd: number;
  path: string | null;
  /** Includes `pos` when the file offset moved. */
  changes: FieldChange[];
}

export interface ThreadChange {
  tid: number;
  /** Registers that differ, by name (`rip`, `rax`, ...). */
  registers: { name: string; from: bigint; to: bigint }[];
  changes: FieldChange[];
}

export interface EnvChange {
  added: string[];
  removed: string[];
  changed: { name: string; from: string; to: string }[];
}

/** The metadata differences of one process present in both images. */
export interface ProcessMetaDiff {
  pid: number;
  comm: string | null;
  fields: FieldChange[];
  threads: { added: number[]; removed: number[]; changed: ThreadChange[] };
  vmas: { added: VmaRef[]; removed: VmaRef[]; changed: VmaChange[] };
  fds: { opened: FdRef[]; closed: FdRef[]; changed: FdChange[] };
  environ: EnvChange;
}

export function protString(vma: Pick<VmaInfo, 'prot' | 'shared'>): string {
  return `${vma.prot & 1 ? 'r' : '-'}${vma.prot & 2 ? 'w' : '-'}${vma.prot & 4 ? 'x' : '-'}${vma.shared ? 's' : 'p'}`;
}

export function vmaRef(v: VmaInfo): VmaRef {
  return { start: v.start, end: v.end, prot: protString(v), name: v.name };
}

function fdRef(f: FdInfo): FdRef {
  return { fd: f.fd, type: f.type, path: f.path, pos: f.pos };
}

/** Structural equality for model values (bigint, arrays, Uint8Array, plain objects). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return a === b;
  if (typeof a !== typeof b) return false;
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a as object).filter((k) => k !== 'raw');
    const kb = Object.keys(b as object).filter((k) => k !== 'raw');
    if (ka.length !== kb.length) return false;
    return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}

function fieldChanges<T extends object>(a: T, b: T, fields: readonly (keyof T & string)[]): FieldChange[] {
  const out: FieldChange[] = [];
  for (const f of fields) if (!sameValue(a[f], b[f])) out.push({ field: f, from: a[f], to: b[f] });
  return out;
}

const PROCESS_FIELDS = ['ppid', 'pgid', 'sid', 'comm', 'state', 'cmdline', 'exe', 'cwd', 'root', 'umask', 'personality', 'creds', 'rlimits', 'mm', 'sigactions'] as const;
const THREAD_FIELDS = ['comm', 'state', 'restart', 'fsBase', 'gsBase', 'sigmask', 'clearChildTid', 'robustList', 'rseq', 'sigaltstack', 'xstate'] as const;
const FD_FIELDS = ['type', 'path', 'flags', 'cloexec', 'pos', 'size', 'deleted', 'mode', 'inode', 'pipe', 'socket', 'fdinfo'] as const;
const VMA_OTHER_FIELDS = ['offset', 'name', 'path', 'kind', 'inode', 'dev'] as const;

function diffThreads(a: ThreadInfo[], b: ThreadInfo[]): ProcessMetaDiff['threads'] {
  const before = new Map(a.map((t) => [t.tid, t]));
  const after = new Map(b.map((t) => [t.tid, t]));
  const changed: ThreadChange[] = [];
  for (const [tid, x] of before) {
    const y = after.get(tid);
    if (!y) continue;
    const registers: ThreadChange['registers'] = [];
    if (x.registers && y.registers) {
      for (const name of REGISTER_NAMES) {
        if (x.registers[name] !== y.registers[name]) registers.push({ name, from: x.registers[name], to: y.registers[name] });
      }
    } else if (!sameValue(x.raw.regs, y.raw.regs)) {
      registers.push({ name: 'regs', from: 0n, to: 0n });
    }
    const changes = fieldChanges(x, y, THREAD_FIELDS);
    if (registers.length || changes.length) changed.push({ tid, registers, changes });
  }
  return {
    added: [...after.keys()].filter((t) => !before.has(t)),
    removed: [...before.keys()].filter((t) => !after.has(t)),
    changed,
  };
}

/**
 * Pair the VMAs of two memory maps: same start first, then same end (a stack grown down), then
 * overlapping with the same name. Returns the pairs and what is left on each side.
 */
export function pairVmas(a: VmaInfo[], b: VmaInfo[]): { pairs: [VmaInfo, VmaInfo][]; removed: VmaInfo[]; added: VmaInfo[] } {
  const left = new Set(a);
  const right = new Set(b);
  const pairs: [VmaInfo, VmaInfo][] = [];
  const match = (same: (x: VmaInfo, y: VmaInfo) => boolean) => {
    for (const x of [...left]) {
      for (const y of right) {
        if (same(x, y)) {
          pairs.push([x, y]);
          left.delete(x);
          right.delete(y);
          break;
        }
      }
    }
  };
  const byStart = new Map(b.map((y) => [y.start, y]));
  for (const x of a) {
    const y = byStart.get(x.start);
    if (y && right.has(y)) {
      pairs.push([x, y]);
      left.delete(x);
      right.delete(y);
    }
  }
  match((x, y) => x.end === y.end);
  match((x, y) => x.name === y.name && x.start < y.end && y.start < x.end);
  pairs.sort((p, q) => (p[1].start < q[1].start ? -1 : 1));
  return { pairs, removed: [...left], added: [...right] };
}

function diffVmas(a: VmaInfo[], b: VmaInfo[]): ProcessMetaDiff['vmas'] {
  const { pairs, removed, added } = pairVmas(a, b);
  const changed: VmaChange[] = [];
  for (const [x, y] of pairs) {
    const kinds: VmaChange['kinds'] = [];
    const changes: FieldChange[] = [];
    if (x.start !== y.start || x.end !== y.end) {
      kinds.push('resized');
      if (x.start !== y.start) changes.push({ field: 'start', from: x.start, to: y.start });
      if (x.end !== y.end) changes.push({ field: 'end', from: x.end, to: y.end });
    }
    if (x.prot !== y.prot || x.shared !== y.shared) {
      kinds.push('protection');
      changes.push({ field: 'prot', from: protString(x), to: protString(y) });
    }
    const other = fieldChanges(x, y, VMA_OTHER_FIELDS);
    if (other.length) {
      kinds.push('other');
      changes.push(...other);
    }
    if (kinds.length) changed.push({ from: vmaRef(x), to: vmaRef(y), kinds, changes });
  }
  return { added: added.map(vmaRef), removed: removed.map(vmaRef), changed };
}

function diffFds(a: FdInfo[], b: FdInfo[]): ProcessMetaDiff['fds'] {
  const before = new Map(a.map((f) => [f.fd, f]));
  const after = new Map(b.map((f) => [f.fd, f]));
  const opened: FdRef[] = [];
  const closed: FdRef[] = [];
  const changed: FdChange[] = [];
  for (const [fd, x] of before) {
    const y = after.get(fd);
    if (!y) {
      closed.push(fdRef(x));
      continue;
    }
    // Another file behind the same number: closed and opened again.
    if (x.type !== y.type || x.path !== y.path || (x.inode !== null && y.inode !== null && x.inode !== y.inode)) {
      closed.push(fdRef(x));
      opened.push(fdRef(y));
      continue;
    }
    const changes = fieldChanges(x, y, FD_FIELDS);
    if (changes.length) changed.push({ fd, path: y.path, changes });
  }
  for (const [fd, y] of after) if (!before.has(fd)) opened.push(fdRef(y));
  opened.sort((p, q) => p.fd - q.fd);
  return { opened, closed, changed };
}

function envMap(environ: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of environ) {
    const eq = entry.indexOf('=');
    map.set(eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? '' : entry.slice(eq + 1));
  }
  return map;
}

function diffEnv(a: string[], b: string[]): EnvChange {
  const x = envMap(a);
  const y = envMap(b);
  const out: EnvChange = { added: [], removed: [], changed: [] };
  for (const [name, value] of x) {
    const other = y.get(name);
    if (other === undefined) out.removed.push(name);
    else if (other !== value) out.changed.push({ name, from: value, to: other });
  }
  for (const name of y.keys()) if (!x.has(name)) out.added.push(name);
  return out;
}

/** Metadata differences of one process present in both images. */
export function diffProcessMeta(a: ProcessInfo, b: ProcessInfo): ProcessMetaDiff {
  return {
    pid: b.pid,
    comm: b.comm,
    fields: fieldChanges(a, b, PROCESS_FIELDS),
    threads: diffThreads(a.threads, b.threads),
    vmas: diffVmas(a.vmas, b.vmas),
    fds: diffFds(a.fds, b.fds),
    environ: diffEnv(a.environ, b.environ),
  };
}

/** Whether a metadata diff has any change. */
export function metaChanged(d: ProcessMetaDiff): boolean {
  return d.fields.length > 0 || d.threads.added.length + d.threads.removed.length + d.threads.changed.length > 0 ||
    d.vmas.added.length + d.vmas.removed.length + d.vmas.changed.length > 0 ||
    d.fds.opened.length + d.fds.closed.length + d.fds.changed.length > 0 ||
    d.environ.added.length + d.environ.removed.length + d.environ.changed.length > 0;
}
