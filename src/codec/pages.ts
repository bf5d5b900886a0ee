/**
 * Reading process memory from any image — raw, packed (compressed PAGEDATA, FORMAT §3.1) or
 * incremental (PARENT and DELTA pages resolved through the parent chain, FORMAT §5.4) — into
 * caller-supplied (reused) buffers: {@link ImagePages}. Also the parent reference of incremental
 * images (FORMAT §6.1 `parent`) and the image digest it names.
 *
 * @module
 */
import { readInto } from '../core/byte-source.js';
import { CryoFormatError } from '../core/errors.js';
import { Codec, PAGE_SIZE, PAGEMAP_ENTRY_SIZE, SECTION_HEADER_SIZE, SectionType, type SectionInfo } from '../core/format.js';
import { checkHeaderCopy } from '../core/contents.js';
import { addNotStored } from '../core/page-store.js';
import { wasmFormatError } from '../core/wasm-codes.js';
import { bytesOf, int, isMap, text } from '../core/metadata.js';
import { PageKind, type PageMapEntry } from '../core/model.js';
import { MAX_MEMORY_READ, type CryoImage } from '../core/reader.js';
import type { SectionDecoder } from '../core/contents.js';
import type { CryoWasm } from '../core/wasm.js';
import { ENGINE_BLOCK, WasmEngine } from './engine.js';

const PAGE = BigInt(PAGE_SIZE);

/** Page kinds of incremental images (FORMAT §5.4). */
export const KIND_PARENT = 2;
export const KIND_DELTA = 3;

/** IMAGE_META `parent` (FORMAT §6.1): which image an incremental image was made against. */
export interface ParentRef {
  /** Path of the parent, relative to the directory holding this image ('/' separated), or absolute. */
  path: string;
  /** SHA-256 of the parent's INDEX payload (FORMAT §5.4). */
  digest: Uint8Array;
  /** The parent's file length (informative). */
  fileLength: number | null;
}

/** Supplies the parent of an incremental image (OpenOptions.resolveParent). */
export type ParentResolver = (ref: ParentRef) => Promise<CryoImage>;

/** A SectionDecoder (core/contents.ts) backed by the Wasm engine: codecs 1 and 2. */
export function engineDecoder(core: CryoWasm): SectionDecoder {
  return { decode: async (section, stored) => (await WasmEngine.for(core)).decode(section, stored) };
}

/** The parent reference of an image, or null; CryoFormatError if `parent` is malformed. */
export function parentRef(image: CryoImage): ParentRef | null {
  const raw = image.meta.raw.parent;
  if (raw === undefined || raw === null) return null;
  const bad = (what: string) => new CryoFormatError({
    code: 'PARENT_REF', offset: image.metaSection.offset, subject: 'IMAGE_META section',
    reason: `malformed parent reference: ${what}`, expected: 'map with path (str) and digest (bin, 32 bytes)', found: what,
  });
  if (!isMap(raw)) throw bad('not a map');
  const path = text(raw.path);
  const digest = bytesOf(raw.digest);
  if (!path) throw bad('no path');
  if (!digest || digest.length !== 32) throw bad(`digest of ${digest?.length ?? 0} bytes`);
  return { path, digest, fileLength: int(raw.fileLength) };
}

/** SHA-256 of an image's INDEX payload: the digest an incremental child records (FORMAT §5.4). */
export async function imageDigest(image: CryoImage): Promise<Uint8Array> {
  const s = image.indexSection;
  const bytes = await image.source.read(s.payloadOffset, s.storedLength);
  const copy = new Uint8Array(bytes);
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', copy));
}

export const toHex = (bytes: Uint8Array): string => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');

/** Ranges of an address span the image does not hold. */
export type NotStored = { start: bigint; end: bigint }[];

const DECODED_CACHE = 4;

/**
 * Memory of one image, read through codecs and the parent chain. Created by {@link linkImage} for
 * every image opened by openImage; {@link pagesOf} gives it.
 */
export class ImagePages {
  private readonly sectionsByPid = new Map<number, SectionInfo[]>();
  private readonly cache = new Map<number, Uint8Array>();
  private temp = new Uint8Array(0);
  private ioBuffer = new Uint8Array(ENGINE_BLOCK + SECTION_HEADER_SIZE);

  constructor(readonly image: CryoImage, private readonly engine: WasmEngine, readonly parent: ImagePages | null) {
    for (const s of image.sections) {
      if (s.type !== SectionType.PAGEDATA) continue;
      const list = this.sectionsByPid.get(s.owner) ?? [];
      list.push(s);
      this.sectionsByPid.set(s.owner, list);
    }
    for (const list of this.sectionsByPid.values()) list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Whether every PAGEDATA section is raw and no page needs the parent (plain reads suffice). */
  get plain(): boolean {
    return this.parent === null && this.image.sections.every((s) => s.type !== SectionType.PAGEDATA || s.codec === Codec.RAW) &&
      this.image.processes.every((p) => p.pageMap.every((e) => e.kind <= PageKind.ZERO));
  }

  /**
   * Read a section's stored payload into the engine's `io` buffer (through one reused buffer), with
   * the checks of readStoredSection (header equal to its index copy, payload CRC32C).
   */
  private async loadIo(section: SectionInfo): Promise<number> {
    const length = SECTION_HEADER_SIZE + section.storedLength;
    if (this.ioBuffer.length < length) this.ioBuffer = new Uint8Array(length);
    const bytes = this.ioBuffer.subarray(0, length);
    await readInto(this.image.source, section.offset, bytes);
    checkHeaderCopy(this.image.wasm, section, bytes.subarray(0, SECTION_HEADER_SIZE), this.image.footer.indexOffset);
    this.engine.io.set(bytes.subarray(SECTION_HEADER_SIZE));
    const crc = this.engine.crcIo(section.storedLength);
    if (crc !== section.payloadCrc >>> 0) throw wasmFormatError(30, BigInt(section.offset), BigInt(section.payloadCrc >>> 0), BigInt(crc));
    return section.storedLength;
  }

  private fits(section: SectionInfo): boolean {
    return section.codec !== Codec.RAW && section.rawLength <= ENGINE_BLOCK && section.storedLength <= ENGINE_BLOCK;
  }

  /** The decoded payload of a PAGEDATA section (cached: the last few, in recycled buffers). */
  async section(section: SectionInfo): Promise<Uint8Array> {
    const hit = this.cache.get(section.offset);
    if (hit) {
      this.cache.delete(section.offset);
      this.cache.set(section.offset, hit);
      return hit;
    }
    let recycled: Uint8Array | undefined;
    if (this.cache.size >= DECODED_CACHE) {
      const oldest = this.cache.keys().next().value!;
      recycled = this.cache.get(oldest);
      this.cache.delete(oldest);
    }
    let decoded: Uint8Array;
    if (this.fits(section)) {
      const view = this.engine.decodeIo(section, await this.loadIo(section));
      const target = recycled && recycled.buffer.byteLength >= view.length ? new Uint8Array(recycled.buffer, 0, view.length) : new Uint8Array(ENGINE_BLOCK).subarray(0, view.length);
      target.set(view);
      decoded = target;
    } else {
      const payload = await this.image.readStoredSection(section);
      decoded = section.codec === Codec.RAW ? payload : this.engine.decode(section, payload);
    }
    this.cache.set(section.offset, decoded);
    return decoded;
  }

  /**
   * A section's decoded payload copied into `target` (at least rawLength bytes), and the CRC32C of
   * the decoded bytes as the payload records it (FORMAT §3.1), for writing them raw: whoever reads
   * the output checks the decode end to end.
   */
  async decodeInto(section: SectionInfo, target: Uint8Array): Promise<{ bytes: Uint8Array; crc: number }> {
    if (!this.fits(section)) {
      const stored = await this.image.readStoredSection(section);
      const bytes = section.codec === Codec.RAW ? stored : this.engine.decode(section, stored);
      return { bytes, crc: this.image.wasm.crc32c(bytes) };
    }
    const view = this.engine.decodeIo(section, await this.loadIo(section));
    const bytes = target.subarray(0, view.length);
    bytes.set(view);
    return { bytes, crc: this.engine.recordedRawCrc() };
  }

  /** PAGEDATA section of `pid` holding store page `index`. */
  private sectionOf(pid: number, index: number, entryOffset: number): SectionInfo {
    const list = this.sectionsByPid.get(pid) ?? [];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (Number(list[mid]!.key) <= index) lo = mid + 1;
      else hi = mid;
    }
    const s = list[lo - 1];
    if (!s || index >= Number(s.key) + s.rawLength / PAGE_SIZE) {
      throw new CryoFormatError({
        code: 'PAGEDATA_COVERAGE', offset: entryOffset, subject: 'page-map entry',
        reason: `store page ${index} of pid ${pid} is in no PAGEDATA section`, expected: 'a PAGEDATA section holding it', found: 'none',
      });
    }
    return s;
  }

  /**
   * Read `target.length` bytes of `pid`'s memory at `address` into `target` (every byte is written:
   * pages not stored and ZERO pages as zeros). Returns the page-aligned ranges not stored.
   */
  async readInto(pid: number, address: bigint, target: Uint8Array): Promise<NotStored> {
    const process = this.image.process(pid);
    if (!process) throw new RangeError(`no process ${pid} in this image (it holds ${this.image.processes.map((p) => p.pid).join(', ')})`);
    const entries = process.pageMap;
    const notStored: NotStored = [];
    const end = address + BigInt(target.length);
    const markNotStored = (from: bigint, to: bigint) => addNotStored(notStored, from, to);
    let i = firstEntryEndingAfter(entries, address);
    let at = address;
    while (at < end) {
      const e = entries[i];
      const out = Number(at - address);
      if (!e || e.vaddr >= end) {
        target.fill(0, out);
        markNotStored(at, end);
        break;
      }
      if (e.vaddr > at) {
        target.fill(0, out, Number(e.vaddr - address));
        markNotStored(at, e.vaddr);
        at = e.vaddr;
      }
      const runEnd = e.vaddr + BigInt(e.pageCount) * PAGE;
      const stop = runEnd < end ? runEnd : end;
      const piece = target.subarray(Number(at - address), Number(stop - address));
      const entryOffset = this.pageMapOffset(pid) + i * PAGEMAP_ENTRY_SIZE;
      switch (e.kind) {
        case PageKind.ZERO:
          piece.fill(0);
          break;
        case PageKind.DATA:
          await this.readStore(pid, e, at, piece, entryOffset);
          break;
        case KIND_PARENT:
          await this.readParent(pid, at, piece, entryOffset);
          break;
        case KIND_DELTA: {
          await this.readStore(pid, e, at, piece, entryOffset);
          if (this.temp.length < piece.length) this.temp = new Uint8Array(Math.max(piece.length, PAGE_SIZE));
          const base = this.temp.subarray(0, piece.length);
          await this.readParent(pid, at, base, entryOffset);
          xorInto(piece, base);
          break;
        }
        default:
          throw new CryoFormatError({
            code: 'PAGEMAP_KIND', offset: entryOffset, subject: 'page-map entry', reason: 'unknown page kind',
            expected: 'at most 3', found: String(e.kind),
          });
      }
      at = stop;
      i++;
    }
    return notStored;
  }

  private readonly mapOffsets = new Map<number, number>();

  private pageMapOffset(pid: number): number {
    let offset = this.mapOffsets.get(pid);
    if (offset === undefined) {
      offset = this.image.sections.find((x) => x.type === SectionType.PAGEMAP && x.owner === pid)?.payloadOffset ?? 0;
      this.mapOffsets.set(pid, offset);
    }
    return offset;
  }

  /** Store pages of a DATA or DELTA run, for the span [at, at + piece.length). */
  private async readStore(pid: number, e: PageMapEntry, at: bigint, piece: Uint8Array, entryOffset: number): Promise<void> {
    let done = 0;
    while (done < piece.length) {
      const addr = at + BigInt(done);
      const pageStart = (addr / PAGE) * PAGE;
      const inPage = Number(addr - pageStart);
      const store = e.storeIndex + Number((pageStart - e.vaddr) / PAGE);
      const section = this.sectionOf(pid, store, entryOffset);
      const first = Number(section.key);
      const sectionEnd = (first + section.rawLength / PAGE_SIZE - store) * PAGE_SIZE - inPage; // bytes left in the section
      const length = Math.min(piece.length - done, sectionEnd);
      const offsetInPayload = (store - first) * PAGE_SIZE + inPage;
      const dest = piece.subarray(done, done + length);
      if (section.codec === Codec.RAW) {
        await readInto(this.image.source, section.payloadOffset + offsetInPayload, dest);
      } else {
        dest.set((await this.section(section)).subarray(offsetInPayload, offsetInPayload + length));
      }
      done += length;
    }
  }

  private async readParent(pid: number, at: bigint, piece: Uint8Array, entryOffset: number): Promise<void> {
    if (!this.parent) {
      throw new CryoFormatError({
        code: 'PARENT_MISSING', offset: entryOffset, subject: 'page-map entry',
        reason: 'PARENT or DELTA page in an image without a parent', expected: 'an IMAGE_META parent reference', found: 'none',
      });
    }
    const missing = await this.parent.readInto(pid, at, piece);
    if (missing.length > 0) {
      throw new CryoFormatError({
        code: 'PARENT_PAGE', offset: entryOffset, subject: 'page-map entry',
        reason: `pid ${pid}: the parent image does not hold page 0x${missing[0]!.start.toString(16)} this image takes from it`,
        expected: 'a page stored in the parent', found: 'not stored',
      });
    }
  }
}

/** a ^= b (same length). */
export function xorInto(a: Uint8Array, b: Uint8Array): void {
  const n = a.length;
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0 && n % 4 === 0) {
    const x = new Uint32Array(a.buffer, a.byteOffset, n / 4);
    const y = new Uint32Array(b.buffer, b.byteOffset, n / 4);
    for (let i = 0; i < x.length; i++) x[i]! ^= y[i]!;
    return;
  }
  for (let i = 0; i < n; i++) a[i]! ^= b[i]!;
}

/** Index of the first entry ending after `address` (entries.length if none). */
export function firstEntryEndingAfter(entries: readonly PageMapEntry[], address: bigint): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const e = entries[mid]!;
    if (e.vaddr + BigInt(e.pageCount) * PAGE > address) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

const pagesByImage = new WeakMap<CryoImage, ImagePages>();

/**
 * The memory reader of an image. Images opened by openImage are linked already (their parent chain
 * resolved); for others a reader without a parent is created.
 */
export async function pagesOf(image: CryoImage): Promise<ImagePages> {
  let pages = pagesByImage.get(image);
  if (!pages) {
    pages = new ImagePages(image, await WasmEngine.for(image.wasm), null);
    pagesByImage.set(image, pages);
  }
  return pages;
}

/** Options for {@link linkImage}. */
export interface LinkOptions {
  resolveParent?: ParentResolver | undefined;
}

/**
 * Resolve an image's parent (when it is incremental) and check it is the image it was made against
 * (digest), then set up its memory reader. Returns the parent (which the caller closes with the
 * child), or null.
 */
export async function linkImage(image: CryoImage, options: LinkOptions): Promise<CryoImage | null> {
  const ref = parentRef(image);
  const usesParent = image.processes.some((p) => p.pageMap.some((e) => e.kind === KIND_PARENT || e.kind === KIND_DELTA));
  const engine = await WasmEngine.for(image.wasm);
  if (!ref) {
    if (!usesParent && image.sections.some((s) => s.type === SectionType.PAGEDATA && s.codec !== Codec.RAW)) {
      const pages = new ImagePages(image, engine, null);
      pagesByImage.set(image, pages);
      routeMemoryReads(image, pages);
      return null;
    }
    if (usesParent) {
      throw new CryoFormatError({
        code: 'PARENT_MISSING', offset: image.metaSection.offset, subject: 'IMAGE_META section',
        reason: 'the page maps have PARENT or DELTA pages but the image names no parent', expected: 'a parent reference', found: 'none',
      });
    }
    pagesByImage.set(image, new ImagePages(image, engine, null));
    return null;
  }
  const missing = (why: string, cause?: unknown) => new CryoFormatError({
    code: 'PARENT_MISSING', offset: image.metaSection.offset, subject: 'IMAGE_META section',
    reason: `incremental image: its parent ${ref.path} cannot be opened (${why})`,
    expected: `the parent image ${ref.path} (digest ${toHex(ref.digest).slice(0, 16)}…)`, found: why, cause,
  });
  if (!options.resolveParent) throw missing('no parent resolver was given (OpenOptions.resolveParent)');
  let parent: CryoImage;
  try {
    parent = await options.resolveParent(ref);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (error instanceof CryoFormatError && (error.code === 'PARENT_MISSING' || error.code === 'PARENT_DIGEST')) throw error;
    throw missing(e.code === 'ENOENT' ? 'no such file' : e.message, error);
  }
  try {
    const digest = await imageDigest(parent);
    if (toHex(digest) !== toHex(ref.digest)) {
      throw new CryoFormatError({
        code: 'PARENT_DIGEST', offset: image.metaSection.offset, subject: 'IMAGE_META section',
        reason: `parent ${ref.path} is not the image this one was made against (it was changed or replaced)`,
        expected: `digest ${toHex(ref.digest)}`, found: `digest ${toHex(digest)}`,
      });
    }
    for (const p of image.processes) {
      if (p.pageMap.some((e) => e.kind === KIND_PARENT || e.kind === KIND_DELTA) && !parent.process(p.pid)) {
        throw new CryoFormatError({
          code: 'PARENT_PROCESS', offset: image.metaSection.offset, subject: 'IMAGE_META section',
          reason: `pid ${p.pid} takes pages from parent ${ref.path}, which has no process ${p.pid}`,
          expected: `process ${p.pid} in the parent`, found: parent.processes.map((x) => x.pid).join(', '),
        });
      }
    }
  } catch (error) {
    await parent.close();
    throw error;
  }
  const pages = new ImagePages(image, engine, await pagesOf(parent));
  pagesByImage.set(image, pages);
  // The core reader refuses PARENT and DELTA pages; this image reads its memory through the chain,
  // and closing it closes its parents.
  const close = image.close.bind(image);
  image.close = async () => {
    await close();
    await parent.close();
  };
  routeMemoryReads(image, pages);
  return parent;
}

/** The reader's readMemory goes through `pages` (codecs with reused buffers, the parent chain). */
function routeMemoryReads(image: CryoImage, pages: ImagePages): void {
  image.readMemoryDetailed = async (pid: number, address: bigint | number, length: number) => {
    if (!Number.isSafeInteger(length) || length < 0 || length > MAX_MEMORY_READ) {
      throw new RangeError(`memory read length ${length} is not between 0 and ${MAX_MEMORY_READ}`);
    }
    const start = BigInt(address);
    if (start < 0n || start + BigInt(length) > 1n << 64n) {
      throw new RangeError(`memory range 0x${start.toString(16)} + ${length} is outside the 64-bit address space`);
    }
    const bytes = new Uint8Array(length);
    const notStored = await pages.readInto(pid, start, bytes);
    return { bytes, notStored };
  };
}

/**
 * Decode every PAGEDATA and BLOB section stored with a codec (verify: a payload with a good CRC may
 * still be malformed). Returns the problems found, each naming its offset.
 */
export async function checkEncodedSections(image: CryoImage): Promise<CryoFormatError[]> {
  const engine = await WasmEngine.for(image.wasm);
  const problems: CryoFormatError[] = [];
  for (const s of image.sections) {
    if (s.codec === Codec.RAW || (s.type !== SectionType.PAGEDATA && s.type !== SectionType.BLOB)) continue;
    try {
      const stored = await image.readStoredSection(s);
      if (s.rawLength <= ENGINE_BLOCK && stored.length <= ENGINE_BLOCK) {
        engine.io.set(stored);
        engine.decodeIo(s, stored.length, true); // decodes, and to the CRC32C the payload records
      } else {
        engine.decode(s, stored);
      }
    } catch (error) {
      if (!(error instanceof CryoFormatError)) throw error;
      problems.push(error);
    }
  }
  return problems;
}

/** Whether an image is raw and self-contained (codec 0 only, DATA/ZERO pages, no parent): what the native restorer reads. */
export function isPlainImage(image: CryoImage): boolean {
  return image.meta.raw.parent === undefined && image.sections.every((s) => s.codec === Codec.RAW) &&
    image.processes.every((p) => p.pageMap.every((e) => e.kind === PageKind.DATA || e.kind === PageKind.ZERO));
}

/**
 * Read `target.length` bytes of `pid`'s memory at `address` into `target` (a reused buffer; every
 * byte is written, pages not stored as zeros), through codecs and the parent chain. Returns the
 * page-aligned ranges not stored.
 */
export async function readMemoryInto(image: CryoImage, pid: number, address: bigint | number, target: Uint8Array): Promise<NotStored> {
  return (await pagesOf(image)).readInto(pid, BigInt(address), target);
}
