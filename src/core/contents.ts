/**
 * From a list of sections (the index, or a sequential scan) to the decoded model: reads IMAGE_META,
 * PROCESS and PAGEMAP payloads (never page data), checks the image's structure (FORMAT §4), and
 * builds each process's page store.
 *
 * @module
 */
import type { ByteSource } from './byte-source.js';
import { CryoFormatError, CryoUnsupportedError } from './errors.js';
import { Codec, FILE_HEADER_SIZE, INDEX_ENTRY_SIZE, SECTION_HEADER_SIZE, SectionType, type SectionInfo } from './format.js';
import { decodeMetadataMap, imageMetaFromMap, int, processFromMap } from './metadata.js';
import type { ImageMeta, ProcessInfo } from './model.js';
import { PageStore } from './page-store.js';
import { checkPayloadCrc, indexMismatchError, sameHeader } from './toc.js';
import type { CryoWasm } from './wasm.js';

/**
 * Decodes section payloads stored with a codec other than raw (FORMAT §3.1). The reader itself only
 * knows codec 0; a codec module plugs in here (OpenOptions.decoder).
 */
export interface SectionDecoder {
  /**
   * The decoded payload (exactly raw_length bytes) of `section`, whose stored bytes `stored` have
   * passed their CRC check. Throws CryoFormatError for a malformed payload and CryoUnsupportedError
   * for a codec it does not know.
   */
  decode(section: SectionInfo, stored: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** The decoded payload of a section: the stored bytes for codec raw, else what `decoder` gives. */
export async function decodePayload(section: SectionInfo, stored: Uint8Array, decoder: SectionDecoder | undefined): Promise<Uint8Array> {
  if (section.codec === Codec.RAW) return stored;
  if (!decoder) {
    throw new CryoUnsupportedError({
      code: 'UNKNOWN_CODEC', offset: section.offset, subject: 'section',
      reason: `codec ${section.codec} needs a decoder, and none was given`, expected: 'codec 0 (raw)', found: String(section.codec),
    });
  }
  const decoded = await decoder.decode(section, stored);
  if (decoded.length !== section.rawLength) {
    throw new CryoFormatError({
      code: 'DECODED_LENGTH', offset: section.offset, subject: 'section',
      reason: `codec ${section.codec} payload decodes to the wrong length`, expected: String(section.rawLength), found: String(decoded.length),
    });
  }
  return decoded;
}

/** Coalesced metadata reads never exceed this many bytes (unless one section is larger). */
const MAX_COALESCED_READ = 16 << 20;

/** The decoded contents of an image. */
export interface ImageContents {
  version: { major: number; minor: number };
  meta: ImageMeta;
  metaSection: SectionInfo;
  processes: ProcessInfo[];
  /** PROCESS sections by pid. */
  processSections: Map<number, SectionInfo>;
  stores: Map<number, PageStore>;
  /** BLOB sections by blob id, in file order. */
  blobs: Map<bigint, SectionInfo[]>;
}

/** An error about the image's structure (which sections it has), at a section's offset. */
export function structureError(offset: number, reason: string, expected?: string, found?: string): CryoFormatError {
  return new CryoFormatError({ code: 'STRUCTURE', offset, subject: 'section', reason, expected, found });
}

/**
 * Read and decode the metadata of an image whose sections are known. Also checks the file header
 * (read together with the first metadata sections when they follow it). Throws CryoFormatError.
 */
export async function readContents(
  source: ByteSource, wasm: CryoWasm, sections: readonly SectionInfo[], indexOffset: number,
  decoder?: SectionDecoder,
): Promise<ImageContents> {
  let metaSection: SectionInfo | undefined;
  const processSections = new Map<number, SectionInfo>();
  const pageMaps = new Map<number, SectionInfo>();
  const pageData = new Map<number, SectionInfo[]>();
  const blobs = new Map<bigint, SectionInfo[]>();
  for (const s of sections) {
    switch (s.type) {
      case SectionType.IMAGE_META:
        if (metaSection) throw structureError(s.offset, 'second IMAGE_META section', 'exactly one', `another at offset ${metaSection.offset}`);
        if (s.owner !== 0) throw structureError(s.offset, 'IMAGE_META with a non-zero owner', '0', String(s.owner));
        metaSection = s;
        break;
      case SectionType.PROCESS:
        if (s.owner === 0) throw structureError(s.offset, 'PROCESS section with owner 0', 'a PID', '0');
        if (processSections.has(s.owner)) throw structureError(s.offset, `second PROCESS section for pid ${s.owner}`, 'one PROCESS section per pid', `another at offset ${processSections.get(s.owner)!.offset}`);
        processSections.set(s.owner, s);
        break;
      case SectionType.PAGEMAP:
        if (pageMaps.has(s.owner)) throw structureError(s.offset, `second PAGEMAP section for pid ${s.owner}`, 'at most one PAGEMAP section per pid', `another at offset ${pageMaps.get(s.owner)!.offset}`);
        pageMaps.set(s.owner, s);
        break;
      case SectionType.PAGEDATA: {
        const list = pageData.get(s.owner) ?? [];
        list.push(s);
        pageData.set(s.owner, list);
        break;
      }
      case SectionType.BLOB: {
        const list = blobs.get(s.key) ?? [];
        list.push(s);
        blobs.set(s.key, list);
        break;
      }
      default:
        break; // unknown types are kept (in the section list) and never fail the reader
    }
  }
  if (!metaSection) throw structureError(indexOffset, 'no IMAGE_META section', 'exactly one', 'none');
  for (const [owner, s] of [...pageMaps, ...[...pageData].map(([o, l]) => [o, l[0]!] as const)]) {
    if (!processSections.has(owner)) throw structureError(s.offset, `${s.typeName} section for pid ${owner}, which has no PROCESS section`, 'a PROCESS section with this owner', 'none');
  }

  const wanted = [metaSection, ...processSections.values(), ...pageMaps.values()];
  const { payloads: stored, version } = await readPayloads(source, wasm, wanted, indexOffset);
  const payloads = new Map<SectionInfo, Uint8Array>();
  for (const [s, bytes] of stored) payloads.set(s, await decodePayload(s, bytes, decoder));

  const meta = imageMetaFromMap(decodeMetadataMap(payloads.get(metaSection)!, metaSection));
  const byPid = new Map<number, ProcessInfo>();
  const stores = new Map<number, PageStore>();
  for (const [owner, s] of processSections) {
    const raw = decodeMetadataMap(payloads.get(s)!, s);
    const pid = int(raw.pid);
    if (pid !== null && pid !== owner) throw structureError(s.offset, 'PROCESS map pid differs from the section owner', String(owner), String(pid));
    const process = processFromMap(raw, owner);
    checkVmas(process.vmas, s.offset);
    const pageMapSection = pageMaps.get(owner);
    const store = new PageStore(wasm, owner, pageMapSection ? payloads.get(pageMapSection)! : new Uint8Array(0),
      pageMapSection, pageData.get(owner) ?? []);
    process.pageMap = store.entries;
    process.storedPageCount = store.storeCount;
    for (const vma of process.vmas) {
      const counts = store.countPages(vma.start, vma.end);
      vma.pagesStored = counts.dataPages;
      vma.zeroPages = counts.zeroPages;
    }
    byPid.set(owner, process);
    stores.set(owner, store);
  }

  const ordered = new Set<ProcessInfo>();
  for (const pid of meta.pids) {
    const process = byPid.get(pid);
    if (!process) throw structureError(metaSection.offset, `IMAGE_META lists pid ${pid}, which has no PROCESS section`, `a PROCESS section with owner ${pid}`, 'none');
    ordered.add(process);
  }
  for (const process of byPid.values()) ordered.add(process);
  const processes = [...ordered];

  return { version, meta, metaSection, processes, processSections, stores, blobs };
}

const PAGE = 4096n;

/** Each VMA has start < end, both page-aligned, in ascending order without overlap (FORMAT §6.2). */
function checkVmas(vmas: readonly { start: bigint; end: bigint }[], offset: number): void {
  const hex = (n: bigint): string => `0x${n.toString(16)}`;
  let prevEnd: bigint | null = null;
  for (const vma of vmas) {
    const range = `VMA ${hex(vma.start)}-${hex(vma.end)}`;
    const fail = (reason: string, expected: string): CryoFormatError =>
      new CryoFormatError({ code: 'VMA_RANGE', offset, subject: 'section', reason: `${range}: ${reason}`, expected });
    if (vma.start < 0n || vma.end <= vma.start) throw fail('end is not above start', 'start < end');
    if (vma.start % PAGE !== 0n || vma.end % PAGE !== 0n) throw fail('not page-aligned', 'start and end multiples of 4096');
    if (prevEnd !== null && vma.start < prevEnd) throw fail(`overlaps or precedes the previous VMA (ending at ${hex(prevEnd)})`, 'VMAs in ascending order without overlap');
    prevEnd = vma.end;
  }
}

/**
 * Read the payloads of `sections` (and the file header), coalescing sections that follow each other
 * into one read; checks each header in the file against its index copy, and each payload's CRC.
 */
async function readPayloads(
  source: ByteSource, wasm: CryoWasm, sections: SectionInfo[], indexOffset: number,
): Promise<{ payloads: Map<SectionInfo, Uint8Array>; version: { major: number; minor: number } }> {
  const sorted = [...sections].sort((a, b) => a.offset - b.offset);
  const payloads = new Map<SectionInfo, Uint8Array>();
  let version: { major: number; minor: number } | undefined;
  let i = 0;
  if (sorted.length === 0 || sorted[0]!.offset !== FILE_HEADER_SIZE) {
    version = wasm.parseFileHeader(await source.read(0, FILE_HEADER_SIZE));
  }
  while (i < sorted.length) {
    const first = sorted[i]!;
    let start = first.offset;
    if (start === FILE_HEADER_SIZE && !version) start = 0;
    let end = first.offset + SECTION_HEADER_SIZE + first.storedLength;
    let j = i + 1;
    while (j < sorted.length && sorted[j]!.offset === end &&
      sorted[j]!.offset + SECTION_HEADER_SIZE + sorted[j]!.storedLength - start <= MAX_COALESCED_READ) {
      end = sorted[j]!.offset + SECTION_HEADER_SIZE + sorted[j]!.storedLength;
      j++;
    }
    const bytes = await source.read(start, end - start);
    if (start === 0) version = wasm.parseFileHeader(bytes.subarray(0, FILE_HEADER_SIZE));
    for (; i < j; i++) {
      const s = sorted[i]!;
      const at = s.offset - start;
      checkHeaderCopy(wasm, s, bytes.subarray(at, at + SECTION_HEADER_SIZE), indexOffset);
      const payload = bytes.subarray(at + SECTION_HEADER_SIZE, at + SECTION_HEADER_SIZE + s.storedLength);
      checkPayloadCrc(wasm, s, payload);
      payloads.set(s, payload);
    }
  }
  return { payloads, version: version! };
}

/** File offset of index entry `index` of the INDEX section at `indexOffset`. */
export function indexEntryOffset(indexOffset: number, index: number): number {
  return indexOffset + SECTION_HEADER_SIZE + index * INDEX_ENTRY_SIZE;
}

/** Check the 48 header bytes found at a section's offset: valid, and equal to the index's copy. */
export function checkHeaderCopy(wasm: CryoWasm, section: SectionInfo, header: Uint8Array, indexOffset: number): void {
  const inFile = wasm.parseSectionHeader(header, section.offset, Number.MAX_SAFE_INTEGER, section.index);
  if (!sameHeader(section, inFile)) throw indexMismatchError(section, inFile, indexEntryOffset(indexOffset, section.index));
}
