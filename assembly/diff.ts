import { inBounds } from './result';

// Comparing pages (diff, incremental pack): SIMD equality per page, counts of differing bytes, the
// exact byte ranges that differ, and XOR of two buffers (the DELTA page form, docs/FORMAT.md §5.4).

/** Whether the `len` bytes (a multiple of 64) at a and b are equal. */
// @ts-ignore: decorator
@inline function blockEqual(a: usize, b: usize, len: usize): bool {
  for (let o: usize = 0; o < len; o += 64) {
    const x = v128.or(
      v128.or(v128.xor(v128.load(a + o), v128.load(b + o)), v128.xor(v128.load(a + o, 16), v128.load(b + o, 16))),
      v128.or(v128.xor(v128.load(a + o, 32), v128.load(b + o, 32)), v128.xor(v128.load(a + o, 48), v128.load(b + o, 48))),
    );
    if (v128.any_true(x)) return false;
  }
  return true;
}

/**
 * Compare `pages` pages at a and b: flags[i] = 1 if page i differs, else 0. Returns how many differ.
 */
export function comparePages(a: usize, b: usize, pages: u32, flags: usize): u32 {
  const len = <u64>pages << 12;
  if (!inBounds(a, len) || !inBounds(b, len) || !inBounds(flags, <u64>pages)) return 0xffffffff;
  let changed: u32 = 0;
  for (let i: u32 = 0; i < pages; i++) {
    const o = <usize>i << 12;
    const same = blockEqual(a + o, b + o, 4096);
    store<u8>(flags + <usize>i, same ? 0 : 1);
    if (!same) changed++;
  }
  return changed;
}

/** Number of differing bytes in [a, a + len) and [b, b + len) (len a multiple of 16). */
export function countDiffBytes(a: usize, b: usize, len: usize): u32 {
  if ((len & 15) != 0 || !inBounds(a, <u64>len) || !inBounds(b, <u64>len)) return 0xffffffff;
  let n: u32 = 0;
  for (let o: usize = 0; o < len; o += 16) {
    const eq = i8x16.eq(v128.load(a + o), v128.load(b + o));
    const mask = i8x16.bitmask(eq);
    if (mask != 0xffff) n += <u32>popcnt<i32>(~mask & 0xffff);
  }
  return n;
}

/** Differing bytes found by the last diffRanges (every range, also those beyond `max`). */
export let diffBytesTotal: u32 = 0;

/**
 * The ranges of differing bytes of [a, a + len) and [b, b + len) (len a multiple of 16), as pairs of
 * u32 (start, end) at out, at most `max` pairs. Returns the total number of ranges (may exceed max).
 */
export function diffRanges(a: usize, b: usize, len: usize, out: usize, max: u32): u32 {
  if ((len & 15) != 0 || !inBounds(a, <u64>len) || !inBounds(b, <u64>len) || !inBounds(out, <u64>max << 3)) return 0xffffffff;
  let ranges: u32 = 0;
  let total: u32 = 0;
  let open = false;
  let start: u32 = 0;
  for (let o: usize = 0; o < len; o += 16) {
    const mask = i8x16.bitmask(i8x16.eq(v128.load(a + o), v128.load(b + o)));
    if (mask == 0xffff) {
      if (open) {
        if (ranges < max) {
          store<u32>(out + (<usize>ranges << 3), start);
          store<u32>(out + (<usize>ranges << 3), <u32>o, 4);
        }
        ranges++;
        open = false;
      }
      continue;
    }
    for (let k: u32 = 0; k < 16; k++) {
      const differs = ((mask >> k) & 1) == 0;
      const at = <u32>o + k;
      if (differs) {
        total++;
        if (!open) {
          open = true;
          start = at;
        }
      } else if (open) {
        if (ranges < max) {
          store<u32>(out + (<usize>ranges << 3), start);
          store<u32>(out + (<usize>ranges << 3), at, 4);
        }
        ranges++;
        open = false;
      }
    }
  }
  if (open) {
    if (ranges < max) {
      store<u32>(out + (<usize>ranges << 3), start);
      store<u32>(out + (<usize>ranges << 3), <u32>len, 4);
    }
    ranges++;
  }
  diffBytesTotal = total;
  return ranges;
}

/** dst = a XOR b over len bytes (a multiple of 16); dst may be a or b. */
export function xorBytes(dst: usize, a: usize, b: usize, len: usize): void {
  if ((len & 15) != 0 || !inBounds(dst, <u64>len) || !inBounds(a, <u64>len) || !inBounds(b, <u64>len)) return;
  for (let o: usize = 0; o < len; o += 16) {
    v128.store(dst + o, v128.xor(v128.load(a + o), v128.load(b + o)));
  }
}
