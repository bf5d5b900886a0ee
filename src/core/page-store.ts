/**
 * One process's memory as the image holds it: its page map (FORMAT §5.1) and page store (§5.2).
 * Validation and lookups run in the Wasm core (the page map and page-store table are loaded into the
 * core's slot); this class decodes the entries for the model and plans reads of page data.
 *
 * @module
 */
import { CryoFormatError, CryoUnsupportedError } from './errors.js';
import { PAGE_SIZE, PAGEMAP_ENTRY_SIZE, type SectionInfo } from './format.js';
import { PageKind, type PageMapEntry, type PageState } from './model.js';
import type { CryoWasm } from './wasm.js';

const PAGE = BigInt(PAGE_SIZE);

/**
 * Add the pages covering [from, to) to a list of page-aligned "not stored" ranges, merging with the
 * last range when they touch (callers add ranges in ascending order).
 */
export function addNotStored(ranges: { start: bigint; end: bigint }[], from: bigint, to: bigint): void {
  const start = (from / PAGE) * PAGE;
  const stop = ((to + PAGE - 1n) / PAGE) * PAGE;
  const last = ranges[ranges.length - 1];
  if (last && last.end >= start) last.end = stop > last.end ? stop : last.end;
  else ranges.push({ start, end: stop });
}
const TWO_64 = 1n << 64n;

/** A byte range of the file to copy to an offset of the output. */
export interface PageRead {
  /** The PAGEDATA section read from. */
  section: SectionInfo;
  /** File offset. */
  fileOffset: number;
  length: number;
  /** Offset in the output buffer. */
  outputOffset: number;
}

/** Reads planned for a memory range, and the page-aligned ranges not stored. */
export interface ReadPlan {
  reads: PageRead[];
  notStored: { start: bigint; end: bigint }[];
}

export class PageStore {
  /** Decoded page-map entries. */
  readonly entries: PageMapEntry[];
  /** N: pages in the page store. */
  readonly storeCount: number;
  private readonly storeTable: Uint8Array;

  /**
   * Check and decode. `pageMap` is the PAGEMAP payload (empty if the process has none) read from
   * `pageMapSection`; `pageData` are the process's PAGEDATA sections (any order).
   */
  constructor(
    private readonly wasm: CryoWasm,
    readonly pid: number,
    private readonly pageMap: Uint8Array,
    readonly pageMapSection: SectionInfo | undefined,
    pageData: SectionInfo[],
  ) {
    /** PAGEDATA sections sorted by key (store index of their first page). */
    this.sections = [...pageData].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.offset - b.offset));
    this.storeTable = new Uint8Array(this.sections.length * 24);
    const view = new DataView(this.storeTable.buffer);
    this.sections.forEach((s, i) => {
      view.setBigUint64(i * 24, s.key, true);
      view.setBigUint64(i * 24 + 8, BigInt(s.rawLength / PAGE_SIZE), true);
      view.setBigUint64(i * 24 + 16, BigInt(s.offset), true);
    });
    this.bind();
    this.storeCount = wasm.checkPageStore();
    if (pageMapSection) wasm.validatePageMap(this.storeCount, pageMapSection.payloadOffset);
    this.entries = decodePageMap(pageMap);
  }

  /** PAGEDATA sections sorted by key. */
  readonly sections: SectionInfo[];

  /** Make this process's page map current in the Wasm slot. */
  private bind(): void {
    this.wasm.useSlot(this, () => ({ pageMap: this.pageMap, storeTable: this.storeTable }));
  }

  /** DATA and ZERO pages within [start, end). */
  countPages(start: bigint, end: bigint): { dataPages: number; zeroPages: number } {
    if (this.entries.length === 0) return { dataPages: 0, zeroPages: 0 };
    this.bind();
    return this.wasm.countPages(BigInt.asUintN(64, start), BigInt.asUintN(64, end));
  }

  /**
   * Whether the page holding `address` is stored (DATA), known zero (ZERO) or not stored. Page kinds
   * newer than DATA and ZERO read as `data` (they hold content the image describes).
   */
  pageState(address: bigint): PageState {
    if (this.entries.length === 0) return 'not-stored';
    this.bind();
    const i = this.wasm.findPageMapEntry(address);
    const e = this.entries[i];
    if (!e || e.vaddr > address) return 'not-stored';
    return e.kind === PageKind.ZERO ? 'zero' : 'data';
  }

  /** Plan the reads of [address, address + length): one read per (DATA run ∩ PAGEDATA section). */
  plan(address: bigint, length: number): ReadPlan {
    const reads: PageRead[] = [];
    const notStored: { start: bigint; end: bigint }[] = [];
    const end = address + BigInt(length);
    const markNotStored = (from: bigint, to: bigint) => addNotStored(notStored, from, to);
    if (this.entries.length === 0) {
      if (length > 0) markNotStored(address, end);
      return { reads, notStored };
    }
    this.bind();
    let at = address;
    while (at < end) {
      const i = this.wasm.findPageMapEntry(at);
      const e = this.entries[i];
      if (!e || e.vaddr > at) {
        const next = e && e.vaddr < end ? e.vaddr : end;
        markNotStored(at, next);
        at = next;
        continue;
      }
      const runEnd = e.vaddr + BigInt(e.pageCount) * PAGE; // may be 2^64
      const stop = runEnd < end ? runEnd : end;
      if (e.kind === PageKind.ZERO) {
        at = stop;
        continue;
      }
      if (e.kind !== PageKind.DATA) throw this.unsupportedKind(i, e.kind);
      while (at < stop) {
        const store = e.storeIndex + Number((at - e.vaddr) / PAGE);
        const row = this.wasm.findStoreRow(store);
        const section = this.sections[row];
        if (!section) throw this.internal(`store page ${store} of pid ${this.pid} is in no PAGEDATA section`);
        const first = Number(section.key);
        const pagesLeft = first + section.rawLength / PAGE_SIZE - store;
        const pageStart = (at / PAGE) * PAGE;
        const pieceEndInSection = pageStart + BigInt(pagesLeft) * PAGE;
        const pieceEnd = pieceEndInSection < stop ? pieceEndInSection : stop;
        const inPage = Number(at - pageStart);
        reads.push({
          section,
          fileOffset: section.payloadOffset + (store - first) * PAGE_SIZE + inPage,
          length: Number(pieceEnd - at),
          outputOffset: Number(at - address),
        });
        at = pieceEnd;
      }
    }
    return { reads, notStored };
  }

  private unsupportedKind(entry: number, kind: number): CryoUnsupportedError {
    return new CryoUnsupportedError({
      code: 'UNSUPPORTED_PAGE_KIND',
      offset: (this.pageMapSection?.payloadOffset ?? 0) + entry * PAGEMAP_ENTRY_SIZE,
      subject: 'page-map entry',
      reason: `page kind ${kind} cannot be read by this reader`,
      expected: 'DATA (0) or ZERO (1)',
      found: String(kind),
    });
  }

  private internal(message: string): CryoFormatError {
    return new CryoFormatError({
      code: 'PAGEDATA_COVERAGE',
      offset: this.pageMapSection?.offset ?? 0,
      subject: 'section',
      reason: message,
      expected: 'a PAGEDATA section holding it',
      found: 'none',
    });
  }
}

/** Decode a (validated) PAGEMAP payload into entries. */
export function decodePageMap(bytes: Uint8Array): PageMapEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries: PageMapEntry[] = [];
  for (let at = 0; at + PAGEMAP_ENTRY_SIZE <= bytes.length; at += PAGEMAP_ENTRY_SIZE) {
    entries.push({
      vaddr: view.getBigUint64(at, true),
      pageCount: view.getUint32(at + 8, true),
      kind: view.getUint16(at + 12, true) as PageKind,
      storeIndex: Number(view.getBigUint64(at + 16, true)),
    });
  }
  return entries;
}

/** Encode page-map entries as a PAGEMAP payload. */
export function encodePageMap(entries: readonly PageMapEntry[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * PAGEMAP_ENTRY_SIZE);
  const view = new DataView(bytes.buffer);
  entries.forEach((e, i) => {
    const at = i * PAGEMAP_ENTRY_SIZE;
    view.setBigUint64(at, BigInt.asUintN(64, e.vaddr), true);
    view.setUint32(at + 8, e.pageCount, true);
    view.setUint16(at + 12, e.kind, true);
    view.setUint16(at + 14, 0, true);
    view.setBigUint64(at + 16, BigInt(e.storeIndex), true);
  });
  return bytes;
}

export { TWO_64 };
