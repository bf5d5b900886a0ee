// The viewer's heavy work: opening images, reading memory, rasters of the address space, search and
// diff. Runs in a Web Worker (worker.ts); nothing here touches the DOM.
import { BlobSource, BytesSource, CountingSource, type ByteSource } from '../core/byte-source.js';
import { MemorySink, ImageWriter } from '../core/writer.js';
import { convertToCryo } from '../convert/index.js';
import { detectContainer, openCriuArchive } from '../criu/source.js';
import { openCriuImage } from '../criu/model.js';
import { CryoFormatError } from '../core/errors.js';
import { PAGE_SIZE } from '../core/format.js';
import { PageKind, type ProcessInfo } from '../core/model.js';
import { openImage, type CryoImage } from '../core/reader.js';
import type { CryoWasm } from '../core/wasm.js';
import { engineDecoder, linkImage, pagesOf, parentRef } from '../codec/pages.js';
import { CoreDiffer, type ImageDiffer } from './differ.js';
import { HttpRangeSource } from './http-source.js';
import { ReadAheadSource } from './read-ahead.js';
import {
  CELL_CHANGED, CELL_DATA, CELL_DEDUP, CELL_NONE, CELL_PARENT, CELL_ZERO,
  type DiffResult, type ErrorInfo, type ImageSummary, type MemoryResult, type SearchHit, type SearchProgress,
  type SourceSpec, type ViewProcess,
} from './protocol.js';

const PAGE = BigInt(PAGE_SIZE);
/** Bytes read per search step. */
const SEARCH_CHUNK = 4 << 20;
/** Read-ahead block while searching or diffing (a few big reads beat many small ones). */
const SCAN_BLOCK = 16 << 20;
/** Largest read the hex view may ask for. */
const MAX_READ = 1 << 20;

interface Slot {
  image: CryoImage;
  counter: CountingSource;
  ahead: ReadAheadSource;
  name: string;
  /** Per pid: dedup flags (see dedupFlags), computed once. */
  dedup: Map<number, Uint8Array>;
  /** Incremental image whose parent is not (yet) linked: why its PARENT/DELTA pages cannot be read. */
  note: string | null;
}

export function errorInfo(error: unknown): ErrorInfo {
  if (error instanceof CryoFormatError) {
    const info: ErrorInfo = { name: error.name, message: error.message, code: error.code, offset: error.offset };
    if (error.expected !== undefined) info.expected = error.expected;
    if (error.found !== undefined) info.found = error.found;
    return info;
  }
  const e = error as Error;
  return { name: e?.name ?? 'Error', message: e?.message ?? String(error) };
}

export class Engine {
  private readonly slots: (Slot | undefined)[] = [];
  private diffCache: DiffResult | undefined;
  /** Bumped by every diff run, so that a run overtaken by another never fills the cache. */
  private generation = 0;

  constructor(
    private readonly wasm: () => Promise<CryoWasm>,
    private readonly differ: ImageDiffer = new CoreDiffer(),
    /** Bytes scanned per search step (tests make it small to cross chunk boundaries). */
    private readonly searchChunk = SEARCH_CHUNK,
  ) {}

  bytesRead(): number[] {
    return [0, 1].map((i) => this.slots[i]?.counter.bytesRead ?? 0);
  }

  private slot(i: number): Slot {
    const s = this.slots[i];
    if (!s) throw new Error(`no image open in slot ${i}`);
    return s;
  }

  private process(slot: Slot, pid: number): ProcessInfo {
    const p = slot.image.process(pid);
    if (!p) throw new Error(`no process ${pid} in ${slot.name}`);
    return p;
  }

  async open(i: number, spec: SourceSpec): Promise<ImageSummary> {
    const inner = spec.kind === 'blob' ? new BlobSource(spec.blob) : await HttpRangeSource.open(spec.url);
    const counter = new CountingSource(inner, false);
    const converted = await criuArchiveAsCryo(counter, spec.name, await this.wasm());
    const ahead = new ReadAheadSource(converted ?? counter);
    const wasm = await this.wasm();
    // Packed images: PAGEDATA through the codec engine. Incremental ones: linked below.
    const image = await openImage(ahead, wasm, { decoder: engineDecoder(wasm) });
    const slot: Slot = { image, counter, ahead, name: spec.name, dedup: new Map(), note: null };
    this.slots[i] = slot;
    this.diffCache = undefined;
    await this.link();
    return this.summary(slot);
  }

  /** Summaries of every open image (after a second image was opened, links may have changed). */
  summaries(): (ImageSummary | null)[] {
    return [0, 1].map((i) => (this.slots[i] ? this.summary(this.slots[i]!) : null));
  }

  /**
   * Link incremental images to their parent when the other open image is that parent (its digest
   * is checked); otherwise say what is missing. Plain images link to nothing.
   */
  private async link(): Promise<void> {
    for (const [i, slot] of this.slots.entries()) {
      if (!slot || (slot.note === null && this.linked.has(slot.image))) continue;
      const ref = parentRef(slot.image);
      const other = this.slots[1 - i];
      try {
        await linkImage(slot.image, {
          resolveParent: async () => {
            if (!other) throw new Error('open it as the other image (drop both files) to read those pages');
            return other.image;
          },
        });
        slot.note = null;
        this.linked.add(slot.image);
      } catch (error) {
        slot.note = ref ? `Incremental image: pages marked "in parent" come from ${ref.path}, which is not open. ${(error as Error).message}` : (error as Error).message;
      }
    }
  }

  private readonly linked = new WeakSet<CryoImage>();

  close(i: number): void {
    this.slots[i] = undefined;
    this.diffCache = undefined;
  }

  private summary(slot: Slot): ImageSummary {
    const { image } = slot;
    return {
      name: slot.name,
      size: image.source.size,
      version: image.version,
      sectionCount: image.sections.length,
      format: image.meta.format,
      tool: image.meta.tool,
      createdAt: image.meta.createdAt,
      host: image.meta.host,
      rootPid: image.meta.rootPid,
      processes: image.processes.map((p) => this.viewProcess(slot, p)),
      bytesRead: slot.counter.bytesRead,
      reads: slot.counter.reads,
      note: slot.note,
      packed: slot.image.sections.some((x) => x.codec !== 0),
    };
  }

  /** One flag per DATA page of a process's page map, in map order: 1 when its store page is used at a lower address too. */
  private dedupFlags(slot: Slot, p: ProcessInfo): Uint8Array {
    let flags = slot.dedup.get(p.pid);
    if (flags) return flags;
    // One byte per store page: 1 once an address used it. A DATA page whose store page is already
    // used is "deduplicated" (stored once, used twice). Flags are per page of the page map, in order.
    const seen = new Uint8Array(p.storedPageCount);
    const total = p.pageMap.reduce((n, e) => n + (e.kind === PageKind.DATA ? e.pageCount : 0), 0);
    flags = new Uint8Array(total);
    let k = 0;
    for (const e of p.pageMap) {
      if (e.kind !== PageKind.DATA) continue;
      for (let i = 0; i < e.pageCount; i++, k++) {
        const s = e.storeIndex + i;
        if (seen[s]) flags[k] = 1;
        else seen[s] = 1;
      }
    }
    slot.dedup.set(p.pid, flags);
    return flags;
  }

  private viewProcess(slot: Slot, p: ProcessInfo): ViewProcess {
    const dedupFlags = p.storedPageCount < p.pageMap.reduce((n, e) => n + (e.kind === PageKind.DATA ? e.pageCount : 0), 0)
      ? this.dedupFlags(slot, p) : null;
    // Offsets of each DATA entry's first page in the flag array.
    const dataOffsets: number[] = [];
    let acc = 0;
    for (const e of p.pageMap) { dataOffsets.push(acc); if (e.kind === PageKind.DATA) acc += e.pageCount; }
    return {
      pid: p.pid, ppid: p.ppid, pgid: p.pgid, sid: p.sid, comm: p.comm, state: p.state, cmdline: p.cmdline,
      environ: p.environ, exe: p.exe, cwd: p.cwd, root: p.root, umask: p.umask, personality: p.personality,
      creds: p.creds, rlimits: p.rlimits, mm: p.mm, storedPageCount: p.storedPageCount, pageMapEntries: p.pageMap.length,
      threads: p.threads.map(({ raw: _raw, xstate, pending, ...t }) => ({ ...t, xstateBytes: xstate?.length ?? 0, pendingCount: pending.length })),
      fds: p.fds.map(({ raw: _raw, ...f }) => f),
      vmas: p.vmas.map(({ raw: _raw, ...v }) => {
        let dedupPages = 0;
        if (dedupFlags) {
          forEachEntry(p, v.start, v.end, (e, i, from, to) => {
            if (e.kind !== PageKind.DATA) return;
            const base = dataOffsets[i]! + Number((from - e.vaddr) / PAGE);
            const n = Number((to - from) / PAGE);
            for (let j = 0; j < n; j++) dedupPages += dedupFlags[base + j]!;
          });
        }
        return { ...v, dedupPages };
      }),
    };
  }

  /** The first `max` bytes of a blob (pipe contents, deleted files) and its whole length. */
  async blob(i: number, id: number, max: number): Promise<{ bytes: Uint8Array; length: number }> {
    const slot = this.slot(i);
    const length = slot.image.blobLength(id);
    const bytes = await slot.image.readBlob(id);
    return { bytes: bytes.slice(0, Math.min(max, bytes.length)), length };
  }

  async read(i: number, pid: number, address: bigint, length: number): Promise<MemoryResult> {
    const slot = this.slot(i);
    if (length < 0 || length > MAX_READ) throw new RangeError(`read of ${length} bytes refused (at most ${MAX_READ})`);
    this.process(slot, pid);
    const bytes = new Uint8Array(length);
    await (await pagesOf(slot.image)).readInto(pid, address, bytes);
    const firstPage = (address / PAGE) * PAGE;
    const pages = Number((address + BigInt(length) + PAGE - 1n) / PAGE - address / PAGE);
    const pageStates = new Uint8Array(pages);
    for (let k = 0; k < pages; k++) {
      const state = slot.image.pageState(pid, firstPage + BigInt(k) * PAGE);
      pageStates[k] = state === 'data' ? CELL_DATA : state === 'zero' ? CELL_ZERO : CELL_NONE;
    }
    return { bytes, pageStates, firstPage };
  }

  /**
   * A picture of each VMA of a process: `cells[v]` cells for VMA v, cell c covering the pages
   * [c·pages/cells, (c+1)·pages/cells); each cell holds the "most stored" state of its pages, plus
   * CELL_CHANGED when diff is on and one of them changed.
   */
  raster(i: number, pid: number, cells: number[], diff: boolean): Uint8Array[] {
    const slot = this.slot(i);
    const p = this.process(slot, pid);
    const dedupFlags = this.dedupFlags(slot, p);
    const dataOffsets: number[] = [];
    let acc = 0;
    for (const e of p.pageMap) { dataOffsets.push(acc); if (e.kind === PageKind.DATA) acc += e.pageCount; }
    const changed = diff ? this.diffCache?.processes.find((d) => d.pid === pid)?.changedPages ?? [] : [];
    return p.vmas.slice(0, cells.length).map((v, vi) => {
      const n = Math.max(1, Math.min(cells[vi]!, 1 << 20));
      const out = new Uint8Array(n);
      const pages = Number((v.end - v.start) / PAGE);
      if (pages <= 0) return out;
      // Cell c covers pages [c·pages/n, (c+1)·pages/n); the cells meeting [from, to) are
      // floor(from·n/pages) … ceil(to·n/pages) − 1.
      const cellRange = (from: number, to: number): [number, number] =>
        [Math.floor((from * n) / pages), Math.min(n, Math.ceil((to * n) / pages))];
      const mark = (fromPage: number, toPage: number, code: number): void => {
        const [c0, c1] = cellRange(fromPage, toPage);
        for (let c = c0; c < c1; c++) if (out[c]! < code) out[c] = code;
      };
      forEachEntry(p, v.start, v.end, (e, ei, from, to) => {
        const first = Number((from - v.start) / PAGE);
        const count = Number((to - from) / PAGE);
        if (e.kind === PageKind.ZERO) { mark(first, first + count, CELL_ZERO); return; }
        if (e.kind !== PageKind.DATA) { mark(first, first + count, CELL_PARENT); return; }
        const base = dataOffsets[ei]! + Number((from - e.vaddr) / PAGE);
        // Runs of equal dedup flags
        let j = 0;
        while (j < count) {
          const f = dedupFlags[base + j] ?? 0;
          let k = j + 1;
          while (k < count && (dedupFlags[base + k] ?? 0) === f) k++;
          mark(first + j, first + k, f ? CELL_DEDUP : CELL_DATA);
          j = k;
        }
      });
      if (changed.length) {
        let lo = lowerBound(changed, v.start);
        for (; lo < changed.length && changed[lo]! < v.end; lo++) {
          const page = Number((changed[lo]! - v.start) / PAGE);
          const [c0, c1] = cellRange(page, page + 1);
          for (let c = c0; c < c1; c++) out[c] = (out[c]! & ~CELL_CHANGED) | CELL_CHANGED;
        }
      }
      return out;
    });
  }

  /**
   * Search a process's stored memory (DATA and ZERO pages) for `pattern`, a chunk at a time.
   * Matches that span adjacent runs are found; `progress` gets the running totals.
   */
  async search(i: number, pid: number, pattern: Uint8Array, maxHits: number,
    progress: (p: SearchProgress) => void, cancelled: () => boolean): Promise<SearchProgress> {
    const slot = this.slot(i);
    const p = this.process(slot, pid);
    if (pattern.length === 0) throw new Error('empty search pattern');
    // Contiguous stored ranges.
    const ranges: { start: bigint; end: bigint }[] = [];
    for (const e of p.pageMap) {
      const end = e.vaddr + BigInt(e.pageCount) * PAGE;
      const last = ranges[ranges.length - 1];
      if (last && last.end === e.vaddr) last.end = end;
      else ranges.push({ start: e.vaddr, end });
    }
    const total = ranges.reduce((n, r) => n + Number(r.end - r.start), 0);
    const hits: SearchHit[] = [];
    const vmaOf = (a: bigint): number => {
      let lo = 0, hi = p.vmas.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const v = p.vmas[mid]!;
        if (a < v.start) hi = mid - 1; else if (a >= v.end) lo = mid + 1; else return mid;
      }
      return -1;
    };
    const overlap = pattern.length - 1;
    // Chunks of at most SEARCH_CHUNK bytes (plus the pattern's overlap into the next one when the
    // range goes on); the next chunk is read while this one is scanned.
    const chunks: { at: bigint; length: number; extra: number }[] = [];
    for (const r of ranges) {
      for (let at = r.start; at < r.end;) {
        const left = r.end - at;
        const length = Number(left < BigInt(this.searchChunk) ? left : BigInt(this.searchChunk));
        chunks.push({ at, length, extra: Math.min(overlap, Number(left) - length) });
        at += BigInt(length);
      }
    }
    const pages = await pagesOf(slot.image);
    const read = (i: number): Promise<Uint8Array> | null => {
      const c = chunks[i];
      if (!c) return null;
      const bytes = new Uint8Array(c.length + c.extra);
      return pages.readInto(pid, c.at, bytes).then(() => bytes);
    };
    slot.ahead.blockSize = SCAN_BLOCK;
    try {
      return await this.scan(chunks, read, pattern, hits, total, vmaOf, maxHits, progress, cancelled);
    } finally {
      slot.ahead.stop();
    }
  }

  private async scan(chunks: { at: bigint; length: number; extra: number }[], read: (i: number) => Promise<Uint8Array> | null,
    pattern: Uint8Array, hits: SearchHit[], total: number, vmaOf: (a: bigint) => number, maxHits: number,
    progress: (p: SearchProgress) => void, cancelled: () => boolean): Promise<SearchProgress> {
    let scanned = 0;
    let lastReport = 0;
    let next = read(0);
    outer: for (let i = 0; i < chunks.length; i++) {
      const bytes = await next!;
      next = cancelled() ? null : read(i + 1);
      if (!next && i + 1 < chunks.length) break;
      const { at, length } = chunks[i]!;
      for (const offset of findAll(bytes, pattern, length)) {
        hits.push({ address: at + BigInt(offset), vma: vmaOf(at + BigInt(offset)) });
        if (hits.length >= maxHits) break outer;
      }
      scanned += length;
      const now = Date.now();
      if (now - lastReport > 100) {
        lastReport = now;
        progress({ scanned, total, hits: [...hits] });
      }
    }
    await next?.catch(() => undefined);
    return { scanned, total, hits };
  }

  async diff(progress: (done: number, total: number) => void, cancelled: () => boolean): Promise<DiffResult> {
    if (this.diffCache) return this.diffCache;
    const [a, b] = [this.slot(0), this.slot(1)];
    const generation = ++this.generation;
    a.ahead.blockSize = b.ahead.blockSize = SCAN_BLOCK;
    try {
      const result = await this.differ.diff(a.image, b.image, progress, () => cancelled() || this.slots[0] !== a || this.slots[1] !== b);
      if (generation === this.generation && this.slots[0] === a && this.slots[1] === b) this.diffCache = result;
      return result;
    } finally {
      a.ahead.stop();
      b.ahead.stop();
    }
  }
}

/** Entries of the page map intersecting [start, end), clipped: (entry, entry index, from, to). */
function forEachEntry(p: ProcessInfo, start: bigint, end: bigint,
  fn: (e: ProcessInfo['pageMap'][number], index: number, from: bigint, to: bigint) => void): void {
  const map = p.pageMap;
  let lo = 0, hi = map.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const e = map[mid]!;
    if (e.vaddr + BigInt(e.pageCount) * PAGE <= start) lo = mid + 1; else hi = mid;
  }
  for (let i = lo; i < map.length; i++) {
    const e = map[i]!;
    if (e.vaddr >= end) break;
    const eEnd = e.vaddr + BigInt(e.pageCount) * PAGE;
    fn(e, i, e.vaddr > start ? e.vaddr : start, eEnd < end ? eEnd : end);
  }
}

function lowerBound(sorted: bigint[], value: bigint): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < value) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** Offsets below `limit` where `pattern` starts in `bytes`. */
export function* findAll(bytes: Uint8Array, pattern: Uint8Array, limit: number): Generator<number> {
  const first = pattern[0]!;
  let at = bytes.indexOf(first);
  while (at !== -1 && at < limit) {
    let ok = at + pattern.length <= bytes.length;
    for (let k = 1; ok && k < pattern.length; k++) if (bytes[at + k] !== pattern[k]) ok = false;
    if (ok) yield at;
    at = bytes.indexOf(first, at + 1);
  }
}

/**
 * A CRIU container checkpoint archive (tar, tar.gz) opened in the viewer is converted, in this worker,
 * into an in-memory .cryo image, so that every view works on it unchanged. Anything else goes to the
 * .cryo reader as it is (which names what is wrong with it).
 */
async function criuArchiveAsCryo(source: ByteSource, name: string, wasm: CryoWasm): Promise<ByteSource | null> {
  const kind = detectContainer(await source.read(0, Math.min(source.size, 512)));
  if (kind !== 'tar' && kind !== 'gzip' && kind !== 'zstd') return null;
  const checkpoint = await openCriuImage(await openCriuArchive(source, { label: name }));
  const sink = new MemorySink();
  const writer = new ImageWriter(sink, wasm);
  await convertToCryo(checkpoint, writer);
  await writer.finish();
  return new BytesSource(sink.bytes());
}
