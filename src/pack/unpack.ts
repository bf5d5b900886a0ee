/**
 * Unpacking (FORMAT §3.1, §5.4): {@link unpackImage} writes any image — packed, incremental — as a
 * self-contained raw image (codec 0 only, no parent) in the streaming order every consumer expects
 * (IMAGE_META, per process PROCESS and PAGEMAP, BLOBs, PAGEDATA in ascending store index): what the
 * native restorer reads, so `cryo-img restore` pipes it straight to the helper.
 *
 * Page data is byte-identical: the page map keeps its DATA and ZERO runs and store indices; PARENT
 * and DELTA runs become DATA runs over store pages appended after the image's own, filled with the
 * pages as resolved through the parent chain. One section in memory at a time.
 *
 * Environment-neutral.
 *
 * @module
 */
import { Codec, PAGE_SIZE, SectionType, type SectionInfo } from '../core/format.js';
import { PageKind, type PageMapEntry } from '../core/model.js';
import { encodePageMap } from '../core/page-store.js';
import type { CryoImage } from '../core/reader.js';
import { encodeMetadata, type ImageWriter } from '../core/writer.js';
import { BLOCK_PAGES, WasmEngine } from '../codec/engine.js';
import { pagesOf } from '../codec/pages.js';
import { outputMeta } from './pack.js';

const PAGE = BigInt(PAGE_SIZE);

/** Decodes PAGEDATA sections for unpack, possibly several at once (Node: worker threads). */
export interface SectionDecodePool {
  /** How many sections may be in flight. */
  readonly depth: number;
  /** The decoded payload of a non-raw section and its CRC32C. */
  decode(section: SectionInfo): Promise<{ bytes: Uint8Array; crc: number }>;
  /** The bytes of a decode are written: the buffer may be reused. */
  release(bytes: Uint8Array): void;
}

export interface UnpackOptions {
  /** Decode PAGEDATA sections with this pool (default: one at a time in this thread). */
  pool?: SectionDecodePool;
  /**
   * Reuse two buffers for decoded sections instead of allocating one per section (much faster). Only
   * for sinks that are done with the bytes when their `write` resolves (files, streams); never with a
   * MemorySink, which keeps them.
   */
  reuseBuffers?: boolean;
  /** Page-data bytes done and total. */
  onProgress?: (done: number, total: number) => void;
}

/** The page map of the unpacked output: PARENT/DELTA runs become DATA runs on appended store pages. */
export function unpackedPageMap(entries: readonly PageMapEntry[], storeCount: number): { entries: PageMapEntry[]; resolved: PageMapEntry[] } {
  let next = storeCount;
  const out: PageMapEntry[] = [];
  const resolved: PageMapEntry[] = [];
  for (const e of entries) {
    if (e.kind === PageKind.PARENT || e.kind === PageKind.DELTA) {
      const entry = { vaddr: e.vaddr, pageCount: e.pageCount, kind: PageKind.DATA, storeIndex: next };
      next += e.pageCount;
      out.push(entry);
      resolved.push(entry);
    } else {
      out.push({ ...e });
    }
  }
  return { entries: out, resolved };
}

/** Write `input` as a raw, self-contained image to `writer`; the caller calls `writer.finish()`. */
export async function unpackImage(input: CryoImage, writer: ImageWriter, options: UnpackOptions = {}): Promise<void> {
  const pages = await pagesOf(input);
  const plans = new Map<number, ReturnType<typeof unpackedPageMap>>();
  for (const p of input.processes) plans.set(p.pid, unpackedPageMap(p.pageMap, p.storedPageCount));
  const pageData = input.sections.filter((s) => s.type === SectionType.PAGEDATA);
  const total = pageData.reduce((n, s) => n + s.rawLength, 0) +
    [...plans.values()].reduce((n, p) => n + p.resolved.reduce((m, e) => m + e.pageCount * PAGE_SIZE, 0), 0);
  let done = 0;

  await writer.addImageMeta(await outputMeta(input, null, undefined));
  const processSections = new Map(input.sections.filter((s) => s.type === SectionType.PROCESS).map((s) => [s.owner, s]));
  for (const p of input.processes) {
    const s = processSections.get(p.pid);
    if (s) await writer.addSection({ type: SectionType.PROCESS, owner: p.pid }, await input.readSection(s));
    const plan = plans.get(p.pid)!;
    if (plan.entries.length > 0) await writer.addSection({ type: SectionType.PAGEMAP, owner: p.pid }, encodePageMap(plan.entries));
  }
  for (const s of input.sections) {
    if (s.type === SectionType.BLOB) await writer.addSection({ type: s.type, owner: s.owner, key: s.key }, await input.readSection(s));
  }
  for (const s of input.sections) {
    const known = [SectionType.IMAGE_META, SectionType.PROCESS, SectionType.PAGEMAP, SectionType.PAGEDATA, SectionType.BLOB] as number[];
    if (!known.includes(s.type)) await writer.addSection({ type: s.type, owner: s.owner, key: s.key }, await input.readSection(s));
  }
  // Page data: each process's own store (decoded), then the resolved PARENT/DELTA pages.
  const buffer = new Uint8Array(BLOCK_PAGES * PAGE_SIZE);
  const wasmBuffer = options.reuseBuffers ? await WasmEngine.create(input.wasm.module) : null;
  const spare = options.reuseBuffers ? [new Uint8Array(BLOCK_PAGES * PAGE_SIZE), new Uint8Array(BLOCK_PAGES * PAGE_SIZE)] : [];
  let turn = 0;
  for (const p of input.processes) {
    const own = pageData.filter((s) => s.owner === p.pid).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const pool = options.pool;
    const inFlight: { section: SectionInfo; result: Promise<{ bytes: Uint8Array; crc: number }> | null }[] = [];
    const writeNext = async () => {
      const { section: s, result } = inFlight.shift()!;
      if (!result) await writer.copySection(s, await input.readStoredSection(s));
      else {
        const { bytes, crc } = await result;
        await writer.addSection({ type: SectionType.PAGEDATA, owner: p.pid, key: s.key }, bytes, { payloadCrc: crc });
        pool?.release(bytes);
      }
      done += s.rawLength;
      options.onProgress?.(done, total);
    };
    for (const s of own) {
      let result: Promise<{ bytes: Uint8Array; crc: number }> | null = null;
      if (s.codec !== Codec.RAW) {
        if (pool) result = pool.decode(s);
        else {
          // Two buffers in turn: the sink may still hold the previous one while this one is filled.
          const target = options.reuseBuffers ? spare[turn++ & 1]! : new Uint8Array(s.rawLength);
          result = pages.decodeInto(s, target);
        }
        result.catch(() => undefined); // surfaced when written
      }
      inFlight.push({ section: s, result });
      if (inFlight.length > (pool?.depth ?? 0)) await writeNext();
    }
    while (inFlight.length) await writeNext();
    // Resolved pages take consecutive store indices from storedPageCount on: fill 1 MiB sections.
    const plan = plans.get(p.pid)!;
    let filled = 0;
    let key = p.storedPageCount;
    // With reusable buffers, pages are resolved straight into Wasm memory and checksummed there.
    const target = wasmBuffer ? wasmBuffer.a : buffer;
    const flush = async () => {
      if (filled === 0) return;
      const length = filled * PAGE_SIZE;
      if (wasmBuffer) await writer.addSection({ type: SectionType.PAGEDATA, owner: p.pid, key }, wasmBuffer.a.subarray(0, length), { payloadCrc: wasmBuffer.crcA(length) });
      else await writer.addSection({ type: SectionType.PAGEDATA, owner: p.pid, key }, buffer.slice(0, length));
      key += filled;
      done += filled * PAGE_SIZE;
      filled = 0;
      options.onProgress?.(done, total);
    };
    for (const e of plan.resolved) {
      for (let first = 0; first < e.pageCount;) {
        const n = Math.min(BLOCK_PAGES - filled, e.pageCount - first);
        await pages.readInto(p.pid, e.vaddr + BigInt(first) * PAGE, target.subarray(filled * PAGE_SIZE, (filled + n) * PAGE_SIZE));
        filled += n;
        first += n;
        if (filled === BLOCK_PAGES) await flush();
      }
    }
    await flush();
  }
  options.onProgress?.(total, total);
}

export { encodeMetadata };
