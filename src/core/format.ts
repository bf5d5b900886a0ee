/**
 * Constants and structures of the `.cryo` format, named as in docs/FORMAT.md.
 *
 * @module
 */

export const PAGE_SIZE = 4096;
export const FILE_HEADER_SIZE = 16;
export const SECTION_HEADER_SIZE = 48;
export const INDEX_ENTRY_SIZE = 56;
export const PAGEMAP_ENTRY_SIZE = 24;
export const FOOTER_SIZE = 32;
export const FORMAT_MAJOR = 1;
export const FORMAT_MINOR = 0;

/** raw_length limit of PAGEDATA and BLOB sections (FORMAT §3.2). */
export const DATA_SECTION_LIMIT = 1 << 20;
/** raw_length limit of every other section type (FORMAT §3.2). */
export const META_SECTION_LIMIT = 64 << 20;

/** Section types (FORMAT §4). */
export const SectionType = {
  IMAGE_META: 1,
  PROCESS: 2,
  PAGEMAP: 3,
  PAGEDATA: 4,
  BLOB: 5,
  INDEX: 127,
} as const;
export type KnownSectionType = (typeof SectionType)[keyof typeof SectionType];

/** Codecs (FORMAT §3.1): raw, an LZ4 block, an LZ4 block of u64-delta-filtered bytes. */
export const Codec = { RAW: 0, LZ4: 1, LZ4_DELTA: 2 } as const;

/** The FORMAT name of a section type, or `TYPE_<n>` for types this reader does not know. */
export function sectionTypeName(type: number): string {
  for (const [name, value] of Object.entries(SectionType)) if (value === type) return name;
  return `TYPE_${type}`;
}

/** The raw_length limit of a section type (FORMAT §3.2). */
export function sectionLimit(type: number): number {
  return type === SectionType.PAGEDATA || type === SectionType.BLOB ? DATA_SECTION_LIMIT : META_SECTION_LIMIT;
}

/** A decoded section header (FORMAT §3). */
export interface SectionHeader {
  type: number;
  codec: number;
  /** PID of the owning process, 0 for image-wide sections. */
  owner: number;
  flags: number;
  /** Type-specific: first store index (PAGEDATA), blob id (BLOB), 0 otherwise. */
  key: bigint;
  storedLength: number;
  rawLength: number;
  payloadCrc: number;
  headerCrc: number;
}

/** A section of an image: its header, where it is, and its position in the index. */
export interface SectionInfo extends SectionHeader {
  /** Position in file order (= index entry number); the INDEX section itself gets sectionCount. */
  index: number;
  /** File offset of the section header. */
  offset: number;
  /** File offset of the payload (offset + 48). */
  payloadOffset: number;
  /** FORMAT name of the type (`PAGEDATA`, ...), `TYPE_<n>` if unknown. */
  typeName: string;
}

/** The decoded footer (FORMAT §9). */
export interface Footer {
  indexOffset: number;
  fileLength: number;
  sectionCount: number;
  footerCrc: number;
}
