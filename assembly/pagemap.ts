// Page maps (docs/FORMAT.md §5.1) and the page store (§5.2): validation, address lookup, per-range
// page counts, and finding the PAGEDATA section that holds a store index.
//
// A page map is an array of 24-byte entries: 0 vaddr u64 | 8 page_count u32 | 12 kind u16 |
// 14 flags u16 | 16 store_index u64.
// A page-store table (built by the TypeScript side from the index, sorted by key) is an array of
// 24-byte rows: 0 key u64 (first store index) | 8 pages u64 | 16 section offset u64 (for errors).
//
// Results in RESULT: pagemapValidate -> 0 dataPages u64 | 8 zeroPages u64 | 16 entries u64;
// pagemapCount -> 0 dataPages u64 | 8 zeroPages u64; pagestoreCheck -> 0 storeCount u64.

import { Code, RESULT, fail, ok, inBounds } from './result';

const ENTRY: usize = 24;
const PAGE: u64 = 4096;
const PAGE_SHIFT: u64 = 12;

export const KIND_DATA: u32 = 0;
export const KIND_ZERO: u32 = 1;
/** The page is the parent image's page at the same address (FORMAT §5.4). */
export const KIND_PARENT: u32 = 2;
/** The page is the parent's page XOR a store page (FORMAT §5.4). */
export const KIND_DELTA: u32 = 3;

/**
 * Validate a page map of `byteLength` bytes at ptr, whose payload starts at file offset `fileOffset`
 * (errors name the offending entry's offset), for a page store of `storeCount` pages.
 */
export function pagemapValidate(ptr: usize, byteLength: u64, storeCount: u64, fileOffset: u64): i32 {
  if (byteLength % <u64>ENTRY != 0) return fail(Code.PAGEMAP_LENGTH, fileOffset, <u64>ENTRY, byteLength);
  if (!inBounds(ptr, byteLength)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, byteLength);
  const count = byteLength / <u64>ENTRY;
  let prevEnd: u64 = 0;
  let dataPages: u64 = 0;
  let zeroPages: u64 = 0;
  for (let i: u64 = 0; i < count; i++) {
    const p = ptr + <usize>i * ENTRY;
    const at = fileOffset + i * <u64>ENTRY;
    const vaddr = load<u64>(p);
    const pages = <u64>load<u32>(p, 8);
    const kind = <u32>load<u16>(p, 12);
    const flags = <u32>load<u16>(p, 14);
    const storeIndex = load<u64>(p, 16);
    if (vaddr & (PAGE - 1)) return fail(Code.PAGEMAP_ALIGN, at, vaddr & ~(PAGE - 1), vaddr);
    if (pages == 0) return fail(Code.PAGEMAP_COUNT, at, 1, 0);
    if (kind > KIND_DELTA) return fail(Code.PAGEMAP_KIND, at, KIND_DELTA, kind);
    if (flags != 0) return fail(Code.PAGEMAP_FLAGS, at, 0, flags);
    const span = pages << PAGE_SHIFT;
    if (vaddr > 0 - span) return fail(Code.PAGEMAP_OVERFLOW, at, 0 - span, vaddr); // end would pass 2^64
    if (i > 0 && vaddr < prevEnd) return fail(Code.PAGEMAP_ORDER, at, prevEnd, vaddr);
    if (kind == KIND_DATA || kind == KIND_DELTA) {
      if (storeIndex > storeCount || pages > storeCount - storeIndex) {
        return fail(Code.PAGEMAP_STORE_RANGE, at, storeCount, storeIndex + pages);
      }
      dataPages += pages;
    } else {
      if (storeIndex != 0) return fail(Code.PAGEMAP_ZERO_STORE, at, 0, storeIndex);
      if (kind == KIND_ZERO) zeroPages += pages;
      else dataPages += pages;
    }
    prevEnd = vaddr + span; // may be 0 (= 2^64) for the very last page of the address space
    if (prevEnd == 0 && i + 1 < count) {
      return fail(Code.PAGEMAP_ORDER, at + <u64>ENTRY, 0xffffffffffffffff, load<u64>(p + ENTRY));
    }
  }
  store<u64>(RESULT, dataPages);
  store<u64>(RESULT, zeroPages, 8);
  store<u64>(RESULT, count, 16);
  return ok();
}

/** End address of entry i (0 stands for 2^64). */
// @ts-ignore: decorator
@inline function entryEnd(p: usize): u64 {
  return load<u64>(p) + (<u64>load<u32>(p, 8) << PAGE_SHIFT);
}

/** Whether address < end of the entry at p (an end of 0 means 2^64). */
// @ts-ignore: decorator
@inline function endsAfter(p: usize, address: u64): bool {
  const end = entryEnd(p);
  return end == 0 || end > address;
}

/**
 * In a validated page map of `count` entries at ptr: the index of the first entry that ends after
 * `address` (count if none). The entry holds the address when its vaddr <= address.
 * Returns -1 (BAD_ARGUMENT) if the map is outside memory.
 */
export function pagemapFind(ptr: usize, count: u32, address: u64): i32 {
  if (!inBounds(ptr, <u64>count * <u64>ENTRY)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, <u64>count) - 2;
  let lo: u32 = 0;
  let hi: u32 = count;
  while (lo < hi) {
    const mid = lo + ((hi - lo) >> 1);
    if (endsAfter(ptr + <usize>mid * ENTRY, address)) hi = mid;
    else lo = mid + 1;
  }
  return <i32>lo;
}

/** Count DATA and ZERO pages of a validated page map within [start, end); results in RESULT. */
export function pagemapCount(ptr: usize, count: u32, start: u64, end: u64): i32 {
  if (!inBounds(ptr, <u64>count * <u64>ENTRY)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, <u64>count);
  let dataPages: u64 = 0;
  let zeroPages: u64 = 0;
  if (end > start) {
    let i = <u32>pagemapFind(ptr, count, start);
    for (; i < count; i++) {
      const p = ptr + <usize>i * ENTRY;
      const vaddr = load<u64>(p);
      if (vaddr >= end) break;
      let e = entryEnd(p);
      if (e == 0 || e > end) e = end;
      const s = vaddr > start ? vaddr : start;
      const pages = e > s ? (e - s) >> PAGE_SHIFT : 0;
      if (<u32>load<u16>(p, 12) == KIND_ZERO) zeroPages += pages;
      else dataPages += pages;
    }
  }
  store<u64>(RESULT, dataPages);
  store<u64>(RESULT, zeroPages, 8);
  return ok();
}

// ---- Page store ----------------------------------------------------------------------------------

const ROW: usize = 24;

/**
 * Check a page-store table of `count` rows at ptr, sorted by key: the PAGEDATA sections of one process
 * must cover store indices 0 ... N-1 exactly once. Writes N to RESULT. Errors name the offending
 * section's offset (expected = the store index it should start at, found = its key).
 */
export function pagestoreCheck(ptr: usize, count: u32): i32 {
  if (!inBounds(ptr, <u64>count * <u64>ROW)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, <u64>count);
  let next: u64 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const p = ptr + <usize>i * ROW;
    const key = load<u64>(p);
    const pages = load<u64>(p, 8);
    if (key != next || pages == 0) return fail(Code.PAGEDATA_COVERAGE, load<u64>(p, 16), next, key);
    next = key + pages;
  }
  store<u64>(RESULT, next);
  return ok();
}

/** In a checked page-store table: the row holding store index `index`, or -1. */
export function pagestoreFind(ptr: usize, count: u32, index: u64): i32 {
  if (!inBounds(ptr, <u64>count * <u64>ROW)) return fail(Code.BAD_ARGUMENT, <u64>ptr, 0, <u64>count) - 2;
  let lo: u32 = 0;
  let hi: u32 = count;
  while (lo < hi) {
    const mid = lo + ((hi - lo) >> 1);
    if (load<u64>(ptr + <usize>mid * ROW) <= index) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return -1;
  const p = ptr + <usize>(lo - 1) * ROW;
  if (index - load<u64>(p) < load<u64>(p, 8)) return <i32>(lo - 1);
  return -1;
}
