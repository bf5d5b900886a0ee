/**
 * A small protobuf (proto2) wire-format decoder driven by message tables (see schema.ts).
 *
 * Decoded messages are plain objects keyed by field name:
 * - 32-bit integer types, bool, float, double: `number` / `boolean`;
 * - 64-bit integer types: `number` when the value is a safe integer, otherwise `bigint`
 *   (see {@link Int64}); use {@link toBigInt} / {@link toNumber} to normalise;
 * - enums: the number (names are in the table; the pretty printer shows them);
 * - string: `string` (UTF-8, replacement characters for bad bytes); bytes: `Uint8Array` (a view, not a copy);
 * - nested messages: objects; repeated fields: arrays (packed and unpacked encodings both accepted).
 * Fields the table does not know are kept under the key {@link UNKNOWN_KEY} as {@link UnknownField}s
 * (number, wire type, raw value, offset), never dropped and never fatal.
 *
 * @module
 */
import { WireError, type DecodeWarning } from './errors.js';

/** A 64-bit integer as decoded: a `number` when it is a safe integer, else a `bigint`. */
export type Int64 = number | bigint;

export type ScalarType =
  | 'uint32' | 'uint64' | 'int32' | 'int64' | 'sint32' | 'sint64' | 'bool' | 'string' | 'bytes'
  | 'fixed32' | 'fixed64' | 'sfixed32' | 'sfixed64' | 'float' | 'double';

/** How crit's `--pretty` shows a field (CRIU's `(criu)` field options). */
export interface PrettyOptions {
  hex?: boolean;
  ipadd?: boolean;
  /** Name of a flag table (pretty.ts): `mmap.prot`, `mmap.flags`, `mmap.status`, `rfile.flags`, `pmap.flags`, `seals.flags`. */
  flags?: string;
  dev?: boolean;
  odev?: boolean;
  /** Name of a value dictionary: `gen` or `sk`. */
  dict?: string;
  /** Custom bytes conversion: `unix_name`. */
  conv?: string;
}

export interface EnumDef {
  readonly name: string;
  readonly byNumber: ReadonlyMap<number, string>;
}

export interface FieldDef {
  readonly number: number;
  readonly name: string;
  readonly type: ScalarType | 'enum' | 'message';
  readonly repeated: boolean;
  readonly required: boolean;
  /** For `message` fields. */
  readonly message?: MessageDef;
  /** For `enum` fields. */
  readonly enumDef?: EnumDef;
  readonly pretty?: PrettyOptions;
  /** Expected wire type of one (unpacked) value. */
  readonly wireType: number;
}

export interface MessageDef {
  readonly name: string;
  /** In field-number order. */
  readonly fields: readonly FieldDef[];
  readonly byNumber: ReadonlyMap<number, FieldDef>;
}

/** A field the table does not know, or whose wire type did not match the table. */
export interface UnknownField {
  number: number;
  /** 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
  wireType: number;
  /** varint: Int64; fixed64: bigint; fixed32: number; length-delimited: the bytes. */
  value: Int64 | Uint8Array;
  /** Offset of the field's tag, relative to the start of the decoded buffer (plus `base`). */
  offset: number;
}

/** Key under which a decoded message keeps its unknown fields. */
export const UNKNOWN_KEY = '$unknown';

export type DecodedMessage = Record<string, unknown>;

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

export function wireTypeOf(type: ScalarType | 'enum' | 'message'): number {
  switch (type) {
    case 'fixed64': case 'sfixed64': case 'double': return WIRE_FIXED64;
    case 'fixed32': case 'sfixed32': case 'float': return WIRE_FIXED32;
    case 'string': case 'bytes': case 'message': return WIRE_LEN;
    default: return WIRE_VARINT;
  }
}

const TWO32 = 4294967296;
const utf8 = new TextDecoder('utf-8');

export function toBigInt(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'boolean') return v ? 1n : 0n;
  return 0n;
}

/** A number (lossy above 2^53) from a decoded integer. */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return 0;
}

/** Cursor over a byte buffer; offsets reported in errors are `base + position`. */
export class WireReader {
  pos: number;
  /** End of the message being decoded (nested messages narrow it while they are read). */
  end: number;
  /** Current message nesting depth (bounded: hostile input cannot exhaust the stack). */
  depth = 0;
  readonly view: DataView;
  constructor(readonly buf: Uint8Array, start: number, end: number, readonly base = 0) {
    this.pos = start;
    this.end = end;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(at: number, reason: string): never {
    throw new WireError(this.base + at, reason);
  }

  /** A varint as two 32-bit halves (lo, hi), written into `out`. */
  varint64(out: Uint32Array): void {
    const buf = this.buf;
    const start = this.pos;
    let lo = 0;
    let hi = 0;
    let p = this.pos;
    let b: number;
    // bytes 0..3: bits 0..27
    for (let shift = 0; shift < 28; shift += 7) {
      if (p >= this.end) this.fail(start, 'varint runs past the end of its message');
      b = buf[p++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) { this.pos = p; out[0] = lo >>> 0; out[1] = 0; return; }
    }
    // byte 4: bits 28..34
    if (p >= this.end) this.fail(start, 'varint runs past the end of its message');
    b = buf[p++]!;
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      let done = false;
      for (let shift = 3; shift < 32; shift += 7) {
        if (p >= this.end) this.fail(start, 'varint runs past the end of its message');
        b = buf[p++]!;
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) { done = true; break; }
      }
      if (!done) this.fail(start, 'varint longer than 10 bytes');
    }
    this.pos = p;
    out[0] = lo >>> 0;
    out[1] = hi >>> 0;
  }

  /** A varint that must fit in 32 bits (lengths, tags): the low 32 bits, unsigned. */
  varint32(): number {
    const buf = this.buf;
    let p = this.pos;
    if (p < this.end) {
      const b0 = buf[p]!;
      if (b0 < 0x80) { this.pos = p + 1; return b0; }
    }
    const at = this.pos;
    this.varint64(scratch);
    if (scratch[1] !== 0) this.fail(at, 'length does not fit in 32 bits');
    return scratch[0]!;
  }

  skipBytes(n: number, what: string, name?: string): number {
    const at = this.pos;
    if (n > this.end - this.pos) {
      const label = name === undefined ? what : `${what} ${name}`;
      this.fail(at, `${label} of ${n} bytes runs past the end of its message (${this.end - this.pos} bytes left)`);
    }
    this.pos += n;
    return at;
  }
}

const scratch = new Uint32Array(2);

/** Deepest message nesting accepted (CRIU's deepest real nesting is under 10; cgroup dirs recurse). */
export const MAX_DEPTH = 100;

function u64FromHalves(lo: number, hi: number): Int64 {
  if (hi < 0x200000) return hi * TWO32 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function i64FromHalves(lo: number, hi: number): Int64 {
  if (hi & 0x80000000) {
    // negative: two's complement
    const nlo = (~lo + 1) >>> 0;
    const nhi = (~hi + (nlo === 0 ? 1 : 0)) >>> 0;
    if (nhi < 0x200000) return -(nhi * TWO32 + nlo);
    return -((BigInt(nhi) << 32n) | BigInt(nlo));
  }
  return u64FromHalves(lo, hi);
}

function zigzag64(lo: number, hi: number): Int64 {
  // n = (u >>> 1) ^ -(u & 1)
  const neg = lo & 1;
  let mlo = ((lo >>> 1) | (hi << 31)) >>> 0;
  let mhi = hi >>> 1;
  if (neg) { mlo = ~mlo >>> 0; mhi = ~mhi >>> 0; }
  return i64FromHalves(mlo, mhi);
}

function readScalar(r: WireReader, type: ScalarType | 'enum'): unknown {
  switch (type) {
    case 'uint32': case 'enum': { r.varint64(scratch); return scratch[0]; }
    case 'int32': { r.varint64(scratch); return scratch[0]! | 0; }
    case 'sint32': { r.varint64(scratch); const n = scratch[0]!; return (n >>> 1) ^ -(n & 1); }
    case 'uint64': { r.varint64(scratch); return u64FromHalves(scratch[0]!, scratch[1]!); }
    case 'int64': { r.varint64(scratch); return i64FromHalves(scratch[0]!, scratch[1]!); }
    case 'sint64': { r.varint64(scratch); return zigzag64(scratch[0]!, scratch[1]!); }
    case 'bool': { r.varint64(scratch); return scratch[0] !== 0 || scratch[1] !== 0; }
    case 'fixed32': { const at = r.skipBytes(4, 'fixed32'); return r.view.getUint32(at, true); }
    case 'sfixed32': { const at = r.skipBytes(4, 'sfixed32'); return r.view.getInt32(at, true); }
    case 'float': { const at = r.skipBytes(4, 'float'); return r.view.getFloat32(at, true); }
    case 'fixed64': {
      const at = r.skipBytes(8, 'fixed64');
      return u64FromHalves(r.view.getUint32(at, true), r.view.getUint32(at + 4, true));
    }
    case 'sfixed64': {
      const at = r.skipBytes(8, 'sfixed64');
      return i64FromHalves(r.view.getUint32(at, true), r.view.getUint32(at + 4, true));
    }
    case 'double': { const at = r.skipBytes(8, 'double'); return r.view.getFloat64(at, true); }
    case 'string': case 'bytes': {
      const len = r.varint32();
      const at = r.skipBytes(len, type);
      const bytes = r.buf.subarray(at, at + len);
      return type === 'string' ? utf8.decode(bytes) : bytes;
    }
  }
}

function readUnknownValue(r: WireReader, wireType: number, tagAt: number, number: number): Int64 | Uint8Array {
  switch (wireType) {
    case WIRE_VARINT: r.varint64(scratch); return u64FromHalves(scratch[0]!, scratch[1]!);
    case WIRE_FIXED64: {
      const at = r.skipBytes(8, 'fixed64');
      return (BigInt(r.view.getUint32(at + 4, true)) << 32n) | BigInt(r.view.getUint32(at, true));
    }
    case WIRE_FIXED32: { const at = r.skipBytes(4, 'fixed32'); return r.view.getUint32(at, true); }
    case WIRE_LEN: {
      const len = r.varint32();
      const at = r.skipBytes(len, 'length-delimited field');
      return r.buf.subarray(at, at + len);
    }
    default:
      return r.fail(tagAt, `invalid wire type ${wireType} for field ${number}`);
  }
}

const requiredCache = new WeakMap<MessageDef, FieldDef[]>();
function requiredFields(def: MessageDef): FieldDef[] {
  let r = requiredCache.get(def);
  if (!r) { r = def.fields.filter((f) => f.required); requiredCache.set(def, r); }
  return r;
}

/** Options and diagnostics for one decode. */
export interface DecodeContext {
  /** Non-fatal problems (missing required fields, wire-type mismatches); offsets include `base`. */
  warnings?: DecodeWarning[];
}

/**
 * Decode the message in `buf[start, end)` with table `def`. `base` is added to every offset reported
 * (pass the file offset of `buf[0]` so errors point into the file).
 * @throws WireError on malformed wire data (invalid wire type, truncated value, field number 0).
 */
export function decodeMessage(
  buf: Uint8Array, start: number, end: number, def: MessageDef, ctx: DecodeContext = {}, base = 0,
): DecodedMessage {
  const r = new WireReader(buf, start, end, base);
  return decodeWith(r, end, def, ctx);
}

/**
 * Decode the message in `[r.pos, end)` with a reader that can be reused for many messages of one buffer
 * (no allocation per message). Leaves `r.pos` at `end`.
 */
export function decodeMessageAt(r: WireReader, end: number, def: MessageDef, ctx: DecodeContext = {}): DecodedMessage {
  const outerEnd = r.end;
  r.end = end;
  try {
    return decodeWith(r, end, def, ctx);
  } finally {
    r.end = outerEnd;
  }
}

function decodeWith(r: WireReader, end: number, def: MessageDef, ctx: DecodeContext): DecodedMessage {
  const out: DecodedMessage = {};
  const startPos = r.pos;
  while (r.pos < end) {
    const tagAt = r.pos;
    r.varint64(scratch);
    if (scratch[1] !== 0) r.fail(tagAt, 'field tag does not fit in 32 bits');
    const tag = scratch[0]!;
    const number = tag >>> 3;
    const wireType = tag & 7;
    if (number === 0) r.fail(tagAt, 'field number 0');
    const field = def.byNumber.get(number);
    if (field !== undefined) {
      if (wireType === field.wireType) {
        let value: unknown;
        if (field.type === 'message') {
          const len = r.varint32();
          const at = r.skipBytes(len, 'message field', field.name);
          const outerEnd = r.end;
          r.pos = at;
          r.end = at + len;
          if (++r.depth > MAX_DEPTH) r.fail(tagAt, `messages nested deeper than ${MAX_DEPTH}`);
          value = decodeWith(r, at + len, field.message!, ctx);
          r.depth--;
          r.end = outerEnd;
        } else {
          value = readScalar(r, field.type);
        }
        if (field.repeated) {
          const arr = out[field.name] as unknown[] | undefined;
          if (arr) arr.push(value); else out[field.name] = [value];
        } else {
          out[field.name] = value; // proto2: the last one wins (messages would merge; CRIU never splits them)
        }
        continue;
      }
      if (wireType === WIRE_LEN && field.repeated && field.wireType !== WIRE_LEN) {
        // packed repeated scalars
        const len = r.varint32();
        const at = r.skipBytes(len, 'packed field', field.name);
        const outerEnd = r.end;
        r.pos = at;
        r.end = at + len;
        let arr = out[field.name] as unknown[] | undefined;
        if (!arr) { arr = []; out[field.name] = arr; }
        while (r.pos < at + len) arr.push(readScalar(r, field.type as ScalarType | 'enum'));
        r.end = outerEnd;
        continue;
      }
      ctx.warnings?.push({
        offset: r.base + tagAt,
        message: `${def.name}.${field.name} (field ${number}) has wire type ${wireType}, expected ${field.wireType}: kept as unknown`,
      });
    }
    const value = readUnknownValue(r, wireType, tagAt, number);
    let unknown = out[UNKNOWN_KEY] as UnknownField[] | undefined;
    if (!unknown) { unknown = []; out[UNKNOWN_KEY] = unknown; }
    unknown.push({ number, wireType, value, offset: r.base + tagAt });
  }
  if (r.pos > end) r.fail(startPos, 'message runs past its end');
  if (ctx.warnings) {
    for (const f of requiredFields(def)) {
      if (!(f.name in out)) {
        ctx.warnings.push({ offset: r.base + startPos, message: `${def.name}: required field ${f.name} (${f.number}) missing` });
      }
    }
  }
  return out;
}
