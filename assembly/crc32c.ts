// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8.
// crc32cUpdate(crc, ptr, len) follows the zlib convention: pass the CRC of the bytes so far (0 to
// start) and get the CRC of the bytes so far followed by [ptr, ptr + len).

import { Code, fail, inBounds } from './result';

const POLY: u32 = 0x82f63b78;

/** Eight 256-entry tables of u32: TABLES + k * 1024 + byte * 4. */
const TABLES: usize = memory.data(8 * 256 * 4, 64);

function buildTables(): void {
  for (let i: u32 = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    store<u32>(TABLES + (<usize>i << 2), c);
  }
  for (let i: u32 = 0; i < 256; i++) {
    let c = load<u32>(TABLES + (<usize>i << 2));
    for (let t: usize = 1; t < 8; t++) {
      c = (c >>> 8) ^ load<u32>(TABLES + (<usize>(c & 0xff) << 2));
      store<u32>(TABLES + (t << 10) + (<usize>i << 2), c);
    }
  }
}
buildTables();

// @ts-ignore: decorator
@inline function T(k: usize, b: u32): u32 {
  return load<u32>(TABLES + (k << 10) + (<usize>b << 2));
}

/** CRC32C over [ptr, ptr + len) without bounds checks (internal). */
export function crc32cRaw(crc: u32, ptr: usize, len: usize): u32 {
  let c = ~crc;
  let p = ptr;
  let n = len;
  while (n >= 8) {
    const lo = load<u32>(p) ^ c;
    const hi = load<u32>(p, 4);
    c =
      T(7, lo & 0xff) ^ T(6, (lo >>> 8) & 0xff) ^ T(5, (lo >>> 16) & 0xff) ^ T(4, lo >>> 24) ^
      T(3, hi & 0xff) ^ T(2, (hi >>> 8) & 0xff) ^ T(1, (hi >>> 16) & 0xff) ^ T(0, hi >>> 24);
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = (c >>> 8) ^ T(0, (c ^ <u32>load<u8>(p)) & 0xff);
    p++;
    n--;
  }
  return ~c;
}

/**
 * Continue a CRC32C over [ptr, ptr + len). Returns the new CRC. If the range is outside memory, returns
 * 0 and sets errorCode = BAD_ARGUMENT (the TypeScript side validates ranges first).
 */
export function crc32cUpdate(crc: u32, ptr: usize, len: usize): u32 {
  if (!inBounds(ptr, <u64>len)) {
    fail(Code.BAD_ARGUMENT, <u64>ptr, 0, <u64>len);
    return 0;
  }
  return crc32cRaw(crc, ptr, len);
}
