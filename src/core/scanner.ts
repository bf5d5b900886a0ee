/**
 * Sequential reading (FORMAT: "header, then section after section until the INDEX section, then the
 * footer"), without the index: {@link scanSections}. Used by verify to cross-check the index against
 * the sections actually in the file.
 *
 * @module
 */
import { readInto, toByteSource, type ByteSource, type ImageInput } from './byte-source.js';
import { CryoFormatError } from './errors.js';
import { FILE_HEADER_SIZE, FOOTER_SIZE, SECTION_HEADER_SIZE, SectionType, type SectionInfo } from './format.js';
import { indexMismatchError, MIN_IMAGE_SIZE, sameHeader, tooSmallError, type TableOfContents } from './toc.js';
import type { CryoWasm } from './wasm.js';
import { wasmFormatError } from './wasm-codes.js';

/**
 * Reads a source front to back through windows of `chunk` bytes: few, large reads, every byte of the
 * file read about once, and the next window read ahead while the current one is processed. Sources
 * with `readInto` (files) read into two reused buffers.
 *
 * Views returned by {@link read} are valid only until the next call.
 */
export class SequentialReader {
  private windowStart = 0;
  private window: Uint8Array = new Uint8Array(0);
  private readonly buffers: Uint8Array[] | null;
  private spare = 0;
  private ahead: { offset: number; length: number; done: Promise<Uint8Array> } | null = null;
  /** Bytes requested from the source. */
  bytesRead = 0;

  constructor(private readonly source: ByteSource, private readonly chunk = 1 << 20) {
    this.buffers = source.readInto ? [new Uint8Array(chunk), new Uint8Array(chunk)] : null;
  }

  private start(offset: number, length: number): { offset: number; length: number; done: Promise<Uint8Array> } {
    this.bytesRead += length;
    if (this.buffers && length <= this.chunk) {
      const target = this.buffers[this.spare]!.subarray(0, length);
      this.spare ^= 1;
      return { offset, length, done: readInto(this.source, offset, target).then(() => target) };
    }
    return { offset, length, done: this.source.read(offset, length) };
  }

  private async fill(offset: number, atLeast: number): Promise<void> {
    const length = Math.min(this.source.size - offset, Math.max(this.chunk, atLeast));
    const ahead = this.ahead;
    this.ahead = null;
    let pending;
    if (ahead && ahead.offset === offset && ahead.length >= length) {
      pending = ahead;
    } else {
      if (ahead) await ahead.done.catch(() => undefined); // never leave a read into a reused buffer running
      pending = this.start(offset, length);
    }
    this.window = await pending.done;
    this.windowStart = offset;
    const next = offset + this.window.length;
    if (next < this.source.size) this.ahead = this.start(next, Math.min(this.source.size - next, this.chunk));
  }

  private holds(offset: number, length: number): boolean {
    return offset >= this.windowStart && offset + length <= this.windowStart + this.window.length;
  }

  /** `length` (small) bytes at `offset`, as a view into the window. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!this.holds(offset, length)) await this.fill(offset, length);
    return this.window.subarray(offset - this.windowStart, offset - this.windowStart + length);
  }

  /** CRC32C of [offset, offset + length), window by window. */
  async crc(wasm: CryoWasm, offset: number, length: number): Promise<number> {
    let crc = 0;
    const end = offset + length;
    for (let at = offset; at < end;) {
      if (!this.holds(at, 1)) await this.fill(at, 1);
      const stop = Math.min(end, this.windowStart + this.window.length);
      crc = wasm.crc32c(this.window.subarray(at - this.windowStart, stop - this.windowStart), crc);
      at = stop;
    }
    return crc;
  }

  /** Wait for a read-ahead still running (call before the source is closed). */
  async settle(): Promise<void> {
    const ahead = this.ahead;
    this.ahead = null;
    if (ahead) await ahead.done.catch(() => undefined);
  }
}

/** Options of the sequential walk. */
export interface WalkOptions {
  /** Check each payload's CRC (reads every byte). Default true. */
  verifyPayloads?: boolean;
  /** The table of contents, when known: compare each section with its index entry, and resync by it. */
  toc?: TableOfContents | null;
  /**
   * Called for each problem. When it returns (instead of throwing), the walk goes on where it can:
   * after a bad header it continues at the end the index gives for that section, if any.
   */
  report?: (problem: CryoFormatError) => void;
}

/** What a walk saw. */
export interface WalkSummary {
  /** Sections walked (INDEX included). */
  sections: number;
  /** Bytes covered by checked headers and payloads, file header and footer included. */
  bytes: number;
  /** Whether the walk reached the INDEX section and the footer. */
  complete: boolean;
}

/**
 * Walk an image sequentially: file header, each section (header checked; payload CRC checked unless
 * `verifyPayloads` is false), up to and including the INDEX section, then the footer, which must follow
 * it and point back at it. Yields each section (the INDEX last). Without a `report` option the first
 * problem is thrown as a {@link CryoFormatError}.
 *
 * @param input bytes, a Blob, or any ByteSource
 */
export async function* scanSections(input: ImageInput, wasm: CryoWasm, options: WalkOptions = {}): AsyncGenerator<SectionInfo, WalkSummary> {
  const source = toByteSource(input);
  const report = options.report ?? ((problem: CryoFormatError) => { throw problem; });
  const verifyPayloads = options.verifyPayloads ?? true;
  const toc = options.toc ?? null;
  const size = source.size;
  const summary: WalkSummary = { sections: 0, bytes: 0, complete: false };
  if (size < MIN_IMAGE_SIZE) {
    report(tooSmallError(size));
    return summary;
  }
  const tocByOffset = new Map<number, SectionInfo>();
  if (toc) {
    for (const s of toc.sections) tocByOffset.set(s.offset, s);
    tocByOffset.set(toc.indexSection.offset, toc.indexSection);
  }
  const reader = new SequentialReader(source);
  try {
    try {
      wasm.parseFileHeader(await reader.read(0, FILE_HEADER_SIZE));
      summary.bytes += FILE_HEADER_SIZE;
    } catch (error) {
      if (!(error instanceof CryoFormatError)) throw error;
      report(error);
    }
    const footerStart = size - FOOTER_SIZE;
    let offset = FILE_HEADER_SIZE;
    let index = 0;
    let indexSection: SectionInfo | undefined;
    for (;;) {
      if (offset > footerStart - SECTION_HEADER_SIZE) {
        report(new CryoFormatError({
          code: 'NO_INDEX', offset, subject: 'section', reason: 'no INDEX section before the footer',
          expected: 'a section header', found: `${footerStart - offset} bytes before the footer`,
        }));
        return summary;
      }
      let section: SectionInfo;
      const known = tocByOffset.get(offset);
      try {
        section = wasm.parseSectionHeader(await reader.read(offset, SECTION_HEADER_SIZE), offset, footerStart, index);
        if (toc && (!known || !sameHeader({ ...known, index }, section))) {
          const entryOffset = toc.footer.indexOffset + SECTION_HEADER_SIZE + index * 56;
          report(known ? indexMismatchError(known, section, entryOffset) : new CryoFormatError({
            code: 'INDEX_MISMATCH', offset, subject: 'section', reason: 'section not listed in the index',
            expected: 'an index entry with this offset', found: `${section.typeName} owner ${section.owner}`,
          }));
        }
      } catch (error) {
        if (!(error instanceof CryoFormatError)) throw error;
        report(error);
        if (!known) return summary; // cannot find the next section without a valid header
        section = { ...known, index };
      }
      if (verifyPayloads) {
        const crc = await reader.crc(wasm, section.payloadOffset, section.storedLength);
        if (crc !== section.payloadCrc) {
          report(wasmFormatError(30, BigInt(section.offset), BigInt(section.payloadCrc), BigInt(crc)));
        }
      }
      summary.sections++;
      summary.bytes += SECTION_HEADER_SIZE + section.storedLength;
      yield section;
      offset = section.payloadOffset + section.storedLength;
      index++;
      if (section.type === SectionType.INDEX) {
        indexSection = section;
        break;
      }
    }
    if (offset !== footerStart) {
      report(new CryoFormatError({
        code: 'INDEX_NOT_LAST', offset, subject: 'INDEX section', reason: 'the footer does not follow the INDEX section',
        expected: `footer at ${offset}`, found: `footer at ${footerStart}`,
      }));
      return summary;
    }
    try {
      const footer = wasm.parseFooter(await reader.read(footerStart, FOOTER_SIZE), size);
      summary.bytes += FOOTER_SIZE;
      if (footer.indexOffset !== indexSection.offset) {
        report(wasmFormatError(15, BigInt(footerStart), BigInt(indexSection.offset), BigInt(footer.indexOffset)));
      } else if (footer.sectionCount !== index - 1) {
        report(new CryoFormatError({
          code: 'SECTION_COUNT', offset: footerStart, subject: 'footer', reason: 'section_count differs from the sections found',
          expected: String(index - 1), found: String(footer.sectionCount),
        }));
      }
    } catch (error) {
      if (!(error instanceof CryoFormatError)) throw error;
      report(error);
      return summary;
    }
    summary.complete = true;
    return summary;
  } finally {
    await reader.settle();
  }
}
