// What diff mode needs from a differ, and the one it uses: the project's diffImages() (src/diff),
// adapted to the page's DiffResult. Another differ can take its place behind ImageDiffer.
import type { CryoImage } from '../core/reader.js';
import { diffImages, type FieldChange as CoreFieldChange, type ImageDiff } from '../diff/index.js';
import type { DiffResult, FieldChange, ProcessDiff } from './protocol.js';

export interface ImageDiffer {
  readonly name: string;
  diff(before: CryoImage, after: CryoImage, progress: (done: number, total: number) => void,
    cancelled: () => boolean): Promise<DiffResult>;
}

/** Changed page addresses listed in the whole result (counts are always exact). */
export const PAGE_LIMIT = 200_000;

/** A value as the page shows it. */
export function show(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'bigint') return '0x' + value.toString(16);
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (Array.isArray(value)) return value.map(show).join(' ');
  if (typeof value === 'object') {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v instanceof Uint8Array ? `${v.length} bytes` : v));
  }
  return String(value);
}

const change = (c: CoreFieldChange): FieldChange => ({ field: c.field, before: show(c.from), after: show(c.to) });

/** diffImages() (src/diff): metadata, and memory compared page by page in the Wasm core. */
export class CoreDiffer implements ImageDiffer {
  readonly name = 'diffImages';

  async diff(before: CryoImage, after: CryoImage, progress: (done: number, total: number) => void,
    cancelled: () => boolean): Promise<DiffResult> {
    const d = await diffImages(before, after, { maxPages: PAGE_LIMIT, onProgress: progress, cancelled });
    return { engine: this.name, processes: toProcesses(d), pageLimit: PAGE_LIMIT };
  }
}

function empty(pid: number, status: ProcessDiff['status']): ProcessDiff {
  return { pid, status, fields: [], fds: [], vmas: [], threads: [], changedPages: [], changedPageCount: 0, comparedPages: 0, addedPages: 0, removedPages: 0 };
}

export function toProcesses(d: ImageDiff): ProcessDiff[] {
  const out: ProcessDiff[] = [
    ...d.processes.added.map((p) => empty(p.pid, 'added')),
    ...d.processes.removed.map((p) => empty(p.pid, 'removed')),
    ...d.processes.unchanged.map((pid) => empty(pid, 'same')),
  ];
  for (const p of d.processes.changed) {
    const x = empty(p.pid, 'changed');
    x.fields = [
      ...p.fields.map(change),
      ...p.environ.added.map((e) => ({ field: 'environment', before: '—', after: e })),
      ...p.environ.removed.map((e) => ({ field: 'environment', before: e, after: '—' })),
      ...p.environ.changed.map((e) => ({ field: `environment ${e.name}`, before: e.from, after: e.to })),
    ];
    x.fds = [
      ...p.fds.changed.map((f) => ({ fd: f.fd, status: 'changed' as const, changes: f.changes.map(change) })),
      ...p.fds.opened.map((f) => ({ fd: f.fd, status: 'added' as const, changes: [{ field: 'path', before: '—', after: show(f.path) }] })),
      ...p.fds.closed.map((f) => ({ fd: f.fd, status: 'removed' as const, changes: [{ field: 'path', before: show(f.path), after: '—' }] })),
    ].sort((a, b) => a.fd - b.fd);
    x.vmas = [
      ...p.vmas.changed.map((v) => ({ start: v.to.start, end: v.to.end, name: v.to.name, status: 'changed' as const, changes: v.changes.map(change) })),
      ...p.vmas.added.map((v) => ({ start: v.start, end: v.end, name: v.name, status: 'added' as const, changes: [] })),
      ...p.vmas.removed.map((v) => ({ start: v.start, end: v.end, name: v.name, status: 'removed' as const, changes: [] })),
    ].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    x.threads = [
      ...p.threads.changed.map((t) => ({
        tid: t.tid, status: 'changed' as const,
        changes: [...t.registers.map((r) => ({ field: r.name, before: show(r.from), after: show(r.to) })), ...t.changes.map(change)],
      })),
      ...p.threads.added.map((tid) => ({ tid, status: 'added' as const, changes: [] })),
      ...p.threads.removed.map((tid) => ({ tid, status: 'removed' as const, changes: [] })),
    ];
    x.changedPages = p.memory.regions.flatMap((r) => r.changedPages).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    x.changedPageCount = p.memory.pagesChanged;
    x.comparedPages = p.memory.pagesCompared;
    x.addedPages = p.memory.pagesAdded;
    x.removedPages = p.memory.pagesRemoved;
    out.push(x);
  }
  return out.sort((a, b) => a.pid - b.pid);
}
