/**
 * Reading tar archives (ustar, GNU long names, pax headers) without unpacking them: a random-access
 * index over an uncompressed archive, and a one-pass streaming reader for compressed ones.
 * Environment-neutral.
 *
 * @module
 */
import { CriuFormatError } from './errors.js';

/** A member of a tar archive. */
export interface TarMember {
  /** Path without a leading `./` or `/`; directories without the trailing `/`. */
  name: string;
  /** `file`, `dir`, `symlink`, `hardlink`, or `other`. */
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  size: number;
  /** Offset of the member's data in the (uncompressed) archive. */
  dataOffset: number;
  /** Link target for symlinks and hard links. */
  linkname: string;
  /** Offset of the member's header. */
  headerOffset: number;
}

export const BLOCK = 512;
/** Largest pax / GNU long-name member accepted (its data is read into memory). */
export const MAX_META_SIZE = 1 << 20;
const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');

function cstr(b: Uint8Array, start: number, len: number, decoder: TextDecoder = utf8): string {
  let end = start;
  while (end < start + len && b[end] !== 0) end++;
  return decoder.decode(b.subarray(start, end));
}

function parseNumber(b: Uint8Array, start: number, len: number): number {
  if (b[start]! & 0x80) {
    // GNU base-256
    let n = b[start]! & 0x7f;
    for (let i = start + 1; i < start + len; i++) n = n * 256 + b[i]!;
    return n;
  }
  const s = cstr(b, start, len, latin1).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return NaN;
  return parseInt(s, 8);
}

export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** Does this look like a tar header block (ustar magic, or a valid checksum)? */
export function looksLikeTar(head: Uint8Array): boolean {
  if (head.length < BLOCK) return false;
  if (cstr(head, 257, 5, latin1) === 'ustar') return true;
  return checksumOk(head);
}

function checksumOk(h: Uint8Array): boolean {
  const stored = parseNumber(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return stored === sum;
}

/** A raw header, before long names and pax records are applied. */
export interface RawHeader {
  name: string;
  linkname: string;
  size: number;
  typeflag: string;
}

export function parseHeader(h: Uint8Array, archive: string, offset: number): RawHeader {
  if (!checksumOk(h)) throw new CriuFormatError(archive, offset, 'tar header checksum mismatch (corrupted or not a tar archive)');
  const size = parseNumber(h, 124, 12);
  if (!Number.isSafeInteger(size)) throw new CriuFormatError(archive, offset + 124, 'tar header has an invalid size field');
  let name = cstr(h, 0, 100);
  const magic = cstr(h, 257, 6, latin1);
  if (magic === 'ustar') {
    // POSIX ustar (magic "ustar\0"): a 155-byte prefix. GNU ("ustar  ") uses those bytes otherwise.
    if (h[262] === 0) {
      const prefix = cstr(h, 345, 155);
      if (prefix) name = prefix + '/' + name;
    }
  }
  const typeflag = String.fromCharCode(h[156] || 0x30);
  return { name, linkname: cstr(h, 157, 100), size, typeflag };
}

/** Parse pax extended-header records (`"len key=value\n"`). */
export function parsePax(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  let p = 0;
  while (p < data.length) {
    let sp = p;
    while (sp < data.length && data[sp] !== 0x20) sp++;
    const len = parseInt(latin1.decode(data.subarray(p, sp)), 10);
    if (!(len > 0)) break;
    const rec = utf8.decode(data.subarray(sp + 1, p + len - 1));
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    p += len;
  }
  return out;
}

export function normaliseName(name: string): string {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2);
  while (n.startsWith('/')) n = n.slice(1);
  while (n.endsWith('/')) n = n.slice(0, -1);
  return n;
}

function memberType(typeflag: string, name: string): TarMember['type'] {
  switch (typeflag) {
    case '0': case '\0': case '7': return name.endsWith('/') ? 'dir' : 'file';
    case '5': return 'dir';
    case '2': return 'symlink';
    case '1': return 'hardlink';
    default: return 'other';
  }
}

/**
 * Incremental tar header state: feed headers (and the data of long-name/pax members) in order; get
 * completed members. Shared by the random-access and the streaming readers.
 */
export class TarHeaderState {
  private longName: string | null = null;
  private longLink: string | null = null;
  private pax: Map<string, string> | null = null;

  /** Whether the data of a member with this header must be passed to {@link meta} rather than kept. */
  isMeta(h: RawHeader): boolean {
    return h.typeflag === 'L' || h.typeflag === 'K' || h.typeflag === 'x' || h.typeflag === 'g';
  }

  /** Refuse a pax / long-name member too large to read into memory. */
  checkMeta(h: RawHeader, archive: string, headerOffset: number): void {
    if (h.size > MAX_META_SIZE) {
      throw new CriuFormatError(archive, headerOffset, `tar ${h.typeflag === 'x' || h.typeflag === 'g' ? 'pax header' : 'long-name'} member of ${h.size} bytes exceeds the ${MAX_META_SIZE}-byte limit`);
    }
  }

  meta(h: RawHeader, data: Uint8Array): void {
    if (h.typeflag === 'L') this.longName = cstr(data, 0, data.length);
    else if (h.typeflag === 'K') this.longLink = cstr(data, 0, data.length);
    else if (h.typeflag === 'x') this.pax = parsePax(data);
    // 'g' (global pax) is ignored
  }

  /** The member for a non-meta header; resets the pending long name / pax state. */
  member(h: RawHeader, headerOffset: number, archive: string): TarMember {
    let name = this.longName ?? h.name;
    let linkname = this.longLink ?? h.linkname;
    let size = h.size;
    if (this.pax) {
      name = this.pax.get('path') ?? name;
      linkname = this.pax.get('linkpath') ?? linkname;
      const s = this.pax.get('size');
      if (s !== undefined && /^\d+$/.test(s)) {
        size = Number(s);
        if (!Number.isSafeInteger(size)) throw new CriuFormatError(archive, headerOffset, `tar pax size ${s} is not a safe integer`);
      }
    }
    this.longName = this.longLink = null;
    this.pax = null;
    const type = memberType(h.typeflag, name);
    return {
      name: normaliseName(name), type, size: type === 'dir' || type === 'symlink' || type === 'hardlink' ? 0 : size,
      dataOffset: headerOffset + BLOCK, linkname, headerOffset,
    };
  }
}

/** Bytes that occupy `size` data bytes, rounded up to whole blocks. */
export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** Random-access reader interface (structurally the same as core's ByteSource). */
export interface RandomAccess {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** Index every member of an uncompressed tar archive: one 512-byte read per member (plus long names / pax). */
export async function indexTar(src: RandomAccess, archive: string): Promise<TarMember[]> {
  const members: TarMember[] = [];
  const state = new TarHeaderState();
  let off = 0;
  while (off + BLOCK <= src.size) {
    const h = await src.read(off, BLOCK);
    if (isZeroBlock(h)) break;
    const raw = parseHeader(h, archive, off);
    const dataEnd = off + BLOCK + raw.size;
    if (dataEnd > src.size) {
      throw new CriuFormatError(archive, off, `tar member ${raw.name} of ${raw.size} bytes runs past the end of the archive (${src.size} bytes)`);
    }
    if (state.isMeta(raw)) {
      state.checkMeta(raw, archive, off);
      state.meta(raw, await src.read(off + BLOCK, raw.size));
      off += BLOCK + paddedSize(raw.size);
      continue;
    }
    const m = state.member(raw, off, archive);
    if (m.dataOffset + m.size > src.size) {
      throw new CriuFormatError(archive, off, `tar member ${m.name} of ${m.size} bytes runs past the end of the archive (${src.size} bytes)`);
    }
    members.push(m);
    off += BLOCK + paddedSize(m.size);
  }
  if (off + BLOCK > src.size && off < src.size) {
    throw new CriuFormatError(archive, off, `truncated tar archive: ${src.size - off} bytes where a 512-byte header was expected`);
  }
  return members;
}

/**
 * Parse a tar stream in one pass. `keep(member)` says whether to collect the member's data; the
 * returned map holds the data of kept members. Chunks may be any size.
 */
export async function scanTarStream(
  chunks: AsyncIterable<Uint8Array>, archive: string, keep: (m: TarMember) => boolean,
): Promise<{ members: TarMember[]; data: Map<string, Uint8Array> }> {
  const members: TarMember[] = [];
  const data = new Map<string, Uint8Array>();
  const state = new TarHeaderState();
  let pending: Uint8Array[] = [];
  let pendingLen = 0;
  let pos = 0; // stream offset of the first pending byte

  // what we are waiting for
  type Want =
    | { kind: 'header' }
    | { kind: 'data'; raw: RawHeader; member: TarMember | null; size: number; padded: number; buf: Uint8Array | null; got: number };
  let want: Want = { kind: 'header' };
  let ended = false;

  const take = (n: number): Uint8Array => {
    // take exactly n bytes from pending (n <= pendingLen)
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = pending[0]!;
      const k = Math.min(c.length, n - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (k === c.length) pending.shift(); else pending[0] = c.subarray(k);
    }
    pendingLen -= n;
    pos += n;
    return out;
  };

  for await (const chunk of chunks) {
    if (ended) continue; // drain (the decompressor may want to finish)
    pending.push(chunk);
    pendingLen += chunk.length;
    for (;;) {
      if (want.kind === 'header') {
        if (pendingLen < BLOCK) break;
        const at = pos;
        const h = take(BLOCK);
        if (isZeroBlock(h)) { ended = true; pending = []; pendingLen = 0; break; }
        const raw = parseHeader(h, archive, at);
        let member: TarMember | null = null;
        if (state.isMeta(raw)) state.checkMeta(raw, archive, at);
        else {
          member = state.member(raw, at, archive);
          members.push(member);
        }
        const size = member ? member.size : raw.size;
        const collect = member === null || keep(member);
        let buf: Uint8Array | null = null;
        if (collect) {
          try {
            buf = new Uint8Array(size);
          } catch (error) {
            if (!(error instanceof RangeError)) throw error;
            throw new CriuFormatError(archive, at, `tar member ${member?.name ?? raw.name} of ${size} bytes is too large to read into memory`);
          }
        }
        want = { kind: 'data', raw, member, size, padded: paddedSize(size), buf, got: 0 };
      } else {
        if (pendingLen === 0) break;
        const w = want;
        const n = Math.min(pendingLen, w.padded - w.got);
        if (w.buf) {
          // copy the part of these n bytes that is data (not padding)
          let o = w.got;
          let left = n;
          while (left > 0) {
            const c = pending[0]!;
            const k = Math.min(c.length, left);
            const useful = Math.max(0, Math.min(k, w.size - o));
            if (useful > 0) w.buf.set(c.subarray(0, useful), o);
            o += k;
            left -= k;
            if (k === c.length) pending.shift(); else pending[0] = c.subarray(k);
          }
          pendingLen -= n;
          pos += n;
        } else {
          let left = n;
          while (left > 0) {
            const c = pending[0]!;
            const k = Math.min(c.length, left);
            left -= k;
            if (k === c.length) pending.shift(); else pending[0] = c.subarray(k);
          }
          pendingLen -= n;
          pos += n;
        }
        w.got += n;
        if (w.got < w.padded) break;
        if (w.member === null) state.meta(w.raw, w.buf!);
        else if (w.buf) data.set(w.member.name, w.buf);
        want = { kind: 'header' };
      }
    }
  }
  if (!ended) {
    if (want.kind === 'data') {
      const m = want.member?.name ?? want.raw.name;
      throw new CriuFormatError(archive, pos, `truncated tar archive: member ${m} has ${want.got} of ${want.size} bytes`);
    }
    if (pendingLen > 0) throw new CriuFormatError(archive, pos, `truncated tar archive: ${pendingLen} bytes where a 512-byte header was expected`);
    // a stream that ends right after a member without the end-of-archive blocks is accepted
  }
  return { members, data };
}
