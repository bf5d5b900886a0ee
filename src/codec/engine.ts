/**
 * The work engine: a second instance of the Wasm core (same module as {@link CryoWasm}) with its own
 * fixed work buffers, for the bulk jobs — section codecs (FORMAT §3.1), page hashes, page comparison.
 * One engine per thread; every method is synchronous, so one engine serves one async flow safely.
 * Environment-neutral: the same code runs in Node, browsers and workers.
 *
 * Buffers live in Wasm memory; `a`, `b` and `io` are exposed as Uint8Array views so that callers can
 * read file bytes straight into them (no copy). Views stay valid: memory is grown once, at creation.
 *
 * @module
 */
import { CryoFormatError, CryoWasmError } from '../core/errors.js';
import { Codec, PAGE_SIZE, type SectionInfo } from '../core/format.js';
import type { CryoWasm } from '../core/wasm.js';

interface EngineExports {
  memory: WebAssembly.Memory;
  lzErrorPos: WebAssembly.Global;
  diffBytesTotal: WebAssembly.Global;
  slotReserve(bytes: bigint): number;
  crc32cUpdate(crc: number, ptr: number, len: number): number;
  pageHashes(ptr: number, pages: number, out: number): number;
  isZeroBlock(ptr: number, len: number): number;
  comparePages(a: number, b: number, pages: number, flags: number): number;
  countDiffBytes(a: number, b: number, len: number): number;
  diffRanges(a: number, b: number, len: number, out: number, max: number): number;
  xorBytes(dst: number, a: number, b: number, len: number): void;
  lz4Compress(src: number, srcLen: number, dst: number, dstCap: number, table: number, hashLog: number, accel: number): number;
  lz4Decompress(src: number, srcLen: number, dst: number, dstLen: number): number;
  deltaEncode(src: number, dst: number, len: number, dist: number): void;
  deltaDecode(buf: number, len: number, dist: number): void;
}

/** Largest payload an engine handles in one call (the largest section a codec may encode). */
export const ENGINE_BLOCK = 1 << 20;
/** Pages per engine block. */
export const BLOCK_PAGES = ENGINE_BLOCK / PAGE_SIZE;
const SLACK = 64;
const BUFFER = ENGINE_BLOCK + 4096 + SLACK * 2;
const HASH_LOG_MAX = 16;
const MAX_RANGES = 4096;

/** Compression settings derived from a level. */
export interface CodecLevel {
  hashLog: number;
  accel: number;
  /** Delta distances (bytes) tried per section; 0 = no filter. */
  distances: number[];
  /** Bytes of the section used to choose the filter. */
  sample: number;
}

/** Level 1 (fastest) … 9; the default is 3. */
export function codecLevel(level: number): CodecLevel {
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new RangeError(`--level ${level}: expected 1 to 9`);
  if (level === 1) return { hashLog: 14, accel: 2, distances: [0, 64], sample: 8192 };
  if (level === 2) return { hashLog: 15, accel: 1, distances: [0, 16, 32, 64], sample: 8192 };
  if (level === 3) return { hashLog: 16, accel: 1, distances: [0, 8, 16, 24, 32, 48, 64], sample: 8192 };
  return { hashLog: 16, accel: 1, distances: [0, 8, 16, 24, 32, 40, 48, 56, 64, 96, 128], sample: 4096 * Math.min(8, level - 2) };
}

export const DEFAULT_LEVEL = 3;

/** An encoded section payload. */
export interface Encoded {
  codec: number;
  /** A copy (safe to keep). */
  payload: Uint8Array;
  /** CRC32C of the decoded bytes (codecs 1 and 2 record it in the payload). */
  rawCrc?: number;
}

const LZ_MESSAGES: Record<number, [string, string]> = {
  [-1]: ['a length, literal run or offset runs past the end of the payload', 'more payload bytes'],
  [-2]: ['literals run past raw_length', 'literals within raw_length'],
  [-3]: ['match offset is 0 or points before the start of the output', 'an offset between 1 and the bytes decoded so far'],
  [-4]: ['match runs past raw_length', 'a match within raw_length'],
  [-5]: ['payload ends before raw_length bytes were decoded', 'exactly raw_length decoded bytes'],
  [-6]: ['delta filter distance out of range', 'a distance byte of 1 to 255'],
};

const engines = new WeakMap<object, Promise<WasmEngine>>();

export class WasmEngine {
  private readonly x: EngineExports;
  /** Work buffers (pointers into Wasm memory). */
  private readonly pA: number;
  private readonly pB: number;
  private readonly pIo: number;
  private readonly pTable: number;
  private readonly pSmall: number;
  /** Two page-sized (1 MiB) buffers for comparisons and reads, and an I/O buffer for payloads. */
  readonly a: Uint8Array;
  readonly b: Uint8Array;
  readonly io: Uint8Array;
  private readonly small: DataView;

  private constructor(instance: WebAssembly.Instance) {
    this.x = instance.exports as unknown as EngineExports;
    const smallSize = MAX_RANGES * 8 + BLOCK_PAGES * 8 + 64;
    const total = BUFFER * 3 + (4 << HASH_LOG_MAX) + smallSize + 256;
    const base = this.x.slotReserve(BigInt(total));
    if (base === 0) throw new CryoWasmError('cannot reserve the Wasm engine work buffers');
    const align = (p: number) => (p + 63) & ~63;
    this.pA = align(base);
    this.pB = align(this.pA + BUFFER);
    this.pIo = align(this.pB + BUFFER);
    this.pTable = align(this.pIo + BUFFER);
    this.pSmall = align(this.pTable + (4 << HASH_LOG_MAX));
    const buffer = this.x.memory.buffer;
    this.a = new Uint8Array(buffer, this.pA, ENGINE_BLOCK + 4096);
    this.b = new Uint8Array(buffer, this.pB, ENGINE_BLOCK + 4096);
    this.io = new Uint8Array(buffer, this.pIo, ENGINE_BLOCK + 4096);
    this.small = new DataView(buffer, this.pSmall, smallSize);
  }

  /** A new engine over a compiled cryo.wasm module. */
  static async create(module: WebAssembly.Module): Promise<WasmEngine> {
    return new WasmEngine(await WebAssembly.instantiate(module, {}));
  }

  /** The engine shared by everything that uses this core instance (created once). */
  static for(core: CryoWasm): Promise<WasmEngine> {
    let engine = engines.get(core);
    if (!engine) {
      engine = WasmEngine.create(core.module);
      engines.set(core, engine);
    }
    return engine;
  }

  private trap<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof WebAssembly.RuntimeError) throw new CryoWasmError(`Wasm trap in ${what}: ${error.message}`, { cause: error });
      throw error;
    }
  }

  // ---- pages ----------------------------------------------------------------------------------

  /**
   * XXH64 of each page of `pages` pages held in buffer `a` (0 for an all-zero page). Returns a view
   * valid until the next call.
   */
  hashPagesA(pages: number): BigUint64Array {
    if (pages > BLOCK_PAGES) throw new RangeError(`hashPages: ${pages} pages exceed ${BLOCK_PAGES}`);
    const out = this.pSmall + MAX_RANGES * 8;
    this.trap('pageHashes', () => this.x.pageHashes(this.pA, pages, out));
    return new BigUint64Array(this.x.memory.buffer, out, pages);
  }

  /** Whether `length` bytes (a multiple of 64) at offset `at` of buffer `a` are all zero. */
  isZeroA(at: number, length: number): boolean {
    return this.trap('isZeroBlock', () => this.x.isZeroBlock(this.pA + at, length)) !== 0;
  }

  /**
   * Compare `pages` pages of `a` and `b` (same offsets). Returns the number that differ; `flags` (a
   * view valid until the next call) has 1 for each differing page.
   */
  comparePages(pages: number): { changed: number; flags: Uint8Array } {
    if (pages > BLOCK_PAGES) throw new RangeError(`comparePages: ${pages} pages exceed ${BLOCK_PAGES}`);
    const flags = this.pSmall + MAX_RANGES * 8;
    const changed = this.trap('comparePages', () => this.x.comparePages(this.pA, this.pB, pages, flags));
    return { changed, flags: new Uint8Array(this.x.memory.buffer, flags, pages) };
  }

  /** Number of bytes that differ between page `page` of `a` and of `b`. */
  countDiffBytes(page: number): number {
    const o = page * PAGE_SIZE;
    return this.trap('countDiffBytes', () => this.x.countDiffBytes(this.pA + o, this.pB + o, PAGE_SIZE));
  }

  /**
   * The differing byte ranges of page `page` of `a` and `b`: `[start, end)` offsets within the page,
   * at most `max`; `total` counts every range and `bytes` every differing byte.
   */
  diffRanges(page: number, max: number): { ranges: [number, number][]; total: number; bytes: number } {
    const o = page * PAGE_SIZE;
    const limit = Math.min(max, MAX_RANGES);
    const total = this.trap('diffRanges', () => this.x.diffRanges(this.pA + o, this.pB + o, PAGE_SIZE, this.pSmall, limit));
    const ranges: [number, number][] = [];
    for (let i = 0; i < Math.min(total, limit); i++) {
      ranges.push([this.small.getUint32(i * 8, true), this.small.getUint32(i * 8 + 4, true)]);
    }
    return { ranges, total, bytes: this.x.diffBytesTotal.value as number };
  }

  /** CRC32C (FORMAT §1) of the first `length` bytes of buffer `a`, in place (no copy). */
  crcA(length: number): number {
    return this.trap('crc32cUpdate', () => this.x.crc32cUpdate(0, this.pA, length) >>> 0);
  }

  /** a[at, at + length) ^= b[at, at + length) (length a multiple of 16). */
  xorAB(at: number, length: number): void {
    this.trap('xorBytes', () => this.x.xorBytes(this.pA + at, this.pA + at, this.pB + at, length));
  }

  // ---- codecs ---------------------------------------------------------------------------------

  /**
   * Encode `length` bytes held in buffer `a` with the best codec at `level` (trying the delta
   * distances on a sample); codec RAW when compression does not shrink them. The payload is a copy.
   */
  encodeA(length: number, level: CodecLevel): Encoded {
    if (length > ENGINE_BLOCK) throw new RangeError(`encode: ${length} bytes exceed ${ENGINE_BLOCK}`);
    return this.trap('lz4Compress', () => {
      const x = this.x;
      const hashLog = Math.min(level.hashLog, HASH_LOG_MAX);
      let distance = 0;
      if (level.distances.length > 1 && length >= 2 * level.sample) {
        // Choose the filter on a sample from the middle of the section.
        const start = Math.floor(length / 2 / PAGE_SIZE) * PAGE_SIZE;
        const sample = Math.min(level.sample, length - start);
        let best = Infinity;
        for (const d of level.distances) {
          let src = this.pA + start;
          if (d > 0) {
            x.deltaEncode(this.pA + start, this.pB, sample, d);
            src = this.pB;
          }
          const n = x.lz4Compress(src, sample, this.pIo, sample, this.pTable, hashLog, level.accel) || sample;
          if (n < best) {
            best = n;
            distance = d;
          }
        }
      }
      let src = this.pA;
      if (distance > 0) {
        x.deltaEncode(this.pA, this.pB, length, distance);
        src = this.pB;
      }
      // Payload: raw_crc (u32), [d], LZ4 block (FORMAT §3.1).
      const header = distance > 0 ? 5 : 4;
      const cap = length - 1 - header;
      const n = cap > 0 ? x.lz4Compress(src, length, this.pIo + header, cap, this.pTable, hashLog, level.accel) : 0;
      if (n === 0) return { codec: Codec.RAW, payload: this.a.slice(0, length) };
      const rawCrc = x.crc32cUpdate(0, this.pA, length) >>> 0;
      new DataView(this.io.buffer, this.io.byteOffset).setUint32(0, rawCrc, true);
      if (distance > 0) this.io[4] = distance / 8;
      return { codec: distance > 0 ? Codec.LZ4_DELTA : Codec.LZ4, payload: this.io.slice(0, n + header), rawCrc };
    });
  }

  /** Encode `bytes` (copied into buffer `a` first). */
  encode(bytes: Uint8Array, level: CodecLevel): Encoded {
    this.a.set(bytes);
    return this.encodeA(bytes.length, level);
  }

  /**
   * Decode a section's stored payload (codec 1 or 2) into buffer `a` (`rawLength` bytes, valid until
   * the next call). Throws CryoFormatError naming the byte of the payload that is malformed.
   */
  decodeToA(section: Pick<SectionInfo, 'codec' | 'rawLength' | 'offset' | 'payloadOffset' | 'typeName'>, stored: Uint8Array): Uint8Array {
    const raw = section.rawLength;
    if (raw > ENGINE_BLOCK) return this.decodeLarge(section, stored);
    if (section.codec === Codec.RAW) {
      this.a.set(stored);
      return this.a.subarray(0, raw);
    }
    if (stored.length > ENGINE_BLOCK + 5) throw new CryoWasmError(`decode: stored payload of ${stored.length} bytes is too large`);
    return this.trap('lz4Decompress', () => {
      this.io.set(stored);
      return this.decodeIo(section, stored.length);
    });
  }

  /**
   * Decode a stored payload of `storedLength` bytes already in the `io` buffer into `a`. With
   * `checkRaw`, the decoded bytes must have the CRC32C the payload records (FORMAT §3.1).
   */
  decodeIo(section: Pick<SectionInfo, 'codec' | 'rawLength' | 'offset' | 'payloadOffset' | 'typeName'>, storedLength: number, checkRaw = false): Uint8Array {
    const raw = section.rawLength;
    return this.trap('lz4Decompress', () => {
      let header = 4;
      let distance = 0;
      if (storedLength < 5) throw this.codecError(section, -1, storedLength);
      if (section.codec === Codec.LZ4_DELTA) {
        header = 5;
        distance = (this.io[4] ?? 0) * 8;
        if (distance === 0) throw this.codecError(section, -6, 4, this.io[4] ?? 0);
      } else if (section.codec !== Codec.LZ4) {
        throw new CryoFormatError({
          code: 'UNKNOWN_CODEC', offset: section.offset, subject: 'section', reason: 'unknown codec',
          expected: 'a codec of FORMAT §3.1 (0, 1, 2)', found: String(section.codec),
        });
      }
      const rc = this.x.lz4Decompress(this.pIo + header, storedLength - header, this.pA, raw);
      if (rc !== 0) throw this.codecError(section, rc, header + (this.x.lzErrorPos.value as number));
      if (distance > 0) this.x.deltaDecode(this.pA, raw, distance);
      if (checkRaw) {
        const recorded = this.recordedRawCrc();
        const actual = this.crcA(raw);
        if (recorded !== actual) {
          throw new CryoFormatError({
            code: 'CODEC_RAW_CRC', offset: section.payloadOffset, subject: `compressed payload (codec ${section.codec}) of the ${section.typeName} section at ${section.offset}`,
            reason: 'decoded bytes do not have the CRC32C the payload records',
            expected: '0x' + recorded.toString(16).toUpperCase().padStart(8, '0'), found: '0x' + actual.toString(16).toUpperCase().padStart(8, '0'),
          });
        }
      }
      return this.a.subarray(0, raw);
    });
  }

  /** The raw_crc recorded at the start of the payload in `io` (codecs 1 and 2). */
  recordedRawCrc(): number {
    return new DataView(this.io.buffer, this.io.byteOffset).getUint32(0, true);
  }

  /** CRC32C of the first `length` bytes of the `io` buffer. */
  crcIo(length: number): number {
    return this.trap('crc32cUpdate', () => this.x.crc32cUpdate(0, this.pIo, length) >>> 0);
  }

  /** Decode into a new array (any size up to the 64 MiB metadata limit). */
  decode(section: Pick<SectionInfo, 'codec' | 'rawLength' | 'offset' | 'payloadOffset' | 'typeName'>, stored: Uint8Array): Uint8Array {
    if (section.codec === Codec.RAW) return stored;
    if (section.rawLength > ENGINE_BLOCK) return this.decodeLarge(section, stored);
    return this.decodeToA(section, stored).slice();
  }

  /** Metadata sections above 1 MiB: decode in a temporary instance-sized region. */
  private decodeLarge(section: Pick<SectionInfo, 'codec' | 'rawLength' | 'offset' | 'payloadOffset' | 'typeName'>, stored: Uint8Array): Uint8Array {
    if (section.codec === Codec.RAW) return stored;
    const out = decodeLz4Js(stored, section);
    return out;
  }

  private codecError(section: Pick<SectionInfo, 'offset' | 'payloadOffset' | 'typeName' | 'codec'>, rc: number, pos: number, found?: number): CryoFormatError {
    const [reason, expected] = LZ_MESSAGES[rc] ?? [`decoding failed (${rc})`, 'a valid payload'];
    return new CryoFormatError({
      code: 'CODEC_PAYLOAD',
      offset: section.payloadOffset + pos,
      subject: `compressed payload (codec ${section.codec}) of the ${section.typeName} section at ${section.offset}`,
      reason,
      expected,
      found: found !== undefined ? String(found) : `byte ${pos} of the payload`,
    });
  }
}

/**
 * Pure-TypeScript decoder for codecs 1 and 2, used for sections larger than the engine's block (only
 * metadata sections, up to 64 MiB). Same checks as the Wasm decoder.
 */
export function decodeLz4Js(stored: Uint8Array, section: Pick<SectionInfo, 'codec' | 'rawLength' | 'offset' | 'payloadOffset' | 'typeName'>): Uint8Array {
  const fail = (rc: number, pos: number) => {
    const [reason, expected] = LZ_MESSAGES[rc]!;
    return new CryoFormatError({
      code: 'CODEC_PAYLOAD', offset: section.payloadOffset + pos,
      subject: `compressed payload (codec ${section.codec}) of the ${section.typeName} section at ${section.offset}`,
      reason, expected, found: `byte ${pos} of the payload`,
    });
  };
  if (stored.length < 5) throw fail(-1, stored.length);
  const header = section.codec === Codec.LZ4_DELTA ? 5 : 4;
  const distance = header === 5 ? (stored[4] ?? 0) * 8 : 0;
  if (header === 5 && distance === 0) throw fail(-6, 4);
  const out = new Uint8Array(section.rawLength);
  let ip = header;
  let op = 0;
  const iend = stored.length;
  for (;;) {
    if (ip >= iend) throw fail(-5, ip);
    const token = stored[ip++]!;
    let lit = token >> 4;
    if (lit === 15) {
      let b = 255;
      while (b === 255) {
        if (ip >= iend) throw fail(-1, ip);
        b = stored[ip++]!;
        lit += b;
      }
    }
    if (lit > iend - ip) throw fail(-1, ip);
    if (lit > out.length - op) throw fail(-2, ip);
    out.set(stored.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip === iend) break;
    if (iend - ip < 2) throw fail(-1, ip);
    const offset = stored[ip]! | (stored[ip + 1]! << 8);
    if (offset === 0 || offset > op) throw fail(-3, ip);
    ip += 2;
    let ml = token & 15;
    if (ml === 15) {
      let b = 255;
      while (b === 255) {
        if (ip >= iend) throw fail(-1, ip);
        b = stored[ip++]!;
        ml += b;
      }
    }
    ml += 4;
    if (ml > out.length - op) throw fail(-4, ip);
    if (offset >= ml) out.copyWithin(op, op - offset, op - offset + ml);
    else for (let i = 0; i < ml; i++) out[op + i] = out[op - offset + i]!;
    op += ml;
  }
  if (op !== out.length) throw fail(-5, iend);
  if (distance > 0) {
    const view = new DataView(out.buffer);
    const words = out.length & ~7;
    for (let i = distance; i < words; i += 8) {
      view.setBigUint64(i, BigInt.asUintN(64, view.getBigUint64(i, true) + view.getBigUint64(i - distance, true)), true);
    }
  }
  return out;
}
