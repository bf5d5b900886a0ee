import { inBounds } from './result';

// Section codecs (docs/FORMAT.md §3.1): the LZ4 block format (codec 1) and the u64 delta filter used
// with it (codec 2). Both directions; the decoder checks every length and offset against its input and
// output and reports a malformed payload as a negative code with the payload position in lzErrorPos —
// it never reads or writes outside [src, src + srcLen + 64) and [dst, dst + dstLen + 64).
//
// Buffers: callers give every input and output buffer 64 bytes of slack past its length (short copies
// are done 16 or 32 bytes at a time).

const MINMATCH: usize = 4;
const LASTLITERALS: usize = 5;
const MFLIMIT: usize = 12;
const MAX_DISTANCE: usize = 65535;

/** Payload position of the last decoding error. */
export let lzErrorPos: u32 = 0;

export const LZ_TRUNCATED: i32 = -1; // a length, literal run or offset runs past the payload
export const LZ_LITERALS_PAST_END: i32 = -2; // literals would pass raw_length
export const LZ_BAD_OFFSET: i32 = -3; // match offset 0 or before the start of the output
export const LZ_MATCH_PAST_END: i32 = -4; // match would pass raw_length
export const LZ_SHORT: i32 = -5; // payload ends before raw_length bytes were produced
export const LZ_BAD_FILTER: i32 = -6; // filter distance byte out of range
export const LZ_BAD_ARGUMENT: i32 = -7; // a buffer (with its 32 bytes of slack) outside memory

function lzFail(code: i32, pos: usize): i32 {
  lzErrorPos = <u32>pos;
  return code;
}

// @ts-ignore: decorator
@inline function hash4(v: u32, shift: u32): usize {
  return <usize>((v * 2654435761) >>> shift);
}

/**
 * Compress [src, src + srcLen) into an LZ4 block at dst (capacity dstCap). `table` holds 1 << hashLog
 * u32 (hashLog 10..20). `accel` ≥ 1 trades ratio for speed (as LZ4's acceleration). Returns the block
 * length, or 0 if it would not fit in dstCap (the caller then stores the bytes raw).
 */
export function lz4Compress(src: usize, srcLen: u32, dst: usize, dstCap: u32, table: usize, hashLog: u32, accel: u32): u32 {
  if (hashLog < 10 || hashLog > 20 || accel == 0 || !inBounds(src, <u64>srcLen) || !inBounds(dst, <u64>dstCap) ||
    !inBounds(table, <u64>4 << hashLog)) return 0;
  const shift = 32 - hashLog;
  const srcEnd = src + <usize>srcLen;
  const dstEnd = dst + <usize>dstCap;
  let ip = src;
  let anchor = src;
  let op = dst;
  if (srcLen > <u32>(MFLIMIT + 1)) {
    memory.fill(table, 0, <usize>4 << hashLog);
    const mflimit = srcEnd - MFLIMIT;
    const matchlimit = srcEnd - LASTLITERALS;
    ip++;
    while (ip <= mflimit) {
      let step: usize = 1;
      let attempts: u32 = accel << 6;
      let match: usize = 0;
      let found = false;
      while (ip <= mflimit) {
        const seq = load<u32>(ip);
        const slot = table + (hash4(seq, shift) << 2);
        const cand = src + <usize>load<u32>(slot);
        store<u32>(slot, <u32>(ip - src));
        if (cand < ip && ip - cand <= MAX_DISTANCE && load<u32>(cand) == seq) {
          match = cand;
          found = true;
          break;
        }
        ip += step;
        step = <usize>(attempts++ >> 6);
      }
      if (!found) break;
      while (ip > anchor && match > src && load<u8>(ip - 1) == load<u8>(match - 1)) {
        ip--;
        match--;
      }
      let p = ip + MINMATCH;
      let m = match + MINMATCH;
      let stopped = false;
      while (p + 8 <= matchlimit) {
        const x = load<u64>(p) ^ load<u64>(m);
        if (x != 0) {
          p += <usize>(ctz<u64>(x) >> 3);
          stopped = true;
          break;
        }
        p += 8;
        m += 8;
      }
      if (!stopped) {
        while (p < matchlimit && load<u8>(p) == load<u8>(m)) {
          p++;
          m++;
        }
      }
      const litLen = ip - anchor;
      const matchLen = p - ip;
      if (op + litLen + (litLen >> 8) + (matchLen >> 8) + 16 > dstEnd) return 0;
      const token = op++;
      let t: u32 = 0;
      if (litLen >= 15) {
        t = 15 << 4;
        let l = litLen - 15;
        while (l >= 255) {
          store<u8>(op++, 255);
          l -= 255;
        }
        store<u8>(op++, <u8>l);
      } else {
        t = <u32>litLen << 4;
      }
      memory.copy(op, anchor, litLen);
      op += litLen;
      store<u16>(op, <u16>(ip - match));
      op += 2;
      let ml = matchLen - MINMATCH;
      if (ml >= 15) {
        t |= 15;
        ml -= 15;
        while (ml >= 255) {
          store<u8>(op++, 255);
          ml -= 255;
        }
        store<u8>(op++, <u8>ml);
      } else {
        t |= <u32>ml;
      }
      store<u8>(token, <u8>t);
      ip = p;
      anchor = ip;
      if (ip - 2 > src && ip <= mflimit) {
        store<u32>(table + (hash4(load<u32>(ip - 2), shift) << 2), <u32>(ip - 2 - src));
      }
    }
  }
  const last = srcEnd - anchor;
  if (op + 1 + last + (last / 255) + 1 > dstEnd) return 0;
  if (last >= 15) {
    store<u8>(op++, 15 << 4);
    let l = last - 15;
    while (l >= 255) {
      store<u8>(op++, 255);
      l -= 255;
    }
    store<u8>(op++, <u8>l);
  } else {
    store<u8>(op++, <u8>(last << 4));
  }
  memory.copy(op, anchor, last);
  op += last;
  return <u32>(op - dst);
}

/**
 * Decode the LZ4 block [src, src + srcLen) into exactly dstLen bytes at dst. Returns 0, or a negative
 * LZ_* code with lzErrorPos = the payload position where the problem was found.
 */
export function lz4Decompress(src: usize, srcLen: u32, dst: usize, dstLen: u32): i32 {
  if (!inBounds(src, <u64>srcLen + 32) || !inBounds(dst, <u64>dstLen + 32)) return lzFail(LZ_BAD_ARGUMENT, 0);
  let ip = src;
  const iend = src + <usize>srcLen;
  let op = dst;
  const oend = dst + <usize>dstLen;
  while (true) {
    if (ip >= iend) return lzFail(op == oend && srcLen == 0 ? 0 : LZ_SHORT, ip - src);
    const token = <u32>load<u8>(ip++);
    let lit = <usize>(token >> 4);
    if (lit == 15) {
      let b: u32 = 255;
      while (b == 255) {
        if (ip >= iend) return lzFail(LZ_TRUNCATED, ip - src);
        b = <u32>load<u8>(ip++);
        lit += <usize>b;
      }
    }
    if (lit > iend - ip) return lzFail(LZ_TRUNCATED, ip - src);
    if (lit > oend - op) return lzFail(LZ_LITERALS_PAST_END, ip - src);
    if (lit <= 32) {
      v128.store(op, v128.load(ip));
      v128.store(op, v128.load(ip, 16), 16);
    } else {
      memory.copy(op, ip, lit);
    }
    ip += lit;
    op += lit;
    if (ip == iend) break;
    if (iend - ip < 2) return lzFail(LZ_TRUNCATED, ip - src);
    const offset = <usize>load<u16>(ip);
    if (offset == 0 || offset > op - dst) return lzFail(LZ_BAD_OFFSET, ip - src);
    ip += 2;
    let ml = <usize>(token & 15);
    if (ml == 15) {
      let b: u32 = 255;
      while (b == 255) {
        if (ip >= iend) return lzFail(LZ_TRUNCATED, ip - src);
        b = <u32>load<u8>(ip++);
        ml += <usize>b;
      }
    }
    ml += MINMATCH;
    if (ml > oend - op) return lzFail(LZ_MATCH_PAST_END, ip - src);
    const m = op - offset;
    if (offset >= 16) {
      if (ml <= 32) {
        v128.store(op, v128.load(m));
        v128.store(op, v128.load(m, 16), 16);
      } else if (offset >= ml) {
        memory.copy(op, m, ml);
      } else {
        let i: usize = 0;
        for (; i + 16 <= ml; i += 16) v128.store(op + i, v128.load(m + i));
        for (; i < ml; i++) store<u8>(op + i, load<u8>(m + i));
      }
    } else if (offset == 1) {
      memory.fill(op, load<u8>(m), ml);
    } else {
      let i: usize = 0;
      const pre = ml < 32 ? ml : 32;
      for (; i < pre; i++) store<u8>(op + i, load<u8>(m + i));
      if (ml > 32) {
        const dist = offset * ((15 + offset) / offset);
        for (; i + 16 <= ml; i += 16) v128.store(op + i, v128.load(op + i - dist));
        for (; i < ml; i++) store<u8>(op + i, load<u8>(op + i - dist));
      }
    }
    op += ml;
  }
  if (op != oend) return lzFail(LZ_SHORT, srcLen);
  return 0;
}

/**
 * The u64 delta filter: the little-endian u64 words of [src, src + (len & ~7)) become
 * w[i] − w[i − dist/8] (mod 2^64) for words at byte offset ≥ dist, and stay as they are before;
 * bytes after the last whole word are copied. dist is a multiple of 8, 8..2040.
 */
export function deltaEncode(src: usize, dst: usize, len: usize, dist: usize): void {
  if (dist == 0 || (dist & 7) != 0 || !inBounds(src, <u64>len) || !inBounds(dst, <u64>len)) return;
  const words = len & ~<usize>7;
  const head = dist < words ? dist : words;
  memory.copy(dst, src, head);
  let i = head;
  if (dist >= 16) {
    for (; i + 16 <= words; i += 16) v128.store(dst + i, i64x2.sub(v128.load(src + i), v128.load(src + i - dist)));
  }
  for (; i < words; i += 8) store<u64>(dst + i, load<u64>(src + i) - load<u64>(src + i - dist));
  if (len > words) memory.copy(dst + words, src + words, len - words);
}

/** Undo deltaEncode in place. */
export function deltaDecode(buf: usize, len: usize, dist: usize): void {
  if (dist == 0 || (dist & 7) != 0 || !inBounds(buf, <u64>len)) return;
  const words = len & ~<usize>7;
  let i = dist;
  if (dist >= 16) {
    for (; i + 16 <= words; i += 16) v128.store(buf + i, i64x2.add(v128.load(buf + i), v128.load(buf + i - dist)));
  }
  for (; i < words; i += 8) store<u64>(buf + i, load<u64>(buf + i) + load<u64>(buf + i - dist));
}
