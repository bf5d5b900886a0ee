import { inBounds } from './result';

// Page fingerprints for pack (dedup) and diff: XXH64 (seed 0) of whole 4096-byte pages, and zero-page
// detection with SIMD. Pointers must lie in memory (the TypeScript side passes its own work buffers).

const P1: u64 = 0x9e3779b185ebca87;
const P2: u64 = 0xc2b2ae3d27d4eb4f;
const P3: u64 = 0x165667b19e3779f9;
const P4: u64 = 0x85ebca77c2b2ae63;
const P5: u64 = 0x27d4eb2f165667c5;

// @ts-ignore: decorator
@inline function round(acc: u64, lane: u64): u64 {
  return rotl<u64>(acc + lane * P2, 31) * P1;
}

// @ts-ignore: decorator
@inline function merge(acc: u64, val: u64): u64 {
  return (acc ^ round(0, val)) * P1 + P4;
}

/** XXH64 with seed 0 of [ptr, ptr + len) where len is a multiple of 32 and at least 32. */
export function xxh64Blocks(ptr: usize, len: usize): u64 {
  if (len == 0 || (len & 31) != 0 || !inBounds(ptr, <u64>len)) return 0;
  let v1: u64 = P1 + P2;
  let v2: u64 = P2;
  let v3: u64 = 0;
  let v4: u64 = 0 - P1;
  const end = ptr + len;
  for (let p = ptr; p < end; p += 32) {
    v1 = round(v1, load<u64>(p));
    v2 = round(v2, load<u64>(p, 8));
    v3 = round(v3, load<u64>(p, 16));
    v4 = round(v4, load<u64>(p, 24));
  }
  let h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
  h = merge(h, v1);
  h = merge(h, v2);
  h = merge(h, v3);
  h = merge(h, v4);
  h += <u64>len;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

/** Whether [ptr, ptr + len) is all zeros (len a multiple of 64). */
export function isZeroBlock(ptr: usize, len: usize): bool {
  if ((len & 63) != 0 || !inBounds(ptr, <u64>len)) return false;
  const end = ptr + len;
  for (let p = ptr; p < end; p += 64) {
    const v = v128.or(v128.or(v128.load(p), v128.load(p, 16)), v128.or(v128.load(p, 32), v128.load(p, 48)));
    if (v128.any_true(v)) return false;
  }
  return true;
}

/**
 * For `pages` pages at ptr: write one u64 per page at out, the page's XXH64, or 0 for an all-zero page
 * (a non-zero page whose hash is 0 gets 1). Returns the number of zero pages (0xFFFFFFFF for a
 * range outside memory).
 */
export function pageHashes(ptr: usize, pages: u32, out: usize): u32 {
  if (!inBounds(ptr, <u64>pages << 12) || !inBounds(out, <u64>pages << 3)) return 0xffffffff;
  let zeros: u32 = 0;
  for (let i: u32 = 0; i < pages; i++) {
    const p = ptr + (<usize>i << 12);
    let h: u64 = 0;
    if (isZeroBlock(p, 4096)) zeros++;
    else {
      h = xxh64Blocks(p, 4096);
      if (h == 0) h = 1;
    }
    store<u64>(out + (<usize>i << 3), h);
  }
  return zeros;
}
