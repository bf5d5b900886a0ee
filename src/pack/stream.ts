/**
 * Reading an image from a stream, front to back, without random access (FORMAT: "header, then
 * section after section until the INDEX section, then the footer"): {@link readStreamSections}.
 * Every header and payload CRC is checked as it passes; a section arrives only once it is whole.
 * Environment-neutral (any async iterable of byte chunks: a Node stream, a fetch body reader).
 *
 * @module
 */
import { CryoFormatError } from '../core/errors.js';
import { FILE_HEADER_SIZE, FOOTER_SIZE, SECTION_HEADER_SIZE, SectionType, type SectionInfo } from '../core/format.js';
import { checkPayloadCrc } from '../core/toc.js';
import type { CryoWasm } from '../core/wasm.js';

/** Bytes of a chunked stream, taken in exact amounts. */
class ChunkQueue {
  private readonly chunks: Uint8Array[] = [];
  private head = 0;
  private available = 0;
  private done = false;
  /** Stream offset of the next byte. */
  offset = 0;

  constructor(private readonly source: AsyncIterator<Uint8Array>) {}

  /** Exactly `n` bytes (a copy when they span chunks), or null if the stream ends first. */
  async take(n: number): Promise<Uint8Array | null> {
    while (this.available < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else if (next.value.length > 0) {
        this.chunks.push(next.value);
        this.available += next.value.length;
      }
    }
    if (this.available < n) return null;
    const first = this.chunks[0]!;
    let out: Uint8Array;
    if (first.length - this.head >= n) {
      out = first.subarray(this.head, this.head + n);
      this.head += n;
    } else {
      out = new Uint8Array(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const k = Math.min(n - filled, c.length - this.head);
        out.set(c.subarray(this.head, this.head + k), filled);
        filled += k;
        this.head += k;
        if (this.head === c.length) {
          this.chunks.shift();
          this.head = 0;
        }
      }
    }
    if (this.chunks.length && this.head === this.chunks[0]!.length) {
      this.chunks.shift();
      this.head = 0;
    }
    this.available -= n;
    this.offset += n;
    return out;
  }
}

const truncated = (offset: number, what: string) => new CryoFormatError({
  code: 'TRUNCATED', offset, subject: 'stream', reason: `the stream ended inside ${what}`, expected: what, found: 'end of stream',
});

/** Sections of a streamed image with their (stored, CRC-checked) payloads, INDEX excluded; then checks the footer. */
export async function* readStreamSections(chunks: AsyncIterable<Uint8Array>, wasm: CryoWasm): AsyncGenerator<{ section: SectionInfo; payload: Uint8Array }> {
  const queue = new ChunkQueue(chunks[Symbol.asyncIterator]());
  const header = await queue.take(FILE_HEADER_SIZE);
  if (!header) throw truncated(0, 'the file header');
  wasm.parseFileHeader(header);
  for (let index = 0; ; index++) {
    const at = queue.offset;
    const bytes = await queue.take(SECTION_HEADER_SIZE);
    if (!bytes) throw truncated(at, 'a section header');
    const section = wasm.parseSectionHeader(bytes, at, Number.MAX_SAFE_INTEGER, index);
    const payload = await queue.take(section.storedLength);
    if (!payload) throw truncated(at, `the payload of a ${section.typeName} section`);
    checkPayloadCrc(wasm, section, payload);
    if (section.type === SectionType.INDEX) {
      const footerAt = queue.offset;
      const footer = await queue.take(FOOTER_SIZE);
      if (!footer) throw truncated(footerAt, 'the footer');
      const f = wasm.parseFooter(footer, footerAt + FOOTER_SIZE);
      if (f.indexOffset !== at) {
        throw new CryoFormatError({ code: 'INDEX_OFFSET', offset: footerAt, subject: 'footer', reason: 'index_offset does not name the INDEX section', expected: String(at), found: String(f.indexOffset) });
      }
      return;
    }
    yield { section, payload };
  }
}
