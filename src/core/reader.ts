/**
 * The `.cryo` reader. {@link openImage} reads the footer, the index, and the IMAGE_META, PROCESS and
 * PAGEMAP sections — never page data — and returns a {@link CryoImage}: the decoded model plus lazy
 * access to memory, blobs and raw sections.
 *
 * @module
 */
import { readInto, toByteSource, type ByteSource, type ImageInput } from './byte-source.js';
import { readContents, checkHeaderCopy, decodePayload, type ImageContents, type SectionDecoder } from './contents.js';
import { Codec, SECTION_HEADER_SIZE, type Footer, type SectionInfo } from './format.js';
import type { CheckpointImage, ImageMeta, MemoryRead, PageState, ProcessInfo } from './model.js';
import type { PageStore } from './page-store.js';
import { checkPayloadCrc, readTableOfContents } from './toc.js';
import { verifyImage, type VerifyReport } from './verify.js';
import type { CryoWasm } from './wasm.js';

/** Options of {@link openImage}. */
export interface OpenOptions {
  /**
   * Check the payload CRC of each PAGEDATA section the first time `readMemory` touches it (reading the
   * whole section, at most 1 MiB, once). Default false: `readMemory` reads only the bytes it needs
   * and relies on `verify()` for integrity.
   */
  verifyPageData?: boolean;
  /**
   * Decoder for sections stored with a codec other than raw (FORMAT §3.1). Without one, reading such
   * a section throws CryoUnsupportedError naming the codec and the section's offset.
   */
  decoder?: SectionDecoder;
}

/** Decoded sections of a non-raw codec kept for readMemory (each at most 1 MiB). */
const DECODED_CACHE_SECTIONS = 4;

/** Largest `readMemory` length. */
export const MAX_MEMORY_READ = 0x7fffffff;

/**
 * Open a `.cryo` image: two reads find the table of contents (footer, index), one more (usually) reads
 * the file header and all metadata. Throws {@link CryoFormatError} for a malformed file and
 * {@link CryoUnsupportedError} for another major version or an unknown codec.
 *
 * @param input bytes, a Blob, or any {@link ByteSource}
 * @param wasm the Wasm core (the Node and browser entries load it for you)
 */
export async function openImage(input: ImageInput, wasm: CryoWasm, options: OpenOptions = {}): Promise<CryoImage> {
  const source = toByteSource(input);
  const toc = await readTableOfContents(source, wasm);
  const contents = await readContents(source, wasm, toc.sections, toc.footer.indexOffset, options.decoder);
  return new CryoImage(source, wasm, toc.footer, toc.indexSection, toc.sections, contents, options);
}

/** An open `.cryo` image. */
export class CryoImage implements CheckpointImage {
  /** Format version of the file (major is always 1). */
  readonly version: { major: number; minor: number };
  readonly meta: ImageMeta;
  /** In the order of IMAGE_META `pids`, then any other PROCESS sections in file order. */
  readonly processes: ProcessInfo[];
  /** The IMAGE_META section. */
  readonly metaSection: SectionInfo;
  private readonly byPid: Map<number, ProcessInfo>;
  private readonly stores: Map<number, PageStore>;
  private readonly blobSections: Map<bigint, SectionInfo[]>;
  private readonly verifiedSections = new Set<number>();
  private readonly pendingReads = new Map<number, Promise<Uint8Array>>();
  private readonly decodedCache = new Map<number, Promise<Uint8Array>>();

  /** @internal use {@link openImage} */
  constructor(
    /** Where the bytes come from. */
    readonly source: ByteSource,
    /** The Wasm core this image uses. */
    readonly wasm: CryoWasm,
    /** The decoded footer. */
    readonly footer: Footer,
    /** The INDEX section (last). */
    readonly indexSection: SectionInfo,
    /** Every section but the INDEX, in file order, as the index lists them (unknown types included). */
    readonly sections: readonly SectionInfo[],
    contents: ImageContents,
    private readonly options: OpenOptions,
  ) {
    this.version = contents.version;
    this.meta = contents.meta;
    this.metaSection = contents.metaSection;
    this.processes = contents.processes;
    this.byPid = new Map(this.processes.map((p) => [p.pid, p]));
    this.stores = contents.stores;
    this.blobSections = contents.blobs;
  }

  /** The process with this PID, or undefined. */
  process(pid: number): ProcessInfo | undefined {
    return this.byPid.get(pid);
  }

  /** Ids of every blob with at least one BLOB section, ascending. */
  get blobIds(): bigint[] {
    return [...this.blobSections.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Length in bytes of a blob (0 for a blob with no sections), without reading it. */
  blobLength(id: number | bigint): number {
    return (this.blobSections.get(BigInt(id)) ?? []).reduce((sum, s) => sum + s.rawLength, 0);
  }

  /**
   * The decoded payload of a section (for codec raw, the stored bytes), after checking that the
   * header in the file matches the index and that the payload CRC matches. One read.
   */
  async readSection(section: SectionInfo): Promise<Uint8Array> {
    return decodePayload(section, await this.readStoredSection(section), this.options.decoder);
  }

  /**
   * The payload of a section as stored (not decoded), with the same checks as {@link readSection}:
   * what {@link ImageWriter.copySection} takes to copy a section unchanged.
   */
  async readStoredSection(section: SectionInfo): Promise<Uint8Array> {
    const bytes = await this.source.read(section.offset, SECTION_HEADER_SIZE + section.storedLength);
    checkHeaderCopy(this.wasm, section, bytes.subarray(0, SECTION_HEADER_SIZE), this.footer.indexOffset);
    const payload = bytes.subarray(SECTION_HEADER_SIZE);
    checkPayloadCrc(this.wasm, section, payload);
    this.verifiedSections.add(section.offset);
    return payload;
  }

  /** The bytes of a blob (FORMAT §7): its BLOB sections' payloads in file order, each CRC-checked. */
  async readBlob(id: number | bigint): Promise<Uint8Array> {
    const sections = this.blobSections.get(BigInt(id)) ?? [];
    const parts = await Promise.all(sections.map((s) => this.readSection(s)));
    const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** Whether the page holding `address` is stored (`data`), recorded as zeros (`zero`) or not stored. */
  pageState(pid: number, address: bigint | number): PageState {
    return this.storeOf(pid).pageState(BigInt(address));
  }

  /**
   * Read `length` bytes of process `pid`'s memory at `address`. Reads only the page-data bytes needed
   * (one read per run of pages within one PAGEDATA section). Pages not stored, and ZERO pages, read as
   * zeros. Throws RangeError for an unknown pid or a bad range.
   */
  async readMemory(pid: number, address: bigint | number, length: number): Promise<Uint8Array> {
    return (await this.readMemoryDetailed(pid, address, length)).bytes;
  }

  /** Like {@link readMemory}, and also lists the page ranges that are not stored. */
  async readMemoryDetailed(pid: number, address: bigint | number, length: number): Promise<MemoryRead> {
    const store = this.storeOf(pid);
    if (!Number.isSafeInteger(length) || length < 0 || length > MAX_MEMORY_READ) {
      throw new RangeError(`memory read length ${length} is not between 0 and ${MAX_MEMORY_READ}`);
    }
    const start = BigInt(address);
    if (start < 0n || start + BigInt(length) > 1n << 64n) {
      throw new RangeError(`memory range 0x${start.toString(16)} + ${length} is outside the 64-bit address space`);
    }
    const plan = store.plan(start, length);
    const bytes = new Uint8Array(length);
    await Promise.all(plan.reads.map(async (read) => {
      const encoded = read.section.codec !== Codec.RAW;
      if (encoded || (this.options.verifyPageData && !this.verifiedSections.has(read.section.offset))) {
        const payload = await this.decodedOnce(read.section, encoded);
        const at = read.fileOffset - read.section.payloadOffset;
        bytes.set(payload.subarray(at, at + read.length), read.outputOffset);
        return;
      }
      await readInto(this.source, read.fileOffset, bytes.subarray(read.outputOffset, read.outputOffset + read.length));
    }));
    return { bytes, notStored: plan.notStored };
  }

  /**
   * Check the whole file: every section header and payload CRC in one sequential pass, the index
   * against the sections actually found, the footer, and the structure (metadata, page maps, page
   * stores). Never throws for a malformed file: every problem is in the report.
   */
  verify(): Promise<VerifyReport> {
    return verifyImage(this.source, this.wasm, { decoder: this.options.decoder });
  }

  /** Close the underlying source (a file handle in Node). */
  async close(): Promise<void> {
    await this.source.close?.();
  }

  /**
   * readSection, shared by concurrent readers of the same section. Decoded sections of a non-raw
   * codec (`keep`) also stay in a small LRU cache, so reading page after page decodes a section once.
   */
  private decodedOnce(section: SectionInfo, keep: boolean): Promise<Uint8Array> {
    const offset = section.offset;
    const cached = this.decodedCache.get(offset);
    if (cached) {
      this.decodedCache.delete(offset);
      this.decodedCache.set(offset, cached);
      return cached;
    }
    let pending = this.pendingReads.get(offset);
    if (!pending) {
      const read = this.readSection(section);
      const settle = (): void => {
        if (this.pendingReads.get(offset) === read) this.pendingReads.delete(offset);
      };
      read.then(settle, settle);
      this.pendingReads.set(offset, read);
      pending = read;
    }
    if (keep) {
      const kept = pending;
      this.decodedCache.set(offset, kept);
      kept.catch(() => {
        if (this.decodedCache.get(offset) === kept) this.decodedCache.delete(offset);
      });
      while (this.decodedCache.size > DECODED_CACHE_SECTIONS) this.decodedCache.delete(this.decodedCache.keys().next().value!);
    }
    return pending;
  }

  private storeOf(pid: number): PageStore {
    const store = this.stores.get(pid);
    if (!store) {
      throw new RangeError(`no process ${pid} in this image (it holds ${this.processes.map((p) => p.pid).join(', ')})`);
    }
    return store;
  }
}
