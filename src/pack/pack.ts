/**
 * Packing images (FORMAT §3.1, §5.4): {@link packImage} reads every page of an image (raw, packed or
 * incremental, through its parent chain) in address order, in blocks of up to 256 pages read into one
 * reused buffer of the Wasm engine, and sorts each page:
 *
 * - all zeros → a ZERO run (no bytes);
 * - with a parent: identical to the parent's page at the same address → PARENT (no bytes); differing
 *   in at most `deltaLimit` bytes → DELTA, the store page holding page XOR parent page (mostly zeros,
 *   which the codec shrinks to a few bytes);
 * - a page identical to one already stored (XXH64, then checked byte for byte against the input) → a
 *   DATA run pointing at that store page;
 * - otherwise a new store page.
 *
 * New store pages are gathered into 1 MiB PAGEDATA sections, each encoded independently (LZ4 block,
 * with the u64 delta filter when it measures smaller) by a {@link BlockEncoder} — in workers on Node —
 * and written in order. A process's PAGEMAP is written after its PAGEDATA (it is known only then).
 * Memory stays bounded: a few 1 MiB blocks in flight, the run list, and the dedup table.
 *
 * Environment-neutral.
 *
 * @module
 */
import { PAGE_SIZE, SectionType, type SectionInfo } from '../core/format.js';
import { PageKind, type RawMap } from '../core/model.js';
import type { CryoImage } from '../core/reader.js';
import { encodeMetadata, type ImageWriter } from '../core/writer.js';
import { BLOCK_PAGES, codecLevel, DEFAULT_LEVEL, ENGINE_BLOCK, WasmEngine, type CodecLevel } from '../codec/engine.js';
import { imageDigest, pagesOf } from '../codec/pages.js';
import { InlineEncoder, OrderedSections, type BlockEncoder } from './encoder.js';
import { DedupTable, RunBuilder } from './runs.js';

const PAGE = BigInt(PAGE_SIZE);

export interface PackOptions {
  /** Codec level 1 (fastest) … 9, default 3. */
  level?: number;
  /** Make an incremental image against this parent (pages equal to the parent's are not stored). */
  parent?: CryoImage | null;
  /** The parent's path as recorded in the output (relative to the output's directory). */
  parentPath?: string;
  /** Encodes PAGEDATA payloads (default: in this thread). */
  encoder?: BlockEncoder;
  /** Store identical pages once (default true). */
  dedup?: boolean;
  /** A changed page differing from its parent page in at most this many bytes is stored as a DELTA (default 2048). */
  deltaLimit?: number;
  /** Pages done and total. */
  onProgress?: (done: number, total: number) => void;
}

/** What a pack did, by page. */
export interface PackStats {
  pages: number;
  zero: number;
  parent: number;
  delta: number;
  dedup: number;
  stored: number;
  /** Bytes of PAGEDATA before and after encoding. */
  pageDataRaw: number;
  pageDataStored: number;
}

function samePage(a: Uint8Array, aOffset: number, b: Uint8Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset + aOffset, PAGE_SIZE / 4);
  const y = new Uint32Array(b.buffer, b.byteOffset, PAGE_SIZE / 4);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Encode a metadata-like payload with the engine when it fits a block (else raw). */
export function encodeSmall(engine: WasmEngine, level: CodecLevel, payload: Uint8Array): { codec: number; payload: Uint8Array } {
  if (payload.length === 0 || payload.length > ENGINE_BLOCK) return { codec: 0, payload };
  return engine.encode(payload, level);
}

/** IMAGE_META for the output: `parent` set for an incremental image, removed otherwise. */
export async function outputMeta(input: CryoImage, parent: CryoImage | null | undefined, parentPath: string | undefined): Promise<RawMap> {
  const meta: RawMap = { ...input.meta.raw };
  delete meta.parent;
  if (parent) {
    meta.parent = {
      path: parentPath ?? 'parent.cryo',
      digest: await imageDigest(parent),
      fileLength: parent.source.size,
    };
  }
  return meta;
}

/**
 * Write `input` packed (and, with `options.parent`, incremental) to `writer`. The caller calls
 * `writer.finish()`.
 */
export async function packImage(input: CryoImage, writer: ImageWriter, options: PackOptions = {}): Promise<PackStats> {
  const level = codecLevel(options.level ?? DEFAULT_LEVEL);
  const module = input.wasm.module;
  const engine = await WasmEngine.create(module);
  const metaEngine = await WasmEngine.create(module);
  const encoder = options.encoder ?? new InlineEncoder(metaEngine, options.level ?? DEFAULT_LEVEL);
  const inputPages = await pagesOf(input);
  const parent = options.parent ?? null;
  const parentPages = parent ? await pagesOf(parent) : null;
  const dedup = options.dedup !== false ? new DedupTable(Math.max(...input.processes.map((p) => p.storedPageCount), 0)) : null;
  const deltaLimit = options.deltaLimit ?? 2048;
  const stats: PackStats = { pages: 0, zero: 0, parent: 0, delta: 0, dedup: 0, stored: 0, pageDataRaw: 0, pageDataStored: 0 };
  const total = input.processes.reduce((n, p) => n + p.pageMap.reduce((m, e) => m + e.pageCount, 0), 0);

  const addEncoded = async (section: SectionInfo | { type: number; owner: number; key: bigint }, decoded: Uint8Array) => {
    const { codec, payload } = encodeSmall(metaEngine, level, decoded);
    await writer.addSection({ type: section.type, owner: section.owner, key: section.key, codec, rawLength: decoded.length }, payload);
  };

  await addEncoded({ type: SectionType.IMAGE_META, owner: 0, key: 0n }, encodeMetadata(await outputMeta(input, parent, options.parentPath)));
  for (const s of input.sections) {
    if (s.type === SectionType.PROCESS || s.type === SectionType.BLOB) await addEncoded(s, await input.readSection(s));
    else if (s.type !== SectionType.IMAGE_META && s.type !== SectionType.PAGEMAP && s.type !== SectionType.PAGEDATA) {
      await writer.copySection(s, await input.readStoredSection(s)); // unknown types: as they are
    }
  }

  const sections = new OrderedSections(writer, Math.max(2, encoder.parallelism + 1));
  const verify = new Uint8Array(PAGE_SIZE);
  for (const process of input.processes) {
    if (process.pageMap.length === 0) continue;
    const pid = process.pid;
    const runs = new RunBuilder();
    dedup?.clear();
    let nextStore = 0;
    const newBlock = () => encoder.takeBlock?.() ?? new Uint8Array(ENGINE_BLOCK);
    let block = newBlock();
    let blockPages = 0;
    let blockFirst = 0;
    const flush = async () => {
      if (blockPages === 0) return;
      const bytes = blockPages === BLOCK_PAGES ? block : block.slice(0, blockPages * PAGE_SIZE);
      const key = blockFirst;
      const length = blockPages * PAGE_SIZE;
      if (blockPages === BLOCK_PAGES) block = newBlock();
      blockPages = 0;
      blockFirst = nextStore;
      await sections.submit({ type: SectionType.PAGEDATA, owner: pid, key }, length, encoder.encode(bytes));
    };
    // New store pages are copied from the chunk into the block in runs (one copy per run).
    let pendingFrom = -1;
    let pendingTo = -1;
    let pendingAt = 0;
    const copyPending = async () => {
      if (pendingFrom < 0) return;
      block.set(engine.a.subarray(pendingFrom * PAGE_SIZE, pendingTo * PAGE_SIZE), pendingAt * PAGE_SIZE);
      pendingFrom = -1;
      if (blockPages === BLOCK_PAGES) await flush();
    };
    const storePage = async (i: number): Promise<number> => {
      if (pendingFrom >= 0 && pendingTo !== i) await copyPending();
      if (pendingFrom < 0) {
        pendingFrom = i;
        pendingAt = blockPages;
      }
      pendingTo = i + 1;
      blockPages++;
      const s = nextStore++;
      if (blockPages === BLOCK_PAGES) await copyPending();
      return s;
    };
    const kinds = new Uint8Array(BLOCK_PAGES);
    const stores = new Float64Array(BLOCK_PAGES);

    for (const e of process.pageMap) {
      if (e.kind === PageKind.ZERO) {
        runs.add(e.vaddr, e.pageCount, PageKind.ZERO, 0);
        stats.zero += e.pageCount;
        stats.pages += e.pageCount;
        continue;
      }
      for (let first = 0; first < e.pageCount; first += BLOCK_PAGES) {
        const n = Math.min(BLOCK_PAGES, e.pageCount - first);
        const address = e.vaddr + BigInt(first) * PAGE;
        const len = n * PAGE_SIZE;
        const reads: Promise<unknown>[] = [inputPages.readInto(pid, address, engine.a.subarray(0, len))];
        let missing: { start: bigint; end: bigint }[] = [];
        if (parentPages && parent!.process(pid)) {
          reads.push(parentPages.readInto(pid, address, engine.b.subarray(0, len)).then((m) => { missing = m; }));
        }
        await Promise.all(reads);
        const h = engine.hashPagesA(n);
        const hashes = new Uint32Array(h.buffer, h.byteOffset, n * 2).slice();
        let flags: Uint8Array | null = null;
        let hasParent: Uint8Array | null = null;
        if (reads.length > 1) {
          flags = engine.comparePages(n).flags.slice();
          hasParent = new Uint8Array(n).fill(1);
          for (const m of missing) {
            const from = m.start > address ? Number((m.start - address) / PAGE) : 0;
            const to = Math.min(n, Number((m.end - address) / PAGE));
            if (to > from) hasParent.fill(0, from, to);
          }
        }
        // Sort every page of the chunk, then emit its runs (consecutive pages of a kind, store
        // indices in sequence) and copy its new store pages.
        for (let i = 0; i < n; i++) {
          const lo = hashes[2 * i]!;
          const hi = hashes[2 * i + 1]!;
          if (lo === 0 && hi === 0) {
            kinds[i] = PageKind.ZERO;
            stats.zero++;
            continue;
          }
          if (hasParent && hasParent[i]) {
            if (flags![i] === 0) {
              kinds[i] = PageKind.PARENT;
              stats.parent++;
              continue;
            }
            if (engine.countDiffBytes(i) <= deltaLimit) {
              engine.xorAB(i * PAGE_SIZE, PAGE_SIZE);
              kinds[i] = PageKind.DELTA;
              stores[i] = await storePage(i);
              stats.delta++;
              continue;
            }
          }
          kinds[i] = PageKind.DATA;
          if (dedup) {
            const j = dedup.find(lo, hi);
            if (j >= 0) {
              await inputPages.readInto(pid, dedup.address(j), verify);
              if (samePage(engine.a, i * PAGE_SIZE, verify)) {
                stores[i] = dedup.store(j);
                stats.dedup++;
                continue;
              }
            }
          }
          const s = await storePage(i);
          stores[i] = s;
          dedup?.insert(lo, hi, s, address + BigInt(i) * PAGE);
          stats.stored++;
        }
        await copyPending();
        stats.pages += n;
        for (let i = 0; i < n;) {
          const kind = kinds[i]!;
          const stored = kind === PageKind.DATA || kind === PageKind.DELTA;
          let j = i + 1;
          while (j < n && kinds[j] === kind && (!stored || stores[j] === stores[j - 1]! + 1)) j++;
          runs.add(address + BigInt(i) * PAGE, j - i, kind, stored ? stores[i]! : 0);
          i = j;
        }
        options.onProgress?.(stats.pages, total);
      }
    }
    await flush();
    await sections.drain();
    stats.pages += 0;
    await addEncoded({ type: SectionType.PAGEMAP, owner: pid, key: 0n }, runs.encode());
  }
  await sections.drain();
  stats.pageDataRaw = sections.written;
  stats.pageDataStored = sections.storedBytes;
  if (!options.encoder) await encoder.close();
  options.onProgress?.(total, total);
  return stats;
}
