/**
 * The table of contents of an image by random access (FORMAT §9): footer, INDEX header, INDEX payload.
 *
 * @module
 */
import type { ByteSource } from './byte-source.js';
import { CryoFormatError } from './errors.js';
import {
  FILE_HEADER_SIZE, FOOTER_SIZE, INDEX_ENTRY_SIZE, META_SECTION_LIMIT, SECTION_HEADER_SIZE, type Footer, type SectionInfo,
} from './format.js';
import type { CryoWasm } from './wasm.js';
import { wasmFormatError } from './wasm-codes.js';

/** What the footer and the index say about a file. */
export interface TableOfContents {
  footer: Footer;
  /** The INDEX section. */
  indexSection: SectionInfo;
  /** Every other section, in file order (= index order). */
  sections: SectionInfo[];
}

/** Smallest possible image: file header, an empty INDEX section, footer. */
export const MIN_IMAGE_SIZE = FILE_HEADER_SIZE + SECTION_HEADER_SIZE + FOOTER_SIZE;

/** Error for a source shorter than an image can be. */
export function tooSmallError(size: number): CryoFormatError {
  return wasmFormatError(32, 0n, BigInt(MIN_IMAGE_SIZE), BigInt(size));
}

/**
 * Read and check the footer, the INDEX header and payload (its CRC, and every entry) with two reads.
 * Throws CryoFormatError.
 */
export async function readTableOfContents(source: ByteSource, wasm: CryoWasm): Promise<TableOfContents> {
  const size = source.size;
  if (size < MIN_IMAGE_SIZE) throw tooSmallError(size);
  const footer = wasm.parseFooter(await source.read(size - FOOTER_SIZE, FOOTER_SIZE), size);
  // parseFooter guarantees indexOffset + 48 <= size - 32. Read the INDEX in one go only when its
  // length agrees with the footer's section count (and its limit); else read its header alone so the
  // error names exactly what is wrong, without reading a hostile amount.
  const indexLength = size - FOOTER_SIZE - footer.indexOffset;
  if (indexLength !== SECTION_HEADER_SIZE + footer.sectionCount * INDEX_ENTRY_SIZE ||
      indexLength - SECTION_HEADER_SIZE > META_SECTION_LIMIT) {
    const header = await source.read(footer.indexOffset, SECTION_HEADER_SIZE);
    wasm.parseIndexHeader(header, footer, size);
    throw wasmFormatError(16, BigInt(footer.indexOffset), BigInt(SECTION_HEADER_SIZE + footer.sectionCount * INDEX_ENTRY_SIZE), BigInt(indexLength));
  }
  const indexBytes = await source.read(footer.indexOffset, indexLength);
  const indexSection = wasm.parseIndexHeader(indexBytes.subarray(0, SECTION_HEADER_SIZE), footer, size);
  const payload = indexBytes.subarray(SECTION_HEADER_SIZE);
  checkPayloadCrc(wasm, indexSection, payload);
  const sections = wasm.parseIndex(payload, indexSection.payloadOffset, footer.indexOffset);
  return { footer, indexSection, sections };
}

/** Throw CryoFormatError (PAYLOAD_CRC) unless `payload` has the section's payload_crc. */
export function checkPayloadCrc(wasm: CryoWasm, section: SectionInfo, payload: Uint8Array): void {
  const actual = wasm.crc32c(payload);
  if (actual !== section.payloadCrc) {
    throw wasmFormatError(30, BigInt(section.offset), BigInt(section.payloadCrc), BigInt(actual));
  }
}

/** Whether two section descriptions have the same header fields and offset. */
export function sameHeader(a: SectionInfo, b: SectionInfo): boolean {
  return a.offset === b.offset && a.type === b.type && a.codec === b.codec && a.owner === b.owner &&
    a.flags === b.flags && a.key === b.key && a.storedLength === b.storedLength &&
    a.rawLength === b.rawLength && a.payloadCrc === b.payloadCrc && a.headerCrc === b.headerCrc;
}

/** Error: the section header in the file differs from its copy in the index. */
export function indexMismatchError(inIndex: SectionInfo, inFile: SectionInfo | undefined, indexEntryOffset: number): CryoFormatError {
  return new CryoFormatError({
    code: 'INDEX_MISMATCH',
    offset: inIndex.offset,
    subject: 'section',
    reason: `header differs from index entry ${inIndex.index} (at offset ${indexEntryOffset})`,
    expected: describeHeader(inIndex),
    found: inFile ? describeHeader(inFile) : 'no section',
  });
}

function describeHeader(s: SectionInfo): string {
  return `${s.typeName} owner ${s.owner} key ${s.key} length ${s.storedLength} crc 0x${s.payloadCrc.toString(16)}`;
}
