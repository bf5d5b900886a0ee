// File header, section headers, the index and the footer (docs/FORMAT.md §2, §3, §8, §9):
// parsing with full validation, and encoding (so a writer needs no header code of its own).
//
// Parsed structures are written to RESULT (layouts below, mirrored in src/core/wasm.ts).
// Section header / index entry:  0 type u32 | 4 codec u32 | 8 owner u32 | 12 flags u32 | 16 key u64 |
//   24 stored_length u64 | 32 raw_length u64 | 40 payload_crc u32 | 44 header_crc u32 | 48 offset u64
// Footer:       0 index_offset u64 | 8 file_length u64 | 16 section_count u32 | 20 footer_crc u32
// File header:  0 major u32 | 4 minor u32
//
// CRC errors report expected = the CRC recorded in the file, found = the CRC of the bytes.

import { Code, RESULT, fail, ok, inBounds } from './result';
import { crc32cRaw } from './crc32c';

export const FILE_HEADER_SIZE: u64 = 16;
export const SECTION_HEADER_SIZE: u64 = 48;
export const INDEX_ENTRY_SIZE: u64 = 56;
export const FOOTER_SIZE: u64 = 32;
export const PAGE_SIZE: u64 = 4096;

export const FORMAT_MAJOR: u32 = 1;
export const FORMAT_MINOR: u32 = 0;

const FILE_MAGIC: u64 = 0x474d492d4f595243; // "CRYO-IMG"
const SECTION_MAGIC: u32 = 0x43455343; // "CSEC"
const FOOTER_MAGIC: u64 = 0x444e452d4f595243; // "CRYO-END"

export const TYPE_IMAGE_META: u32 = 1;
export const TYPE_PROCESS: u32 = 2;
export const TYPE_PAGEMAP: u32 = 3;
export const TYPE_PAGEDATA: u32 = 4;
export const TYPE_BLOB: u32 = 5;
export const TYPE_INDEX: u32 = 127;

export const CODEC_RAW: u32 = 0;
/** Highest codec id this reader knows (FORMAT §3.1: 1 = LZ4 block, 2 = LZ4 block + u64 delta filter). */
export const CODEC_MAX: u32 = 2;

const DATA_SECTION_LIMIT: u64 = 1 << 20;
const META_SECTION_LIMIT: u64 = 64 << 20;

/** The raw_length limit of a section type (FORMAT §3.2). */
export function sectionLimit(type: u32): u64 {
  return type == TYPE_PAGEDATA || type == TYPE_BLOB ? DATA_SECTION_LIMIT : META_SECTION_LIMIT;
}

// ---- File header ---------------------------------------------------------------------------------

/** Validate the 16-byte file header at ptr: magic, header_crc, major version. */
export function parseFileHeader(ptr: usize): i32 {
  if (!inBounds(ptr, FILE_HEADER_SIZE)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, FILE_HEADER_SIZE);
  const magic = load<u64>(ptr);
  if (magic != FILE_MAGIC) return fail(Code.FILE_MAGIC, 0, FILE_MAGIC, magic);
  const recorded = load<u32>(ptr, 12);
  const actual = crc32cRaw(0, ptr, 12);
  if (recorded != actual) return fail(Code.FILE_HEADER_CRC, 0, recorded, actual);
  const major = <u32>load<u16>(ptr, 8);
  const minor = <u32>load<u16>(ptr, 10);
  store<u32>(RESULT, major);
  store<u32>(RESULT, minor, 4);
  if (major != FORMAT_MAJOR) return fail(Code.UNSUPPORTED_VERSION, 0, FORMAT_MAJOR, major);
  return ok();
}

/** Write a file header (version 1.0) at ptr. */
export function encodeFileHeader(ptr: usize): i32 {
  if (!inBounds(ptr, FILE_HEADER_SIZE)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, FILE_HEADER_SIZE);
  store<u64>(ptr, FILE_MAGIC);
  store<u16>(ptr, <u16>FORMAT_MAJOR, 8);
  store<u16>(ptr, <u16>FORMAT_MINOR, 10);
  store<u32>(ptr, crc32cRaw(0, ptr, 12), 12);
  return ok();
}

// ---- Section headers -----------------------------------------------------------------------------

/**
 * Check a 48-byte section header at hp describing a section at file offset `offset` that must end at or
 * before `bound`. Errors are reported at `errOffset`. Decodes into RESULT on success.
 */
function checkSectionHeader(hp: usize, offset: u64, bound: u64, errOffset: u64): i32 {
  const magic = load<u32>(hp);
  if (magic != SECTION_MAGIC) return fail(Code.SECTION_MAGIC, errOffset, SECTION_MAGIC, magic);
  const recorded = load<u32>(hp, 44);
  const actual = crc32cRaw(0, hp, 44);
  if (recorded != actual) return fail(Code.SECTION_HEADER_CRC, errOffset, recorded, actual);
  const type = <u32>load<u16>(hp, 4);
  const codec = <u32>load<u16>(hp, 6);
  const flags = load<u32>(hp, 12);
  const stored = load<u64>(hp, 24);
  const raw = load<u64>(hp, 32);
  if (flags != 0) return fail(Code.SECTION_FLAGS, errOffset, 0, flags);
  if (codec > CODEC_MAX) return fail(Code.UNKNOWN_CODEC, errOffset, CODEC_MAX, codec);
  if (codec == CODEC_RAW ? stored != raw : stored == 0 || stored > raw) {
    return fail(Code.LENGTH_MISMATCH, errOffset, raw, stored);
  }
  if (codec != CODEC_RAW && type == TYPE_INDEX) return fail(Code.UNKNOWN_CODEC, errOffset, CODEC_RAW, codec);
  const limit = sectionLimit(type);
  if (raw > limit) return fail(Code.LIMIT_EXCEEDED, errOffset, limit, raw);
  if (type == TYPE_PAGEDATA && (raw == 0 || raw % PAGE_SIZE != 0)) {
    return fail(Code.PAGEDATA_LENGTH, errOffset, PAGE_SIZE, raw);
  }
  if (type == TYPE_PAGEMAP && raw % 24 != 0) return fail(Code.PAGEMAP_LENGTH, errOffset, 24, raw);
  if (type == TYPE_INDEX && raw % INDEX_ENTRY_SIZE != 0) {
    return fail(Code.INDEX_LENGTH, errOffset, INDEX_ENTRY_SIZE, raw);
  }
  // offset + 48 + stored <= bound, without overflow (stored <= 64 MiB here).
  if (offset > bound || bound - offset < SECTION_HEADER_SIZE || bound - offset - SECTION_HEADER_SIZE < stored) {
    const end = offset > 0xffffffffffff0000 ? 0xffffffffffffffff : offset + SECTION_HEADER_SIZE + stored;
    return fail(Code.PAST_END, errOffset, bound, end);
  }
  store<u32>(RESULT, type);
  store<u32>(RESULT, codec, 4);
  store<u32>(RESULT, load<u32>(hp, 8), 8);
  store<u32>(RESULT, flags, 12);
  store<u64>(RESULT, load<u64>(hp, 16), 16);
  store<u64>(RESULT, stored, 24);
  store<u64>(RESULT, raw, 32);
  store<u32>(RESULT, load<u32>(hp, 40), 40);
  store<u32>(RESULT, recorded, 44);
  store<u64>(RESULT, offset, 48);
  return ok();
}

/**
 * Validate the section header at ptr, read from file offset `offset`; the section must end at or
 * before `bound` (the footer's start, or the index's offset). Decodes it into RESULT.
 */
export function parseSectionHeader(ptr: usize, offset: u64, bound: u64): i32 {
  if (!inBounds(ptr, SECTION_HEADER_SIZE)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, SECTION_HEADER_SIZE);
  return checkSectionHeader(ptr, offset, bound, offset);
}

/** Write a 48-byte section header at ptr, header_crc included. */
export function encodeSectionHeader(
  ptr: usize, type: u32, codec: u32, owner: u32, flags: u32, key: u64, storedLength: u64,
  rawLength: u64, payloadCrc: u32,
): i32 {
  if (!inBounds(ptr, SECTION_HEADER_SIZE)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, SECTION_HEADER_SIZE);
  store<u32>(ptr, SECTION_MAGIC);
  store<u16>(ptr, <u16>type, 4);
  store<u16>(ptr, <u16>codec, 6);
  store<u32>(ptr, owner, 8);
  store<u32>(ptr, flags, 12);
  store<u64>(ptr, key, 16);
  store<u64>(ptr, storedLength, 24);
  store<u64>(ptr, rawLength, 32);
  store<u32>(ptr, payloadCrc, 40);
  store<u32>(ptr, crc32cRaw(0, ptr, 44), 44);
  return ok();
}

// ---- Footer --------------------------------------------------------------------------------------

/** Validate the 32-byte footer at ptr, the last bytes of a file of `fileSize` bytes. */
export function parseFooter(ptr: usize, fileSize: u64): i32 {
  if (!inBounds(ptr, FOOTER_SIZE)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, FOOTER_SIZE);
  const minimum = FILE_HEADER_SIZE + SECTION_HEADER_SIZE + FOOTER_SIZE;
  if (fileSize < minimum) return fail(Code.TOO_SMALL, 0, minimum, fileSize);
  const at = fileSize - FOOTER_SIZE;
  const magic = load<u64>(ptr, 24);
  if (magic != FOOTER_MAGIC) return fail(Code.FOOTER_MAGIC, at, FOOTER_MAGIC, magic);
  const recorded = load<u32>(ptr, 20);
  const actual = crc32cRaw(crc32cRaw(0, ptr, 20), ptr + 24, 8);
  if (recorded != actual) return fail(Code.FOOTER_CRC, at, recorded, actual);
  const indexOffset = load<u64>(ptr);
  const fileLength = load<u64>(ptr, 8);
  const count = load<u32>(ptr, 16);
  if (fileLength != fileSize) return fail(Code.FILE_LENGTH, at, fileSize, fileLength);
  if (indexOffset < FILE_HEADER_SIZE || indexOffset > at - SECTION_HEADER_SIZE) {
    return fail(Code.INDEX_OFFSET, at, at - SECTION_HEADER_SIZE, indexOffset);
  }
  store<u64>(RESULT, indexOffset);
  store<u64>(RESULT, fileLength, 8);
  store<u32>(RESULT, count, 16);
  store<u32>(RESULT, recorded, 20);
  return ok();
}

/** Write a 32-byte footer at ptr. */
export function encodeFooter(ptr: usize, indexOffset: u64, fileLength: u64, sectionCount: u32): i32 {
  if (!inBounds(ptr, FOOTER_SIZE)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, FOOTER_SIZE);
  store<u64>(ptr, indexOffset);
  store<u64>(ptr, fileLength, 8);
  store<u32>(ptr, sectionCount, 16);
  store<u64>(ptr, FOOTER_MAGIC, 24);
  store<u32>(ptr, crc32cRaw(crc32cRaw(0, ptr, 20), ptr + 24, 8), 20);
  return ok();
}

// ---- Index ---------------------------------------------------------------------------------------

/**
 * Validate the INDEX section header at ptr (read at `indexOffset`) against the footer: type INDEX,
 * owner 0, key 0, payload = sectionCount entries, ending exactly where the footer starts.
 */
export function parseIndexHeader(ptr: usize, indexOffset: u64, fileSize: u64, sectionCount: u32): i32 {
  if (!inBounds(ptr, SECTION_HEADER_SIZE)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, SECTION_HEADER_SIZE);
  if (fileSize < FOOTER_SIZE) return fail(Code.TOO_SMALL, 0, FOOTER_SIZE, fileSize);
  const footerStart = fileSize - FOOTER_SIZE;
  const rc = checkSectionHeader(ptr, indexOffset, footerStart, indexOffset);
  if (rc != Code.OK) return rc;
  const type = load<u32>(RESULT);
  if (type != TYPE_INDEX) return fail(Code.INDEX_HEADER, indexOffset, TYPE_INDEX, type);
  const owner = load<u32>(RESULT, 8);
  if (owner != 0) return fail(Code.INDEX_HEADER, indexOffset, 0, owner);
  const key = load<u64>(RESULT, 16);
  if (key != 0) return fail(Code.INDEX_HEADER, indexOffset, 0, key);
  const stored = load<u64>(RESULT, 24);
  const expected = <u64>sectionCount * INDEX_ENTRY_SIZE;
  if (stored != expected) return fail(Code.INDEX_HEADER, indexOffset, expected, stored);
  const end = indexOffset + SECTION_HEADER_SIZE + stored;
  if (end != footerStart) return fail(Code.INDEX_HEADER, indexOffset, footerStart, end);
  return ok();
}

/** Where the next section must start while checking the index (sections follow without padding). */
let indexNext: u64 = FILE_HEADER_SIZE;

/** Start checking an index: the first section must start right after the file header. */
export function indexBegin(): void {
  indexNext = FILE_HEADER_SIZE;
}

/**
 * Check `count` consecutive 56-byte index entries at ptr; `entriesOffset` is the file offset of the
 * first of them, `indexOffset` the INDEX section's offset (every section must end before it). Checks
 * each entry's header (as parseSectionHeader does) and that sections follow each other in file order,
 * without gap or overlap. May be called on successive chunks of one index after indexBegin().
 */
export function indexCheck(ptr: usize, count: u32, entriesOffset: u64, indexOffset: u64): i32 {
  if (!inBounds(ptr, <u64>count * INDEX_ENTRY_SIZE)) {
    return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, <u64>count * INDEX_ENTRY_SIZE);
  }
  for (let i: u32 = 0; i < count; i++) {
    const p = ptr + <usize>i * <usize>INDEX_ENTRY_SIZE;
    const at = entriesOffset + <u64>i * INDEX_ENTRY_SIZE;
    const offset = load<u64>(p);
    const rc = checkSectionHeader(p + 8, offset, indexOffset, at);
    if (rc != Code.OK) return rc;
    if (offset != indexNext) return fail(Code.INDEX_ORDER, at, indexNext, offset);
    const type = load<u32>(RESULT);
    if (type == TYPE_INDEX) return fail(Code.INDEX_ENTRY_TYPE, at, 0, type);
    indexNext = offset + SECTION_HEADER_SIZE + load<u64>(RESULT, 24);
  }
  return ok();
}

/** After the last indexCheck: the last section must end exactly where the INDEX starts. */
export function indexFinish(indexOffset: u64): i32 {
  if (indexNext != indexOffset) return fail(Code.INDEX_ORDER, indexOffset, indexNext, indexOffset);
  return ok();
}

/** Decode the (already checked) index entry at ptr into RESULT, without checks. */
export function decodeIndexEntry(ptr: usize): i32 {
  if (!inBounds(ptr, INDEX_ENTRY_SIZE)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, INDEX_ENTRY_SIZE);
  const hp = ptr + 8;
  store<u32>(RESULT, <u32>load<u16>(hp, 4));
  store<u32>(RESULT, <u32>load<u16>(hp, 6), 4);
  store<u32>(RESULT, load<u32>(hp, 8), 8);
  store<u32>(RESULT, load<u32>(hp, 12), 12);
  store<u64>(RESULT, load<u64>(hp, 16), 16);
  store<u64>(RESULT, load<u64>(hp, 24), 24);
  store<u64>(RESULT, load<u64>(hp, 32), 32);
  store<u32>(RESULT, load<u32>(hp, 40), 40);
  store<u32>(RESULT, load<u32>(hp, 44), 44);
  store<u64>(RESULT, load<u64>(ptr), 48);
  return ok();
}

/** Write a 56-byte index entry at ptr: the offset, then a copy of the 48-byte header at headerPtr. */
export function encodeIndexEntry(ptr: usize, offset: u64, headerPtr: usize): i32 {
  if (!inBounds(ptr, INDEX_ENTRY_SIZE) || !inBounds(headerPtr, SECTION_HEADER_SIZE)) {
    return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, INDEX_ENTRY_SIZE);
  }
  store<u64>(ptr, offset);
  memory.copy(ptr + 8, headerPtr, <usize>SECTION_HEADER_SIZE);
  return ok();
}
