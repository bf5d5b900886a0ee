/**
 * The boundary to the Wasm core (`dist/cryo.wasm`, built from `assembly/`). {@link CryoWasm} owns one
 * instance; every call goes through it, so that:
 * - lengths are validated before a call and bytes are copied in chunks into one reused scratch region
 *   (no per-call allocation inside Wasm);
 * - a failed check (a result code) becomes a {@link CryoFormatError};
 * - a trap (`WebAssembly.RuntimeError`) never escapes: it becomes a {@link CryoWasmError}.
 *
 * @module
 */
import { CryoWasmError } from './errors.js';
import {
  FOOTER_SIZE, FILE_HEADER_SIZE, INDEX_ENTRY_SIZE, PAGEMAP_ENTRY_SIZE, SECTION_HEADER_SIZE,
  sectionTypeName, type Footer, type SectionHeader, type SectionInfo,
} from './format.js';
import { wasmFormatError } from './wasm-codes.js';

/** Raw exports of cryo.wasm (see assembly/index.ts). */
interface CoreExports {
  memory: WebAssembly.Memory;
  errorCode: WebAssembly.Global;
  errorOffset: WebAssembly.Global;
  errorExpected: WebAssembly.Global;
  errorFound: WebAssembly.Global;
  resultPointer(): number;
  scratchPointer(): number;
  scratchSize(): number;
  slotReserve(bytes: bigint): number;
  crc32cUpdate(crc: number, ptr: number, len: number): number;
  parseFileHeader(ptr: number): number;
  encodeFileHeader(ptr: number): number;
  parseSectionHeader(ptr: number, offset: bigint, bound: bigint): number;
  encodeSectionHeader(
    ptr: number, type: number, codec: number, owner: number, flags: number, key: bigint,
    storedLength: bigint, rawLength: bigint, payloadCrc: number,
  ): number;
  parseFooter(ptr: number, fileSize: bigint): number;
  encodeFooter(ptr: number, indexOffset: bigint, fileLength: bigint, sectionCount: number): number;
  parseIndexHeader(ptr: number, indexOffset: bigint, fileSize: bigint, sectionCount: number): number;
  indexBegin(): void;
  indexCheck(ptr: number, count: number, entriesOffset: bigint, indexOffset: bigint): number;
  indexFinish(indexOffset: bigint): number;
  decodeIndexEntry(ptr: number): number;
  encodeIndexEntry(ptr: number, offset: bigint, headerPtr: number): number;
  pagemapValidate(ptr: number, byteLength: bigint, storeCount: bigint, fileOffset: bigint): number;
  pagemapFind(ptr: number, count: number, address: bigint): number;
  pagemapCount(ptr: number, count: number, start: bigint, end: bigint): number;
  pagestoreCheck(ptr: number, count: number): number;
  pagestoreFind(ptr: number, count: number, index: bigint): number;
}

/** Page counts of a page map or of a range of it. */
export interface PageCounts {
  dataPages: number;
  zeroPages: number;
}

/** What the slot (the Wasm-resident page map + page-store table of one process) holds. */
export interface SlotContents {
  /** The page map payload (24-byte entries). */
  pageMap: Uint8Array;
  /** Page-store rows (24 bytes each: key u64, pages u64, section offset u64), sorted by key. */
  storeTable: Uint8Array;
}

const u64 = (n: number | bigint): bigint => (typeof n === 'bigint' ? n : BigInt(n));

/**
 * One instance of the Wasm core. Not reentrant (one scratch region): use it from one async flow at a
 * time per call — every method is synchronous, so interleaving across awaits is safe.
 */
export class CryoWasm {
  private readonly exports: CoreExports;
  /** The compiled module, so that other instances (codec/diff engines, workers) can share it. */
  readonly module: WebAssembly.Module;
  private readonly scratch: number;
  /** Scratch capacity in bytes (a bit over 1 MiB). */
  readonly scratchSize: number;
  private readonly result: number;
  private bytesView: Uint8Array;
  private dataView: DataView;
  private slotOwner: object | null = null;
  private slotPtr = 0;
  private slotPageMapEntries = 0;
  private slotStoreRows = 0;

  private constructor(instance: WebAssembly.Instance, module: WebAssembly.Module) {
    this.module = module;
    this.exports = instance.exports as unknown as CoreExports;
    this.scratch = this.exports.scratchPointer();
    this.scratchSize = this.exports.scratchSize();
    this.result = this.exports.resultPointer();
    this.bytesView = new Uint8Array(this.exports.memory.buffer);
    this.dataView = new DataView(this.exports.memory.buffer);
  }

  /** Instantiate the core from the bytes of cryo.wasm or a compiled module. */
  static async instantiate(source: BufferSource | WebAssembly.Module): Promise<CryoWasm> {
    try {
      if (source instanceof WebAssembly.Module) return new CryoWasm(await WebAssembly.instantiate(source, {}), source);
      const { instance, module } = await WebAssembly.instantiate(source, {});
      return new CryoWasm(instance, module);
    } catch (error) {
      throw new CryoWasmError(`cannot instantiate cryo.wasm: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Current size of the core's linear memory in bytes (it grows only for very large page maps). */
  get memoryBytes(): number {
    return this.exports.memory.buffer.byteLength;
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  /** Current views of linear memory (memory.grow detaches the old buffer). */
  private get memory(): Uint8Array {
    if (this.bytesView.buffer !== this.exports.memory.buffer) this.refreshViews();
    return this.bytesView;
  }

  private get view(): DataView {
    if (this.dataView.buffer !== this.exports.memory.buffer) this.refreshViews();
    return this.dataView;
  }

  private refreshViews(): void {
    this.bytesView = new Uint8Array(this.exports.memory.buffer);
    this.dataView = new DataView(this.exports.memory.buffer);
  }

  /** Run a Wasm call; a trap becomes a CryoWasmError. */
  private call<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof WebAssembly.RuntimeError) {
        throw new CryoWasmError(`Wasm trap in ${what}: ${error.message}`, { cause: error });
      }
      throw error;
    }
  }

  /** Throw the error described by the result globals when `code` is not 0. */
  private check(code: number): void {
    if (code === 0) return;
    const e = this.exports;
    if (code === 1) throw new CryoWasmError(`Wasm core: argument outside memory (${e.errorOffset.value})`);
    throw wasmFormatError(code, e.errorOffset.value as bigint, e.errorExpected.value as bigint, e.errorFound.value as bigint);
  }

  private copyIn(bytes: Uint8Array, exact: number, what: string): void {
    if (bytes.length !== exact) throw new CryoWasmError(`${what}: expected ${exact} bytes, got ${bytes.length}`);
    this.memory.set(bytes, this.scratch);
  }

  private resultU32(at: number): number {
    return this.view.getUint32(this.result + at, true);
  }

  private resultU64(at: number): bigint {
    return this.view.getBigUint64(this.result + at, true);
  }

  /** A u64 from RESULT as a number; u64 values above 2^53 are clamped (only lengths already checked). */
  private resultNumber(at: number): number {
    const v = this.resultU64(at);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }

  private resultHeader(): SectionHeader & { offset: number } {
    return {
      type: this.resultU32(0),
      codec: this.resultU32(4),
      owner: this.resultU32(8),
      flags: this.resultU32(12),
      key: this.resultU64(16),
      storedLength: this.resultNumber(24),
      rawLength: this.resultNumber(32),
      payloadCrc: this.resultU32(40),
      headerCrc: this.resultU32(44),
      offset: this.resultNumber(48),
    };
  }

  // ---- CRC32C ------------------------------------------------------------------------------------

  /**
   * CRC32C of `bytes`, continuing from `crc` (the CRC of the bytes before; 0 to start):
   * `crc32c(b, crc32c(a)) === crc32c(a ++ b)`.
   */
  crc32c(bytes: Uint8Array, crc = 0): number {
    const e = this.exports;
    return this.call('crc32cUpdate', () => {
      let c = crc >>> 0;
      for (let at = 0; at < bytes.length; at += this.scratchSize) {
        const chunk = bytes.subarray(at, Math.min(bytes.length, at + this.scratchSize));
        this.memory.set(chunk, this.scratch);
        c = e.crc32cUpdate(c, this.scratch, chunk.length) >>> 0;
      }
      return c;
    });
  }

  // ---- framing -----------------------------------------------------------------------------------

  /** Check the 16-byte file header; returns its version. Throws CryoFormatError / CryoUnsupportedError. */
  parseFileHeader(bytes: Uint8Array): { major: number; minor: number } {
    return this.call('parseFileHeader', () => {
      this.copyIn(bytes, FILE_HEADER_SIZE, 'file header');
      this.check(this.exports.parseFileHeader(this.scratch));
      return { major: this.resultU32(0), minor: this.resultU32(4) };
    });
  }

  /** The 16-byte file header of version 1.0. */
  encodeFileHeader(): Uint8Array {
    return this.call('encodeFileHeader', () => {
      this.check(this.exports.encodeFileHeader(this.scratch));
      return this.memory.slice(this.scratch, this.scratch + FILE_HEADER_SIZE);
    });
  }

  /**
   * Check a 48-byte section header read at file offset `offset`; the section must end at or before
   * `bound`. Returns it decoded.
   */
  parseSectionHeader(bytes: Uint8Array, offset: number, bound: number, index = -1): SectionInfo {
    return this.call('parseSectionHeader', () => {
      this.copyIn(bytes, SECTION_HEADER_SIZE, 'section header');
      this.check(this.exports.parseSectionHeader(this.scratch, u64(offset), u64(bound)));
      return this.sectionInfo(index);
    });
  }

  private sectionInfo(index: number): SectionInfo {
    const h = this.resultHeader();
    return { index, ...h, payloadOffset: h.offset + SECTION_HEADER_SIZE, typeName: sectionTypeName(h.type) };
  }

  /** Encode a 48-byte section header (header_crc computed). */
  encodeSectionHeader(h: Omit<SectionHeader, 'headerCrc'>): Uint8Array {
    return this.call('encodeSectionHeader', () => {
      this.check(this.exports.encodeSectionHeader(
        this.scratch, h.type, h.codec, h.owner >>> 0, h.flags >>> 0, BigInt.asUintN(64, h.key),
        u64(h.storedLength), u64(h.rawLength), h.payloadCrc >>> 0,
      ));
      return this.memory.slice(this.scratch, this.scratch + SECTION_HEADER_SIZE);
    });
  }

  /** Check the 32-byte footer of a file of `fileSize` bytes. */
  parseFooter(bytes: Uint8Array, fileSize: number): Footer {
    return this.call('parseFooter', () => {
      this.copyIn(bytes, FOOTER_SIZE, 'footer');
      this.check(this.exports.parseFooter(this.scratch, u64(fileSize)));
      return {
        indexOffset: this.resultNumber(0),
        fileLength: this.resultNumber(8),
        sectionCount: this.resultU32(16),
        footerCrc: this.resultU32(20),
      };
    });
  }

  /** Encode a 32-byte footer. */
  encodeFooter(indexOffset: number, fileLength: number, sectionCount: number): Uint8Array {
    return this.call('encodeFooter', () => {
      this.check(this.exports.encodeFooter(this.scratch, u64(indexOffset), u64(fileLength), sectionCount >>> 0));
      return this.memory.slice(this.scratch, this.scratch + FOOTER_SIZE);
    });
  }

  /** Check the INDEX section header at `indexOffset` against the footer. */
  parseIndexHeader(bytes: Uint8Array, footer: Footer, fileSize: number): SectionInfo {
    return this.call('parseIndexHeader', () => {
      this.copyIn(bytes, SECTION_HEADER_SIZE, 'INDEX header');
      this.check(this.exports.parseIndexHeader(this.scratch, u64(footer.indexOffset), u64(fileSize), footer.sectionCount));
      return this.sectionInfo(footer.sectionCount);
    });
  }

  /**
   * Check every entry of an INDEX payload (read at `payloadOffset`) and decode them. Sections must
   * follow each other from offset 16 to `indexOffset` without gap or overlap.
   */
  parseIndex(payload: Uint8Array, payloadOffset: number, indexOffset: number): SectionInfo[] {
    if (payload.length % INDEX_ENTRY_SIZE !== 0) {
      throw new CryoWasmError(`INDEX payload of ${payload.length} bytes is not a multiple of 56`);
    }
    return this.call('indexCheck', () => {
      const e = this.exports;
      const sections: SectionInfo[] = [];
      const perChunk = Math.floor(this.scratchSize / INDEX_ENTRY_SIZE);
      const total = payload.length / INDEX_ENTRY_SIZE;
      e.indexBegin();
      for (let first = 0; first < total; first += perChunk) {
        const count = Math.min(perChunk, total - first);
        this.memory.set(payload.subarray(first * INDEX_ENTRY_SIZE, (first + count) * INDEX_ENTRY_SIZE), this.scratch);
        this.check(e.indexCheck(this.scratch, count, u64(payloadOffset + first * INDEX_ENTRY_SIZE), u64(indexOffset)));
        for (let i = 0; i < count; i++) {
          this.check(e.decodeIndexEntry(this.scratch + i * INDEX_ENTRY_SIZE));
          sections.push(this.sectionInfo(first + i));
        }
      }
      this.check(e.indexFinish(u64(indexOffset)));
      return sections;
    });
  }

  /** Encode a 56-byte index entry: `offset` and a copy of the 48-byte `header`. */
  encodeIndexEntry(offset: number, header: Uint8Array): Uint8Array {
    return this.call('encodeIndexEntry', () => {
      this.copyIn(header, SECTION_HEADER_SIZE, 'section header');
      const out = this.scratch + 64;
      this.check(this.exports.encodeIndexEntry(out, u64(offset), this.scratch));
      return this.memory.slice(out, out + INDEX_ENTRY_SIZE);
    });
  }

  // ---- page maps and page stores -----------------------------------------------------------------

  /**
   * Load a process's page map and page-store table into the slot, unless `owner` already holds it.
   * Throws CryoFormatError (LIMIT_EXCEEDED) if they do not fit the slot limit.
   */
  useSlot(owner: object, contents: () => SlotContents): void {
    if (this.slotOwner === owner) return;
    this.call('slotReserve', () => {
      const { pageMap, storeTable } = contents();
      this.slotOwner = null;
      const ptr = this.exports.slotReserve(u64(pageMap.length + storeTable.length));
      if (ptr === 0) this.check(this.exports.errorCode.value as number);
      const memory = this.memory;
      memory.set(pageMap, ptr);
      memory.set(storeTable, ptr + pageMap.length);
      this.slotPtr = ptr;
      this.slotPageMapEntries = pageMap.length / PAGEMAP_ENTRY_SIZE;
      this.slotStoreRows = storeTable.length / 24;
      this.slotOwner = owner;
    });
  }

  private get storePtr(): number {
    return this.slotPtr + this.slotPageMapEntries * PAGEMAP_ENTRY_SIZE;
  }

  /**
   * Check the page-store table in the slot (sections cover 0 … N−1 exactly once); returns N.
   */
  checkPageStore(): number {
    return this.call('pagestoreCheck', () => {
      this.check(this.exports.pagestoreCheck(this.storePtr, this.slotStoreRows));
      return this.resultNumber(0);
    });
  }

  /**
   * Validate the page map in the slot for a page store of `storeCount` pages; `fileOffset` is the
   * PAGEMAP payload's offset (errors name the entry's offset). Returns the page counts.
   */
  validatePageMap(storeCount: number, fileOffset: number): PageCounts & { entries: number } {
    return this.call('pagemapValidate', () => {
      this.check(this.exports.pagemapValidate(
        this.slotPtr, u64(this.slotPageMapEntries * PAGEMAP_ENTRY_SIZE), u64(storeCount), u64(fileOffset)));
      return { dataPages: this.resultNumber(0), zeroPages: this.resultNumber(8), entries: this.resultNumber(16) };
    });
  }

  /** In the slot's page map: index of the first entry ending after `address` (entries count if none). */
  findPageMapEntry(address: bigint): number {
    return this.call('pagemapFind', () => {
      const i = this.exports.pagemapFind(this.slotPtr, this.slotPageMapEntries, address);
      if (i < 0) this.check(this.exports.errorCode.value as number);
      return i;
    });
  }

  /** DATA and ZERO pages of the slot's page map within [start, end). */
  countPages(start: bigint, end: bigint): PageCounts {
    return this.call('pagemapCount', () => {
      this.check(this.exports.pagemapCount(this.slotPtr, this.slotPageMapEntries, start, end));
      return { dataPages: this.resultNumber(0), zeroPages: this.resultNumber(8) };
    });
  }

  /** Row of the slot's page-store table holding store index `index`, or −1. */
  findStoreRow(index: number): number {
    return this.call('pagestoreFind', () => this.exports.pagestoreFind(this.storePtr, this.slotStoreRows, u64(index)));
  }
}
