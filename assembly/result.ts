// Result codes and the shared result state of the Wasm core.
//
// Errors are values: every checking function returns a result code (0 = OK) and, on failure, writes
// the byte offset of the offending structure and the expected / found values to the exported globals
// below. Nothing in this module traps on bad input.

/** Result codes. The TypeScript side (src/core/wasm-codes.ts) mirrors this table; keep them in sync. */
export namespace Code {
  export const OK: i32 = 0;
  export const BAD_ARGUMENT: i32 = 1;          // pointer/length outside Wasm memory
  export const FILE_MAGIC: i32 = 2;
  export const FILE_HEADER_CRC: i32 = 3;
  export const UNSUPPORTED_VERSION: i32 = 4;
  export const SECTION_MAGIC: i32 = 5;
  export const SECTION_HEADER_CRC: i32 = 6;
  export const SECTION_FLAGS: i32 = 7;
  export const UNKNOWN_CODEC: i32 = 8;
  export const LENGTH_MISMATCH: i32 = 9;       // codec raw: stored_length != raw_length
  export const LIMIT_EXCEEDED: i32 = 10;       // raw_length above the limit of its type
  export const PAST_END: i32 = 11;             // section runs past its bound (footer / index)
  export const FOOTER_MAGIC: i32 = 12;
  export const FOOTER_CRC: i32 = 13;
  export const FILE_LENGTH: i32 = 14;          // footer file_length != actual size
  export const INDEX_OFFSET: i32 = 15;         // footer index_offset out of range
  export const INDEX_HEADER: i32 = 16;         // INDEX section header inconsistent with the footer
  export const INDEX_ORDER: i32 = 17;          // entries not contiguous in file order (gap/overlap)
  export const INDEX_ENTRY_TYPE: i32 = 18;     // an INDEX listed in the index
  export const PAGEMAP_LENGTH: i32 = 19;
  export const PAGEMAP_ALIGN: i32 = 20;
  export const PAGEMAP_ORDER: i32 = 21;
  export const PAGEMAP_KIND: i32 = 22;
  export const PAGEMAP_COUNT: i32 = 23;
  export const PAGEMAP_FLAGS: i32 = 24;
  export const PAGEMAP_STORE_RANGE: i32 = 25;
  export const PAGEMAP_ZERO_STORE: i32 = 26;
  export const PAGEMAP_OVERFLOW: i32 = 27;
  export const PAGEDATA_LENGTH: i32 = 28;      // raw_length not a non-zero multiple of 4096
  export const PAGEDATA_COVERAGE: i32 = 29;    // store indices with a gap or an overlap
  export const PAYLOAD_CRC: i32 = 30;
  export const SECTION_TYPE: i32 = 31;         // a section of a type not allowed here
  export const TOO_SMALL: i32 = 32;            // file shorter than header + INDEX + footer
  export const INDEX_LENGTH: i32 = 33;         // INDEX raw_length not a multiple of 56
}

/** Last result code (0 after success). */
export let errorCode: i32 = 0;
/** File offset of the structure (section header, index entry, page-map entry, footer) that failed. */
export let errorOffset: u64 = 0;
/** What the format requires (a CRC, a length, a bound, an offset...). */
export let errorExpected: u64 = 0;
/** What the file holds. */
export let errorFound: u64 = 0;

export function fail(code: i32, offset: u64, expected: u64, found: u64): i32 {
  errorCode = code;
  errorOffset = offset;
  errorExpected = expected;
  errorFound = found;
  return code;
}

export function ok(): i32 {
  errorCode = Code.OK;
  return Code.OK;
}

/** True when [ptr, ptr + len) lies inside linear memory. */
export function inBounds(ptr: usize, len: u64): bool {
  const size = <u64>memory.size() << 16;
  return <u64>ptr <= size && len <= size - <u64>ptr;
}

// ---- Memory regions -------------------------------------------------------------------------------
//
// [static data | RESULT (64 B) | scratch (SCRATCH_SIZE) | slot (grows on demand, up to SLOT_LIMIT)]
// The TypeScript side copies file bytes into `scratch` in chunks and keeps one process's page map and
// page-store table in `slot`. Nothing else is ever allocated.

/** Decoded structures are written here (layout: src/core/wasm.ts). */
export const RESULT: usize = memory.data(64, 16);

/** Scratch capacity: one largest PAGEDATA/BLOB payload (1 MiB) plus room for headers. */
export const SCRATCH_SIZE: usize = (1 << 20) + 4096;
/** Largest slot: a 64 MiB page map plus its page-store table (24 bytes per PAGEDATA section). */
export const SLOT_LIMIT: u64 = (64 << 20) + (32 << 20);

const SCRATCH: usize = (__heap_base + 15) & ~<usize>15;
const SLOT: usize = (SCRATCH + SCRATCH_SIZE + 15) & ~<usize>15;

export function resultPointer(): usize {
  return RESULT;
}

export function scratchPointer(): usize {
  return SCRATCH;
}

export function scratchSize(): usize {
  return SCRATCH_SIZE;
}

/**
 * Make the slot at least `bytes` long, growing linear memory if needed. Returns the slot pointer, or 0
 * (with LIMIT_EXCEEDED) when `bytes` exceeds SLOT_LIMIT or memory cannot grow.
 */
export function slotReserve(bytes: u64): usize {
  if (bytes > SLOT_LIMIT) {
    fail(Code.LIMIT_EXCEEDED, 0, SLOT_LIMIT, bytes);
    return 0;
  }
  const end = <u64>SLOT + bytes;
  const have = <u64>memory.size() << 16;
  if (end > have) {
    const pages = <i32>((end - have + 0xffff) >> 16);
    if (memory.grow(pages) < 0) {
      fail(Code.LIMIT_EXCEEDED, 0, have, end);
      return 0;
    }
  }
  ok();
  return SLOT;
}
