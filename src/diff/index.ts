/**
 * `diffImages(a, b)`: what changed between two checkpoints — processes, threads and registers,
 * memory maps, file descriptors, environment — and in memory, per VMA, how many pages changed, were
 * added or removed, which pages, and (on request) the exact byte ranges with their old and new bytes.
 *
 * Environment-neutral (Node, browsers, workers). Memory is compared in the Wasm core (SIMD compare of
 * whole pages, then of bytes for the pages that differ), on pages read into two reused 1 MiB buffers;
 * pages both images record as ZERO are equal without a read. Works on raw, packed and incremental
 * images (pages are read through codecs and parent chains).
 *
 * ```ts
 * const diff = await diffImages(before, after, { bytes: true, onProgress: (done, total) => ... });
 * for (const p of diff.processes.changed) console.log(p.pid, p.memory.pagesChanged);
 * ```
 *
 * @module
 */
import { PAGE_SIZE } from '../core/format.js';
import { PageKind, type CheckpointImage, type PageMapEntry, type ProcessInfo } from '../core/model.js';
import type { CryoImage } from '../core/reader.js';
import type { CryoWasm } from '../core/wasm.js';
import { storedPageMap } from '../convert/index.js';
import { BLOCK_PAGES, WasmEngine } from '../codec/engine.js';
import { firstEntryEndingAfter, pagesOf, type ImagePages } from '../codec/pages.js';
import { diffProcessMeta, metaChanged, pairVmas, protString, type ProcessMetaDiff } from './metadata.js';

export * from './metadata.js';

const PAGE = BigInt(PAGE_SIZE);

/** Options of {@link diffImages}. */
export interface DiffOptions {
  /** Report the changed byte ranges (with old and new bytes). Default false: counts and pages only. */
  bytes?: boolean;
  /** At most this many byte ranges in the whole result (default 1000); counts stay exact. */
  maxRanges?: number;
  /** Bytes of old/new content shown per range (default 32). */
  rangeBytes?: number;
  /** At most this many changed page addresses listed in the whole result (default 100000). */
  maxPages?: number;
  /** Only these PIDs. */
  pids?: number[];
  /** Removed pages remembered (by content hash) to find moved pages (default 65536). */
  maxMoved?: number;
  /** Skip memory (metadata only). */
  metadataOnly?: boolean;
  /** Called after each compared block: pages done and total pages to compare. */
  onProgress?: (done: number, total: number) => void;
  /** Polled between blocks; when it returns true the diff stops with an `AbortError`. */
  cancelled?: () => boolean;
  /** The Wasm core, needed only when neither image is a `.cryo` image (two CRIU checkpoints). */
  wasm?: CryoWasm;
}

/** A `.cryo` image (its pages read through its page stores), or another source such as a CRIU checkpoint. */
const isCryo = (image: CheckpointImage): image is CryoImage => 'sections' in image && 'wasm' in image;

/** Page reads for an image that is not `.cryo` (CRIU): through readMemory. */
function memoryReader(image: CheckpointImage): Pick<ImagePages, 'readInto'> {
  return {
    readInto: async (pid, address, target) => {
      const r = await image.readMemoryDetailed(pid, address, target.length);
      target.set(r.bytes);
      return r.notStored;
    },
  };
}

/** A changed byte range. */
export interface ByteRange {
  address: bigint;
  length: number;
  /** Old and new bytes as hex (the first `rangeBytes` of the range). */
  from: string;
  to: string;
}

/** Memory differences within one VMA (or the union of a VMA's extent in both images). */
export interface RegionDiff {
  start: bigint;
  end: bigint;
  name: string;
  prot: string;
  /** `both`, or `added` / `removed` for a VMA only in the second / first image. */
  presence: 'both' | 'added' | 'removed';
  /** Pages stored in both images. */
  pagesCompared: number;
  /** Of those, pages whose content differs. */
  pagesChanged: number;
  /** Pages stored in the second image only. */
  pagesAdded: number;
  /** Pages stored in the first image only. */
  pagesRemoved: number;
  /** Bytes that differ in the changed pages. */
  bytesChanged: number;
  /** Addresses of the changed pages (up to maxPages over the whole diff). */
  changedPages: bigint[];
  /** With `bytes`: the changed byte ranges (up to maxRanges over the whole diff). */
  ranges: ByteRange[];
}

/** Pages that only the first image has at `from` and only the second at `to`, with the same content. */
export interface MovedPages {
  from: bigint;
  to: bigint;
  pages: number;
}

export interface MemoryDiff {
  /**
   * Added pages whose content is that of a removed page (memory moved by mremap, realloc, a
   * compacting allocator): found by XXH64 content hash, confirmed byte for byte. Consecutive pages
   * moved by the same distance are one entry. At most `maxMoved` removed pages are remembered.
   */
  moved: MovedPages[];
  pagesCompared: number;
  pagesChanged: number;
  pagesAdded: number;
  pagesRemoved: number;
  bytesChanged: number;
  /** Regions with any change, ascending addresses. */
  regions: RegionDiff[];
}

export interface ProcessDiff extends ProcessMetaDiff {
  memory: MemoryDiff;
}

export interface ProcessSummary {
  pid: number;
  comm: string | null;
  cmdline: string[];
}

export interface ImageDiff {
  processes: {
    added: ProcessSummary[];
    removed: ProcessSummary[];
    /** Processes in both images with any change (metadata or memory). */
    changed: ProcessDiff[];
    /** PIDs in both images without any change. */
    unchanged: number[];
  };
  totals: { pagesCompared: number; pagesChanged: number; pagesAdded: number; pagesRemoved: number; bytesChanged: number };
  /** Whether page or range lists were cut at their limits (counts are always exact). */
  truncated: boolean;
}

/** One stretch of addresses with the same storage in both images. */
interface Segment {
  start: bigint;
  pages: number;
  a: number | null;
  b: number | null;
}

function summary(p: ProcessInfo): ProcessSummary {
  return { pid: p.pid, comm: p.comm, cmdline: p.cmdline };
}

/** The page-map runs of `entries` clipped to [start, end). */
function clip(entries: readonly PageMapEntry[], start: bigint, end: bigint): { start: bigint; end: bigint; kind: number }[] {
  const out: { start: bigint; end: bigint; kind: number }[] = [];
  for (let i = firstEntryEndingAfter(entries, start); i < entries.length; i++) {
    const e = entries[i]!;
    if (e.vaddr >= end) break;
    const s = e.vaddr > start ? e.vaddr : start;
    const eEnd = e.vaddr + BigInt(e.pageCount) * PAGE;
    out.push({ start: s, end: eEnd < end ? eEnd : end, kind: e.kind });
  }
  return out;
}

/** Segments of [start, end) by what each image stores there. */
function segments(a: readonly PageMapEntry[], b: readonly PageMapEntry[], start: bigint, end: bigint): Segment[] {
  const ra = clip(a, start, end);
  const rb = clip(b, start, end);
  const out: Segment[] = [];
  let i = 0;
  let j = 0;
  let at = start;
  while (at < end && (i < ra.length || j < rb.length)) {
    while (i < ra.length && ra[i]!.end <= at) i++;
    while (j < rb.length && rb[j]!.end <= at) j++;
    const x = ra[i];
    const y = rb[j];
    if (!x && !y) break;
    const inA = x !== undefined && x.start <= at;
    const inB = y !== undefined && y.start <= at;
    let next = end;
    if (x) next = inA ? (x.end < next ? x.end : next) : (x.start < next ? x.start : next);
    if (y) next = inB ? (y.end < next ? y.end : next) : (y.start < next ? y.start : next);
    if (inA || inB) out.push({ start: at, pages: Number((next - at) / PAGE), a: inA ? x!.kind : null, b: inB ? y!.kind : null });
    at = next;
  }
  return out;
}

const toHexBytes = (bytes: Uint8Array): string => {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
};

class AbortError extends Error {
  override name = 'AbortError';
}

const storedMaps = new WeakMap<ProcessInfo, Promise<PageMapEntry[]>>();

/** The page map compared: a `.cryo` image's own; for CRIU, with the shared-memory pages it maps (as `convert` writes it). */
function pageMapOf(image: CheckpointImage, p: ProcessInfo): Promise<PageMapEntry[]> | PageMapEntry[] {
  if (isCryo(image)) return p.pageMap;
  let m = storedMaps.get(p);
  if (!m) storedMaps.set(p, (m = storedPageMap(image, p)));
  return m;
}

function wasmOf(a: CheckpointImage, b: CheckpointImage, options: DiffOptions): CryoWasm {
  const wasm = isCryo(a) ? a.wasm : isCryo(b) ? b.wasm : options.wasm;
  if (!wasm) throw new Error('diffImages: two images that are not .cryo images need options.wasm');
  return wasm;
}

/**
 * Compare two images. Processes are matched by PID, VMAs by address (see {@link pairVmas}), pages by
 * address. A page is "compared" when both images store it (DATA, ZERO, or through a parent), "added"
 * when only the second does, "removed" when only the first does.
 */
export async function diffImages(a: CheckpointImage, b: CheckpointImage, options: DiffOptions = {}): Promise<ImageDiff> {
  const maxRanges = options.maxRanges ?? 1000;
  const maxPages = options.maxPages ?? 100_000;
  const rangeBytes = options.rangeBytes ?? 32;
  const wanted = (pid: number) => !options.pids || options.pids.length === 0 || options.pids.includes(pid);
  const result: ImageDiff = {
    processes: { added: [], removed: [], changed: [], unchanged: [] },
    totals: { pagesCompared: 0, pagesChanged: 0, pagesAdded: 0, pagesRemoved: 0, bytesChanged: 0 },
    truncated: false,
  };
  for (const p of b.processes) if (wanted(p.pid) && !a.process(p.pid)) result.processes.added.push(summary(p));
  for (const p of a.processes) if (wanted(p.pid) && !b.process(p.pid)) result.processes.removed.push(summary(p));

  // Plan: per process, its regions and their segments (metadata only), so progress has a total.
  interface Plan { pa: ProcessInfo; pb: ProcessInfo; meta: ProcessMetaDiff; regions: { region: RegionDiff; segs: Segment[] }[] }
  const plans: Plan[] = [];
  let total = 0;
  for (const pb of b.processes) {
    const pa = a.process(pb.pid);
    if (!pa || !wanted(pb.pid)) continue;
    const meta = diffProcessMeta(pa, pb);
    const regions: Plan['regions'] = [];
    if (!options.metadataOnly) {
      const { pairs, removed, added } = pairVmas(pa.vmas, pb.vmas);
      const spans: { start: bigint; end: bigint; name: string; prot: string; presence: RegionDiff['presence'] }[] = [
        ...pairs.map(([x, y]) => ({ start: x.start < y.start ? x.start : y.start, end: x.end > y.end ? x.end : y.end, name: y.name, prot: protString(y), presence: 'both' as const })),
        ...removed.map((x) => ({ start: x.start, end: x.end, name: x.name, prot: protString(x), presence: 'removed' as const })),
        ...added.map((y) => ({ start: y.start, end: y.end, name: y.name, prot: protString(y), presence: 'added' as const })),
      ].sort((p, q) => (p.start < q.start ? -1 : p.start > q.start ? 1 : 0));
      let covered = 0n;
      for (const span of spans) {
        const start = span.start > covered ? span.start : covered; // pairs may overlap after a resize
        if (start >= span.end) continue;
        covered = span.end;
        const segs = segments(span.presence === 'added' ? [] : await pageMapOf(a, pa), span.presence === 'removed' ? [] : await pageMapOf(b, pb), start, span.end);
        for (const s of segs) if (s.a !== null && s.b !== null && !(s.a === PageKind.ZERO && s.b === PageKind.ZERO)) total += s.pages;
        regions.push({
          region: {
            start: span.start, end: span.end, name: span.name, prot: span.prot, presence: span.presence,
            pagesCompared: 0, pagesChanged: 0, pagesAdded: 0, pagesRemoved: 0, bytesChanged: 0, changedPages: [], ranges: [],
          },
          segs,
        });
      }
    }
    plans.push({ pa, pb, meta, regions });
  }

  let engine: WasmEngine | null = null;
  let engine2: WasmEngine | null = null;
  let pagesA: Pick<ImagePages, 'readInto'> | null = null;
  let pagesB: Pick<ImagePages, 'readInto'> | null = null;
  let done = 0;
  let listedPages = 0;
  let listedRanges = 0;
  for (const plan of plans) {
    const memory: MemoryDiff = { moved: [], pagesCompared: 0, pagesChanged: 0, pagesAdded: 0, pagesRemoved: 0, bytesChanged: 0, regions: [] };
    const pid = plan.pb.pid;
    if (!options.metadataOnly) {
      engine ??= await WasmEngine.create(wasmOf(a, b, options).module);
      pagesA ??= isCryo(a) ? await pagesOf(a) : memoryReader(a);
      pagesB ??= isCryo(b) ? await pagesOf(b) : memoryReader(b);
      memory.moved = await movedPages(plan.regions.flatMap((r) => r.segs), pid, engine, pagesA, pagesB, options.maxMoved ?? 65536);
    }
    for (const { region, segs } of plan.regions) {
      for (const seg of segs) {
        if (seg.a === null) {
          region.pagesAdded += seg.pages;
          continue;
        }
        if (seg.b === null) {
          region.pagesRemoved += seg.pages;
          continue;
        }
        region.pagesCompared += seg.pages;
        if (seg.a === PageKind.ZERO && seg.b === PageKind.ZERO) continue;
        engine ??= await WasmEngine.create(wasmOf(a, b, options).module);
        pagesA ??= isCryo(a) ? await pagesOf(a) : memoryReader(a);
        pagesB ??= isCryo(b) ? await pagesOf(b) : memoryReader(b);
        engine2 ??= await WasmEngine.create(wasmOf(a, b, options).module);
        // Blocks end on A's 1 MiB section boundaries (one read per image per block), and the next
        // block is read into the second engine while this one is compared.
        const chunks: { first: number; n: number }[] = [];
        for (let first = 0, n = Math.min(firstBlock(plan.pa.pageMap, seg.start), seg.pages); first < seg.pages; first += n, n = Math.min(BLOCK_PAGES, seg.pages - first)) {
          chunks.push({ first, n });
        }
        const readChunk = (c: { first: number; n: number }, e: WasmEngine) => {
          const address = seg.start + BigInt(c.first) * PAGE;
          return Promise.all([
            pagesA!.readInto(pid, address, e.a.subarray(0, c.n * PAGE_SIZE)),
            pagesB!.readInto(pid, address, e.b.subarray(0, c.n * PAGE_SIZE)),
          ]);
        };
        let pending: Promise<unknown> = readChunk(chunks[0]!, engine);
        for (let index = 0; index < chunks.length; index++) {
          if (options.cancelled?.()) {
            await pending.catch(() => undefined);
            throw new AbortError('diff cancelled');
          }
          const { first, n } = chunks[index]!;
          const current = index % 2 === 0 ? engine : engine2;
          await pending;
          if (index + 1 < chunks.length) pending = readChunk(chunks[index + 1]!, index % 2 === 0 ? engine2 : engine);
          const address = seg.start + BigInt(first) * PAGE;
          const { changed, flags } = current.comparePages(n);
          if (changed > 0) {
            const changedPages: number[] = [];
            for (let k = 0; k < n; k++) if (flags[k]) changedPages.push(k);
            for (const k of changedPages) {
              const pageAddress = address + BigInt(k) * PAGE;
              region.pagesChanged++;
              if (listedPages < maxPages) {
                region.changedPages.push(pageAddress);
                listedPages++;
              } else result.truncated = true;
              const room = options.bytes ? Math.max(0, maxRanges - listedRanges) : 0;
              const d = current.diffRanges(k, Math.max(room, 1));
              region.bytesChanged += d.bytes;
              if (options.bytes) {
                if (d.total > room) result.truncated = true;
                for (const [s, e] of d.ranges.slice(0, room)) {
                  const last = region.ranges[region.ranges.length - 1];
                  const at = pageAddress + BigInt(s);
                  const o = k * PAGE_SIZE + s;
                  const shown = Math.min(e - s, rangeBytes);
                  if (last && s === 0 && last.address + BigInt(last.length) === at) {
                    last.length += e - s; // continues across the page boundary
                    continue;
                  }
                  region.ranges.push({
                    address: at, length: e - s,
                    from: toHexBytes(current.a.subarray(o, o + shown)), to: toHexBytes(current.b.subarray(o, o + shown)),
                  });
                  listedRanges++;
                }
              }
            }
          }
          done += n;
          options.onProgress?.(done, total);
        }
      }
      memory.pagesCompared += region.pagesCompared;
      memory.pagesChanged += region.pagesChanged;
      memory.pagesAdded += region.pagesAdded;
      memory.pagesRemoved += region.pagesRemoved;
      memory.bytesChanged += region.bytesChanged;
      if (region.pagesChanged || region.pagesAdded || region.pagesRemoved) memory.regions.push(region);
    }
    for (const key of ['pagesCompared', 'pagesChanged', 'pagesAdded', 'pagesRemoved', 'bytesChanged'] as const) result.totals[key] += memory[key];
    if (metaChanged(plan.meta) || memory.regions.length > 0 || memory.moved.length > 0) result.processes.changed.push({ ...plan.meta, memory });
    else result.processes.unchanged.push(pid);
  }
  options.onProgress?.(total, total);
  return result;
}

/**
 * The diff as plain JSON values (schema `cryo-img.diff/1`, docs/CLI.md): addresses and 64-bit values
 * as `"0x…"` strings, byte arrays as hex.
 */
export function diffToJson(diff: ImageDiff, images?: { a: string; b: string }): unknown {
  const convert = (value: unknown): unknown => {
    if (typeof value === 'bigint') return '0x' + value.toString(16);
    if (value instanceof Uint8Array) return toHexBytes(value);
    if (Array.isArray(value)) return value.map(convert);
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) if (k !== 'raw') out[k] = convert(v);
      return out;
    }
    return value === undefined ? null : value;
  };
  return { schema: 'cryo-img.diff/1', ...(images ? { images } : {}), ...(convert(diff) as object) };
}

/**
 * Pages only in A (removed) and only in B (added) with the same content: hash the removed pages
 * (XXH64 in the Wasm core, up to `limit` of them), look each added page up, confirm byte for byte.
 */
async function movedPages(segs: Segment[], pid: number, engine: WasmEngine, pagesA: Pick<ImagePages, 'readInto'>, pagesB: Pick<ImagePages, 'readInto'>, limit: number): Promise<MovedPages[]> {
  const removed = segs.filter((s) => s.a !== null && s.b === null && s.a !== PageKind.ZERO);
  const added = segs.filter((s) => s.a === null && s.b !== null && s.b !== PageKind.ZERO);
  if (removed.length === 0 || added.length === 0) return [];
  const byHash = new Map<bigint, bigint>();
  for (const seg of removed) {
    for (let first = 0; first < seg.pages && byHash.size < limit; first += BLOCK_PAGES) {
      const n = Math.min(BLOCK_PAGES, seg.pages - first, limit - byHash.size);
      const address = seg.start + BigInt(first) * PAGE;
      await pagesA.readInto(pid, address, engine.a.subarray(0, n * PAGE_SIZE));
      const hashes = engine.hashPagesA(n);
      for (let i = 0; i < n; i++) if (hashes[i] !== 0n && !byHash.has(hashes[i]!)) byHash.set(hashes[i]!, address + BigInt(i) * PAGE);
    }
  }
  const moved: MovedPages[] = [];
  const page = new Uint8Array(PAGE_SIZE);
  for (const seg of added) {
    for (let first = 0; first < seg.pages; first += BLOCK_PAGES) {
      const n = Math.min(BLOCK_PAGES, seg.pages - first);
      const address = seg.start + BigInt(first) * PAGE;
      await pagesB.readInto(pid, address, engine.a.subarray(0, n * PAGE_SIZE));
      const hashes = engine.hashPagesA(n).slice();
      for (let i = 0; i < n; i++) {
        const from = hashes[i] === 0n ? undefined : byHash.get(hashes[i]!);
        if (from === undefined) continue;
        await pagesA.readInto(pid, from, page);
        const o = i * PAGE_SIZE;
        let same = true;
        for (let k = 0; k < PAGE_SIZE; k++) if (page[k] !== engine.a[o + k]) { same = false; break; }
        if (!same) continue;
        const to = address + BigInt(i) * PAGE;
        const last = moved[moved.length - 1];
        if (last && last.to + BigInt(last.pages) * PAGE === to && last.from + BigInt(last.pages) * PAGE === from) last.pages++;
        else moved.push({ from, to, pages: 1 });
      }
    }
  }
  return moved;
}

/** Pages from `address` to the end of A's 1 MiB PAGEDATA section holding it (BLOCK_PAGES if unknown). */
function firstBlock(entries: readonly PageMapEntry[], address: bigint): number {
  const e = entries[firstEntryEndingAfter(entries, address)];
  if (!e || e.vaddr > address || e.kind !== PageKind.DATA) return BLOCK_PAGES;
  const store = e.storeIndex + Number((address - e.vaddr) / PAGE);
  return BLOCK_PAGES - (store % BLOCK_PAGES);
}
