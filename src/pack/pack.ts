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
import { PageKind, type PageMapEntry, type RawMap } from '../core/model.js';
import { CryoFormatError } from '../core/errors.js';
import { decodeMetadataMap } from '../core/metadata.js';
import { decodePageMap } from '../core/page-store.js';
import type { CryoWasm } from '../core/wasm.js';
import { readStreamSections } from './stream.js';
import type { CryoImage } from '../core/reader.js';
import { encodeMetadata, type ImageWriter } from '../core/writer.js';
import { BLOCK_PAGES, codecLevel, DEFAULT_LEVEL, ENGINE_BLOCK, WasmEngine, type CodecLevel } from '../codec/engine.js';
import { imageDigest, pagesOf, type ImagePages } from '../codec/pages.js';
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

/** What the per-process packers share. */
interface PackContext {
  engine: WasmEngine;
  metaEngine: WasmEngine;
  level: CodecLevel;
  encoder: BlockEncoder;
  sections: OrderedSections;
  writer: ImageWriter;
  parent: CryoImage | null;
  parentPages: ImagePages | null;
  /** Reads an input page back to check a dedup candidate; null: no dedup. */
  dedupVerify: ((pid: number, address: bigint, into: Uint8Array) => Promise<unknown>) | null;
  dedup: DedupTable | null;
  deltaLimit: number;
  stats: PackStats;
}

/**
 * Packs the pages of one process, chunk by chunk: the caller puts up to 256 pages at consecutive
 * addresses into `engine.a` and calls {@link chunk}; {@link finish} writes the last PAGEDATA section
 * and the PAGEMAP.
 */
class ProcessPacker {
  private readonly runs = new RunBuilder();
  private nextStore = 0;
  private block: Uint8Array;
  private blockPages = 0;
  private blockFirst = 0;
  private pendingFrom = -1;
  private pendingTo = -1;
  private pendingAt = 0;
  private readonly kinds = new Uint8Array(BLOCK_PAGES);
  private readonly stores = new Float64Array(BLOCK_PAGES);
  private readonly verify = new Uint8Array(PAGE_SIZE);

  constructor(private readonly ctx: PackContext, readonly pid: number) {
    this.block = this.newBlock();
    ctx.dedup?.clear();
  }

  private newBlock(): Uint8Array {
    return this.ctx.encoder.takeBlock?.() ?? new Uint8Array(ENGINE_BLOCK);
  }

  private async flush(): Promise<void> {
    if (this.blockPages === 0) return;
    const full = this.blockPages === BLOCK_PAGES;
    const bytes = full ? this.block : this.block.slice(0, this.blockPages * PAGE_SIZE);
    const key = this.blockFirst;
    const length = this.blockPages * PAGE_SIZE;
    if (full) this.block = this.newBlock();
    this.blockPages = 0;
    this.blockFirst = this.nextStore;
    await this.ctx.sections.submit({ type: SectionType.PAGEDATA, owner: this.pid, key }, length, this.ctx.encoder.encode(bytes));
  }

  /** New store pages are copied from the chunk into the block in runs (one copy per run). */
  private async copyPending(): Promise<void> {
    if (this.pendingFrom < 0) return;
    this.block.set(this.ctx.engine.a.subarray(this.pendingFrom * PAGE_SIZE, this.pendingTo * PAGE_SIZE), this.pendingAt * PAGE_SIZE);
    this.pendingFrom = -1;
    if (this.blockPages === BLOCK_PAGES) await this.flush();
  }

  private async storePage(i: number): Promise<number> {
    if (this.pendingFrom >= 0 && this.pendingTo !== i) await this.copyPending();
    if (this.pendingFrom < 0) {
      this.pendingFrom = i;
      this.pendingAt = this.blockPages;
    }
    this.pendingTo = i + 1;
    this.blockPages++;
    const s = this.nextStore++;
    if (this.blockPages === BLOCK_PAGES) await this.copyPending();
    return s;
  }

  /** `count` pages recorded as zeros at `address`. */
  zero(address: bigint, count: number): void {
    this.runs.add(address, count, PageKind.ZERO, 0);
    this.ctx.stats.zero += count;
    this.ctx.stats.pages += count;
  }

  /** Sort the `n` pages held in engine.a, for addresses from `address` on. */
  async chunk(address: bigint, n: number): Promise<void> {
    const { engine, stats, dedup, deltaLimit, parentPages, parent } = this.ctx;
    const { kinds, stores, pid } = this;
    let missing: { start: bigint; end: bigint }[] | null = null;
    if (parentPages && parent!.process(pid)) missing = await parentPages.readInto(pid, address, engine.b.subarray(0, n * PAGE_SIZE));
    const h = engine.hashPagesA(n);
    const hashes = new Uint32Array(h.buffer, h.byteOffset, n * 2).slice();
    let flags: Uint8Array | null = null;
    let hasParent: Uint8Array | null = null;
    if (missing) {
      flags = engine.comparePages(n).flags.slice();
      hasParent = new Uint8Array(n).fill(1);
      for (const m of missing) {
        const from = m.start > address ? Number((m.start - address) / PAGE) : 0;
        const to = Math.min(n, Number((m.end - address) / PAGE));
        if (to > from) hasParent.fill(0, from, to);
      }
    }
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
          stores[i] = await this.storePage(i);
          stats.delta++;
          continue;
        }
      }
      kinds[i] = PageKind.DATA;
      if (dedup && this.ctx.dedupVerify) {
        const j = dedup.find(lo, hi);
        if (j >= 0) {
          await this.ctx.dedupVerify(pid, dedup.address(j), this.verify);
          if (samePage(engine.a, i * PAGE_SIZE, this.verify)) {
            stores[i] = dedup.store(j);
            stats.dedup++;
            continue;
          }
        }
      }
      const s = await this.storePage(i);
      stores[i] = s;
      if (this.ctx.dedupVerify) dedup?.insert(lo, hi, s, address + BigInt(i) * PAGE);
      stats.stored++;
    }
    await this.copyPending();
    stats.pages += n;
    for (let i = 0; i < n;) {
      const kind = kinds[i]!;
      const stored = kind === PageKind.DATA || kind === PageKind.DELTA;
      let j = i + 1;
      while (j < n && kinds[j] === kind && (!stored || stores[j] === stores[j - 1]! + 1)) j++;
      this.runs.add(address + BigInt(i) * PAGE, j - i, kind, stored ? stores[i]! : 0);
      i = j;
    }
  }

  /** The last PAGEDATA section, everything in flight, then the PAGEMAP. */
  async finish(): Promise<void> {
    await this.flush();
    await this.ctx.sections.drain();
    const map = this.runs.encode();
    const { codec, payload } = encodeSmall(this.ctx.metaEngine, this.ctx.level, map);
    await this.ctx.writer.addSection({ type: SectionType.PAGEMAP, owner: this.pid, codec, rawLength: map.length }, payload);
  }
}

async function packContext(module: WebAssembly.Module, writer: ImageWriter, options: PackOptions, maxPages: number): Promise<PackContext> {
  const level = codecLevel(options.level ?? DEFAULT_LEVEL);
  const engine = await WasmEngine.create(module);
  const metaEngine = await WasmEngine.create(module);
  const encoder = options.encoder ?? new InlineEncoder(metaEngine, options.level ?? DEFAULT_LEVEL);
  const parent = options.parent ?? null;
  return {
    engine, metaEngine, level, encoder, writer,
    sections: new OrderedSections(writer, Math.max(2, encoder.parallelism + 1)),
    parent,
    parentPages: parent ? await pagesOf(parent) : null,
    dedupVerify: null,
    dedup: options.dedup !== false ? new DedupTable(maxPages) : null,
    deltaLimit: options.deltaLimit ?? 2048,
    stats: { pages: 0, zero: 0, parent: 0, delta: 0, dedup: 0, stored: 0, pageDataRaw: 0, pageDataStored: 0 },
  };
}

async function addEncoded(ctx: PackContext, section: { type: number; owner: number; key: bigint }, decoded: Uint8Array): Promise<void> {
  const { codec, payload } = encodeSmall(ctx.metaEngine, ctx.level, decoded);
  await ctx.writer.addSection({ type: section.type, owner: section.owner, key: section.key, codec, rawLength: decoded.length }, payload);
}

async function finishPack(ctx: PackContext, options: PackOptions): Promise<PackStats> {
  await ctx.sections.drain();
  ctx.stats.pageDataRaw = ctx.sections.written;
  ctx.stats.pageDataStored = ctx.sections.storedBytes;
  if (!options.encoder) await ctx.encoder.close();
  return ctx.stats;
}

/**
 * Write `input` packed (and, with `options.parent`, incremental) to `writer`. The caller calls
 * `writer.finish()`.
 */
export async function packImage(input: CryoImage, writer: ImageWriter, options: PackOptions = {}): Promise<PackStats> {
  const ctx = await packContext(input.wasm.module, writer, options, Math.max(0, ...input.processes.map((p) => p.storedPageCount)));
  const inputPages = await pagesOf(input);
  ctx.dedupVerify = (pid, address, into) => inputPages.readInto(pid, address, into);
  const total = input.processes.reduce((n, p) => n + p.pageMap.reduce((m, e) => m + e.pageCount, 0), 0);

  await addEncoded(ctx, { type: SectionType.IMAGE_META, owner: 0, key: 0n }, encodeMetadata(await outputMeta(input, ctx.parent, options.parentPath)));
  for (const s of input.sections) {
    if (s.type === SectionType.PROCESS || s.type === SectionType.BLOB) await addEncoded(ctx, s, await input.readSection(s));
    else if (s.type !== SectionType.IMAGE_META && s.type !== SectionType.PAGEMAP && s.type !== SectionType.PAGEDATA) {
      await writer.copySection(s, await input.readStoredSection(s)); // unknown types: as they are
    }
  }
  for (const process of input.processes) {
    if (process.pageMap.length === 0) continue;
    const packer = new ProcessPacker(ctx, process.pid);
    for (const e of process.pageMap) {
      if (e.kind === PageKind.ZERO) {
        packer.zero(e.vaddr, e.pageCount);
        continue;
      }
      for (let first = 0; first < e.pageCount; first += BLOCK_PAGES) {
        const n = Math.min(BLOCK_PAGES, e.pageCount - first);
        const address = e.vaddr + BigInt(first) * PAGE;
        await inputPages.readInto(process.pid, address, ctx.engine.a.subarray(0, n * PAGE_SIZE));
        await packer.chunk(address, n);
        options.onProgress?.(ctx.stats.pages, total);
      }
    }
    await packer.finish();
  }
  const stats = await finishPack(ctx, options);
  options.onProgress?.(total, total);
  return stats;
}

/**
 * Pack an image that arrives as a stream (a raw image in the streaming order, e.g. from
 * `cryo-helper dump -o -`), reading it once: IMAGE_META, PROCESS, BLOB and other sections are written
 * as they come, each process's PAGEDATA is packed as it arrives (pages placed by the PAGEMAP that came
 * before it), then its PAGEMAP. Identical pages are not looked for (a stream cannot be read back to
 * check a hash match); zero pages, PARENT and DELTA pages are.
 */
export async function packStream(chunks: AsyncIterable<Uint8Array>, core: CryoWasm, writer: ImageWriter, options: PackOptions = {}): Promise<PackStats> {
  const ctx = await packContext(core.module, writer, { ...options, dedup: false }, 0);
  const maps = new Map<number, PageMapEntry[]>();
  let packer: ProcessPacker | null = null;
  const finished = new Set<number>();
  const finishProcess = async () => {
    if (!packer) return;
    for (const e of maps.get(packer.pid) ?? []) if (e.kind === PageKind.ZERO) packer.zero(e.vaddr, e.pageCount);
    await packer.finish();
    finished.add(packer.pid);
    packer = null;
  };
  for await (const { section: s, payload } of readStreamSections(chunks, core)) {
    if (s.codec !== 0) {
      throw new CryoFormatError({ code: 'STREAM_CODEC', offset: s.offset, subject: 'section', reason: 'a streamed image to pack must be raw', expected: 'codec 0', found: String(s.codec) });
    }
    switch (s.type) {
      case SectionType.IMAGE_META: {
        const meta = decodeMetadataMap(payload, s);
        delete meta.parent;
        if (ctx.parent) meta.parent = { path: options.parentPath ?? 'parent.cryo', digest: await imageDigest(ctx.parent), fileLength: ctx.parent.source.size };
        await addEncoded(ctx, { type: s.type, owner: 0, key: 0n }, encodeMetadata(meta));
        break;
      }
      case SectionType.PAGEMAP: {
        const entries = decodePageMap(payload);
        if (entries.some((e) => e.kind !== PageKind.DATA && e.kind !== PageKind.ZERO)) {
          throw new CryoFormatError({ code: 'PAGEMAP_KIND', offset: s.offset, subject: 'section', reason: 'a streamed image to pack must be raw (DATA and ZERO pages)', expected: 'kinds 0 and 1', found: 'PARENT or DELTA' });
        }
        maps.set(s.owner, entries.filter((e) => e.kind === PageKind.DATA).sort((a, b) => a.storeIndex - b.storeIndex).concat(entries.filter((e) => e.kind === PageKind.ZERO)));
        break;
      }
      case SectionType.PAGEDATA: {
        const current: ProcessPacker | null = packer;
        if (!current || current.pid !== s.owner) {
          await finishProcess();
          if (finished.has(s.owner)) throw new CryoFormatError({ code: 'STREAM_ORDER', offset: s.offset, subject: 'section', reason: `PAGEDATA of pid ${s.owner} after another process's`, expected: 'each process\'s PAGEDATA together', found: 'interleaved' });
          packer = new ProcessPacker(ctx, s.owner);
        }
        await packStoreSection(ctx, packer!, maps.get(s.owner) ?? [], s, payload);
        options.onProgress?.(ctx.stats.pages, 0);
        break;
      }
      default:
        await addEncoded(ctx, { type: s.type, owner: s.owner, key: s.key }, payload);
    }
  }
  await finishProcess();
  // Processes whose memory is only ZERO runs (no PAGEDATA).
  for (const [pid, entries] of maps) {
    if (finished.has(pid) || entries.length === 0) continue;
    packer = new ProcessPacker(ctx, pid);
    await finishProcess();
  }
  return finishPack(ctx, options);
}

/** The pages of one PAGEDATA section, placed at their addresses by the DATA runs (sorted by store index). */
async function packStoreSection(ctx: PackContext, packer: ProcessPacker, runs: PageMapEntry[], s: SectionInfo, payload: Uint8Array): Promise<void> {
  const first = Number(s.key);
  const count = s.rawLength / PAGE_SIZE;
  const data = runs.filter((e) => e.kind === PageKind.DATA && e.storeIndex < first + count && e.storeIndex + e.pageCount > first);
  for (const e of data) {
    const from = Math.max(first, e.storeIndex);
    const to = Math.min(first + count, e.storeIndex + e.pageCount);
    for (let at = from; at < to; at += BLOCK_PAGES) {
      const n = Math.min(BLOCK_PAGES, to - at);
      ctx.engine.a.set(payload.subarray((at - first) * PAGE_SIZE, (at - first + n) * PAGE_SIZE));
      await packer.chunk(e.vaddr + BigInt(at - e.storeIndex) * PAGE, n);
    }
  }
}
