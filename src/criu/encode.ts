/**
 * The inverse of protobuf.ts / images.ts for the same tables: encode decoded messages and whole image
 * files. Fields are written in field-number order, repeated scalars unpacked (proto2's default), unknown
 * fields last, as protobuf-c does, so decoding then encoding a CRIU image gives the same bytes. Used by
 * tests (synthetic images: parent chains, old pagemaps, 10,000-VMA mm) and by tools that write images.
 *
 * @module
 */
import { IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, INVENTORY_MAGIC, imageTypeByName } from './images.js';
import { UNKNOWN_KEY, type DecodedMessage, type FieldDef, type MessageDef, type UnknownField } from './protobuf.js';
import { messageDef } from './schema.js';

const utf8 = new TextEncoder();

/** A growing byte buffer. */
export class ByteWriter {
  private buf = new Uint8Array(256);
  length = 0;
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  byte(b: number): void { this.ensure(1); this.buf[this.length++] = b; }
  bytes(b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.length); this.length += b.length; }
  u32le(v: number): void { this.ensure(4); new DataView(this.buf.buffer).setUint32(this.length, v >>> 0, true); this.length += 4; }
  u64le(v: bigint): void { this.ensure(8); new DataView(this.buf.buffer).setBigUint64(this.length, BigInt.asUintN(64, v), true); this.length += 8; }
  varint(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && v < 0x80000000) {
      let n = v;
      while (n >= 0x80) { this.byte((n & 0x7f) | 0x80); n >>>= 7; }
      this.byte(n);
      return;
    }
    let n = BigInt.asUintN(64, BigInt(v));
    while (n >= 0x80n) { this.byte(Number(n & 0x7fn) | 0x80); n >>= 7n; }
    this.byte(Number(n));
  }
  result(): Uint8Array { return this.buf.slice(0, this.length); }
}

function tag(w: ByteWriter, number: number, wireType: number): void {
  w.varint(number * 8 + wireType);
}

function writeValue(w: ByteWriter, f: FieldDef, v: unknown): void {
  tag(w, f.number, f.wireType);
  switch (f.type) {
    case 'message': {
      const inner = new ByteWriter();
      writeMessage(inner, v as DecodedMessage, f.message!);
      w.varint(inner.length);
      w.bytes(inner.result());
      return;
    }
    case 'string': { const b = utf8.encode(v as string); w.varint(b.length); w.bytes(b); return; }
    case 'bytes': { const b = v as Uint8Array; w.varint(b.length); w.bytes(b); return; }
    case 'bool': w.varint(v ? 1 : 0); return;
    case 'sint32': case 'sint64': {
      const n = BigInt(v as number | bigint);
      w.varint(BigInt.asUintN(64, (n << 1n) ^ (n < 0n ? -1n : 0n)));
      return;
    }
    case 'fixed32': case 'sfixed32': w.u32le(Number(v)); return;
    case 'float': { const b = new Uint8Array(4); new DataView(b.buffer).setFloat32(0, v as number, true); w.bytes(b); return; }
    case 'fixed64': case 'sfixed64': w.u64le(BigInt(v as number | bigint)); return;
    case 'double': { const b = new Uint8Array(8); new DataView(b.buffer).setFloat64(0, v as number, true); w.bytes(b); return; }
    default: w.varint(v as number | bigint); // uint*, int* (negative: 10 bytes), enum
  }
}

/** Append the encoding of `msg` (fields of `def`, then its unknown fields). */
export function writeMessage(w: ByteWriter, msg: DecodedMessage, def: MessageDef): void {
  for (const f of def.fields) {
    const v = msg[f.name];
    if (v === undefined) continue;
    if (f.repeated) for (const x of v as unknown[]) writeValue(w, f, x);
    else writeValue(w, f, v);
  }
  for (const u of (msg[UNKNOWN_KEY] as UnknownField[] | undefined) ?? []) {
    tag(w, u.number, u.wireType);
    if (u.value instanceof Uint8Array) { w.varint(u.value.length); w.bytes(u.value); }
    else if (u.wireType === 1) w.u64le(BigInt(u.value));
    else if (u.wireType === 5) w.u32le(Number(u.value));
    else w.varint(u.value);
  }
}

export function encodeMessage(msg: DecodedMessage, def: MessageDef | string): Uint8Array {
  const w = new ByteWriter();
  writeMessage(w, msg, typeof def === 'string' ? messageDef(def) : def);
  return w.result();
}

/**
 * Encode an image file from `{ magic, entries }` (decoded form; `extra` payloads as bytes, or as the
 * decoder gives them for TCP_STREAM, IPCNS_SEM and IPCNS_MSG).
 */
export function encodeImage(magic: string, entries: DecodedMessage[]): Uint8Array {
  const type = imageTypeByName(magic);
  if (!type) throw new Error(`encodeImage: unknown image type ${magic}`);
  const w = new ByteWriter();
  if (type.magic !== INVENTORY_MAGIC) w.u32le(type.service ? IMG_SERVICE_MAGIC : IMG_COMMON_MAGIC);
  w.u32le(type.magic);
  entries.forEach((e, i) => {
    let def: MessageDef;
    if (type.layout === 'pagemap') def = messageDef(i === 0 ? 'pagemap_head' : 'pagemap_entry');
    else if (type.layout === 'ghost') def = messageDef(i === 0 ? 'ghost_file_entry' : 'ghost_chunk_entry');
    else def = messageDef(type.message);
    const body = encodeMessage(e, def);
    w.u32le(body.length);
    w.bytes(body);
    const extra = e['extra'];
    if (extra instanceof Uint8Array) {
      w.bytes(extra);
      const pad = magic === 'IPCNS_SHM' ? (4 - (extra.length % 4)) % 4 : 0;
      for (let k = 0; k < pad; k++) w.byte(0);
    } else if (extra && typeof extra === 'object' && magic === 'TCP_STREAM') {
      const t = extra as { inq: Uint8Array; outq: Uint8Array };
      w.bytes(t.inq);
      w.bytes(t.outq);
    } else if (Array.isArray(extra) && magic === 'IPCNS_SEM') {
      for (const v of extra as number[]) { w.byte(v & 255); w.byte(v >> 8); }
      const pad = (8 - ((extra.length * 2) % 8)) % 8;
      for (let k = 0; k < pad; k++) w.byte(0);
    } else if (Array.isArray(extra) && magic === 'IPCNS_MSG') {
      for (let k = 0; k < extra.length; k += 2) {
        const m = encodeMessage(extra[k] as DecodedMessage, 'ipc_msg');
        w.u32le(m.length);
        w.bytes(m);
        const data = extra[k + 1] as Uint8Array;
        w.bytes(data);
        for (let p = data.length; p % 8; p++) w.byte(0);
      }
    }
  });
  return w.result();
}
