// What diff mode needs from a differ, and a simple page-by-page one. The interface is small so that
// the project's diffImages() (src/diff/, issue 5) can take its place: write an adapter that returns
// a DiffResult.
import type { CryoImage } from '../core/reader.js';
import { PAGE_SIZE } from '../core/format.js';
import { PageKind, type FdInfo, type ProcessInfo, type ThreadInfo, type VmaInfo } from '../core/model.js';
import type { ChangeStatus, DiffResult, FieldChange, ProcessDiff } from './protocol.js';

export interface ImageDiffer {
  readonly name: string;
  diff(before: CryoImage, after: CryoImage, progress: (done: number, total: number) => void,
    cancelled: () => boolean): Promise<DiffResult>;
}

const PAGE = BigInt(PAGE_SIZE);
/** Changed page addresses kept per process (the count is always exact). */
export const PAGE_LIMIT = 200_000;
/** Pages compared per read. */
const CHUNK_PAGES = 256;

function show(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'bigint') return '0x' + value.toString(16);
  if (Array.isArray(value)) return value.map(show).join(' ');
  if (typeof value === 'object') return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v));
  return String(value);
}

function compareFields<T extends object>(a: T, b: T, fields: (keyof T)[]): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const field of fields) {
    const before = show(a[field]);
    const after = show(b[field]);
    if (before !== after) changes.push({ field: String(field), before, after });
  }
  return changes;
}

const PROCESS_FIELDS: (keyof ProcessInfo)[] = ['ppid', 'pgid', 'sid', 'comm', 'state', 'cmdline', 'exe', 'cwd', 'root', 'umask'];
const FD_FIELDS: (keyof FdInfo)[] = ['type', 'path', 'flags', 'cloexec', 'pos', 'size', 'deleted', 'pipe', 'socket'];
const VMA_FIELDS: (keyof VmaInfo)[] = ['end', 'prot', 'shared', 'offset', 'name', 'kind', 'pagesStored', 'zeroPages'];
const THREAD_FIELDS: (keyof ThreadInfo)[] = ['comm', 'state', 'restart', 'sigmask'];

function keyed<T, K>(before: T[], after: T[], key: (x: T) => K, fields: (keyof T)[]):
  { key: K; status: ChangeStatus; changes: FieldChange[]; item: T }[] {
  const out: { key: K; status: ChangeStatus; changes: FieldChange[]; item: T }[] = [];
  const b = new Map(after.map((x) => [key(x), x]));
  const a = new Map(before.map((x) => [key(x), x]));
  for (const [k, x] of a) {
    const y = b.get(k);
    if (!y) out.push({ key: k, status: 'removed', changes: [], item: x });
    else {
      const changes = compareFields(x as object, y as object, fields as never[]);
      if (changes.length) out.push({ key: k, status: 'changed', changes, item: y });
    }
  }
  for (const [k, y] of b) if (!a.has(k)) out.push({ key: k, status: 'added', changes: [], item: y });
  return out;
}

/** Stored state of each page: for a page map, the runs as [start, end, kind] sorted. */
function runs(p: ProcessInfo | undefined): { start: bigint; end: bigint }[] {
  if (!p) return [];
  return p.pageMap.map((e) => ({ start: e.vaddr, end: e.vaddr + BigInt(e.pageCount) * PAGE }));
}

/** Union of two sorted, non-overlapping range lists, merged. */
function union(a: { start: bigint; end: bigint }[], b: { start: bigint; end: bigint }[]): { start: bigint; end: bigint }[] {
  const all = [...a, ...b].sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
  const out: { start: bigint; end: bigint }[] = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) { if (r.end > last.end) last.end = r.end; } else out.push({ ...r });
  }
  return out;
}

/** Page-by-page: every page either image stores is read from both and compared. */
export class PageByPageDiffer implements ImageDiffer {
  readonly name = 'page-by-page';

  async diff(before: CryoImage, after: CryoImage, progress: (done: number, total: number) => void,
    cancelled: () => boolean): Promise<DiffResult> {
    const pids = [...new Set([...before.processes.map((p) => p.pid), ...after.processes.map((p) => p.pid)])];
    const plans = pids.map((pid) => ({ pid, ranges: union(runs(before.process(pid)), runs(after.process(pid))) }));
    const total = plans.reduce((n, p) => n + p.ranges.reduce((m, r) => m + Number((r.end - r.start) / PAGE), 0), 0);
    let done = 0;
    const processes: ProcessDiff[] = [];
    for (const { pid, ranges } of plans) {
      const a = before.process(pid);
      const b = after.process(pid);
      const result: ProcessDiff = {
        pid, status: 'same', fields: [], fds: [], vmas: [], threads: [], changedPages: [], changedPageCount: 0, comparedPages: 0,
      };
      processes.push(result);
      if (!a || !b) {
        result.status = a ? 'removed' : 'added';
        continue;
      }
      result.fields = compareFields(a, b, PROCESS_FIELDS);
      result.fds = keyed(a.fds, b.fds, (f) => f.fd, FD_FIELDS).map((x) => ({ fd: x.key, status: x.status, changes: x.changes }));
      result.vmas = keyed(a.vmas, b.vmas, (v) => v.start, VMA_FIELDS)
        .map((x) => ({ start: x.key, end: x.item.end, name: x.item.name, status: x.status, changes: x.changes }));
      result.threads = keyed(a.threads, b.threads, (t) => t.tid, THREAD_FIELDS)
        .map((x) => ({ tid: x.key, status: x.status, changes: x.changes }));
      for (const range of ranges) {
        for (let at = range.start; at < range.end;) {
          if (cancelled()) throw new Error('cancelled');
          const pages = Math.min(CHUNK_PAGES, Number((range.end - at) / PAGE));
          const length = pages * PAGE_SIZE;
          const [x, y] = await Promise.all([before.readMemoryDetailed(pid, at, length), after.readMemoryDetailed(pid, at, length)]);
          for (let i = 0; i < pages; i++) {
            const page = at + BigInt(i) * PAGE;
            let differs = before.pageState(pid, page) !== after.pageState(pid, page) &&
              (before.pageState(pid, page) === 'not-stored' || after.pageState(pid, page) === 'not-stored');
            if (!differs) {
              const o = i * PAGE_SIZE;
              for (let j = o; j < o + PAGE_SIZE; j++) if (x.bytes[j] !== y.bytes[j]) { differs = true; break; }
            }
            if (differs) {
              result.changedPageCount++;
              if (result.changedPages.length < PAGE_LIMIT) result.changedPages.push(page);
            }
          }
          result.comparedPages += pages;
          done += pages;
          progress(done, total);
          at += BigInt(pages) * PAGE;
        }
      }
      if (result.fields.length || result.fds.length || result.vmas.length || result.threads.length || result.changedPageCount) {
        result.status = 'changed';
      }
    }
    return { engine: this.name, processes, pageLimit: PAGE_LIMIT };
  }
}

export { PageKind };
