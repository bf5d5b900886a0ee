/**
 * crit's `--pretty` form of decoded images, so that our decode can be shown (and compared) exactly as
 * `crit show` prints it: enums by name, `(criu).hex` fields as `"0x…"` (inherited by nested messages),
 * flags as `" | "`-joined names, `dev` as `"major:minor"`, dictionaries (`task_state`, socket
 * family/type/state/proto) by name, IP addresses as text, bytes as base64 (with the newlines of Python's
 * `base64.encodebytes`), unix socket names quoted-printable. 64-bit values above 2^53 stay `bigint`;
 * {@link stringifyCritJson} writes them as plain JSON numbers, as Python does.
 *
 * Unknown fields are shown under `"$unknown"` (crit would not show them).
 *
 * @module
 */
import type { CriuImage } from './images.js';
import { imageTypeByName } from './images.js';
import { UNKNOWN_KEY, type DecodedMessage, type FieldDef, type MessageDef, type UnknownField } from './protobuf.js';
import { messageDef } from './schema.js';

type FlagTable = readonly (readonly [string, number])[];

export const FLAG_TABLES: Record<string, FlagTable> = {
  'mmap.prot': [['PROT_READ', 0x1], ['PROT_WRITE', 0x2], ['PROT_EXEC', 0x4]],
  'mmap.flags': [['MAP_SHARED', 0x1], ['MAP_PRIVATE', 0x2], ['MAP_DROPPABLE', 0x08], ['MAP_ANON', 0x20], ['MAP_GROWSDOWN', 0x0100]],
  'mmap.status': [
    ['VMA_AREA_NONE', 0], ['VMA_AREA_REGULAR', 1 << 0], ['VMA_AREA_STACK', 1 << 1], ['VMA_AREA_VSYSCALL', 1 << 2],
    ['VMA_AREA_VDSO', 1 << 3], ['VMA_AREA_HEAP', 1 << 5], ['VMA_FILE_PRIVATE', 1 << 6], ['VMA_FILE_SHARED', 1 << 7],
    ['VMA_ANON_SHARED', 1 << 8], ['VMA_ANON_PRIVATE', 1 << 9], ['VMA_AREA_SYSVIPC', 1 << 10],
    ['VMA_AREA_SOCKET', 1 << 11], ['VMA_AREA_VVAR', 1 << 12], ['VMA_AREA_AIORING', 1 << 13],
    ['VMA_AREA_MEMFD', 1 << 14], ['VMA_AREA_SHSTK', 1 << 15], ['VMA_AREA_UPROBES', 1 << 17], ['VMA_UNSUPP', 2 ** 31],
  ],
  'rfile.flags': [
    ['O_WRONLY', 0o1], ['O_RDWR', 0o2], ['O_CREAT', 0o100], ['O_EXCL', 0o200], ['O_NOCTTY', 0o400],
    ['O_TRUNC', 0o1000], ['O_APPEND', 0o2000], ['O_NONBLOCK', 0o4000], ['O_DSYNC', 0o10000], ['FASYNC', 0o20000],
    ['O_DIRECT', 0o40000], ['O_LARGEFILE', 0o100000], ['O_DIRECTORY', 0o200000], ['O_NOFOLLOW', 0o400000],
    ['O_NOATIME', 0o1000000], ['O_CLOEXEC', 0o2000000],
  ],
  'pmap.flags': [['PE_PARENT', 1], ['PE_LAZY', 2], ['PE_PRESENT', 4]],
  'seals.flags': [['F_SEAL_SEAL', 1], ['F_SEAL_SHRINK', 2], ['F_SEAL_GROW', 4], ['F_SEAL_WRITE', 8], ['F_SEAL_FUTURE_WRITE', 0x10]],
};

export const DICTS: Record<string, Record<string, Record<number, string>>> = {
  gen: { task_state: { 1: 'Alive', 3: 'Zombie', 6: 'Stopped' } },
  sk: {
    family: { 1: 'UNIX', 2: 'INET', 10: 'INET6', 16: 'NETLINK', 17: 'PACKET' },
    type: { 1: 'STREAM', 2: 'DGRAM', 3: 'RAW', 5: 'SEQPACKET', 10: 'PACKET' },
    state: {
      1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT1', 5: 'FIN_WAIT2', 6: 'TIME_WAIT', 7: 'CLOSE',
      8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN',
    },
    proto: { 0: 'IP', 6: 'TCP', 17: 'UDP', 136: 'UDPLITE' },
  },
};

/** `"A | B | 0x40"`: names of the set bits, unknown bits as hex; `""` for 0 (crit's map_flags). */
export function mapFlags(value: number | bigint, table: FlagTable): string {
  let v = BigInt(value);
  const names: string[] = [];
  let known = 0n;
  for (const [name, bit] of table) {
    const b = BigInt(bit);
    known |= b;
    if (v & b) names.push(name);
  }
  v &= ~known;
  if (v) names.push('0x' + v.toString(16));
  return names.join(' | ');
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function base64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  if (i < bytes.length) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8);
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + (i + 1 < bytes.length ? B64[(n >> 6) & 63]! : '=') + '=';
  }
  return out;
}

/** Python's `base64.encodebytes`: lines of 76 characters, each ending in `\n`; `""` for no bytes. */
export function base64Lines(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 57) out += base64(bytes.subarray(i, i + 57)) + '\n';
  return out;
}

/** Python's `quopri.encodestring` (quoted-printable, soft line breaks at 76), used by crit for unix socket names. */
export function quotedPrintable(bytes: Uint8Array): string {
  let out = '';
  let line = '';
  const hex = (b: number) => '=' + b.toString(16).toUpperCase().padStart(2, '0');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    let piece: string;
    if (b === 0x0a) { out += line + '\n'; line = ''; continue; }
    const atEol = i + 1 === bytes.length || bytes[i + 1] === 0x0a;
    if ((b === 0x20 || b === 0x09) && !atEol) piece = String.fromCharCode(b);
    else if (b > 0x20 && b < 0x7f && b !== 0x3d) piece = String.fromCharCode(b);
    else piece = hex(b);
    if (line.length + piece.length > 75 && !(atEol && line.length + piece.length === 76)) { out += line + '=\n'; line = ''; }
    line += piece;
  }
  return out + line;
}

function ipAddress(words: readonly unknown[]): string {
  const be = (w: unknown) => {
    const n = Number(w) >>> 0;
    // ntohl on a little-endian host
    return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | (n >>> 24)) >>> 0;
  };
  if (words.length === 1) {
    const v = be(words[0]);
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
  }
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) {
    const v = be(words[i] ?? 0);
    groups.push(v >>> 16, v & 0xffff);
  }
  // compressed form: longest run (>= 2) of zero groups replaced by '::'
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

function castScalar(field: FieldDef, value: unknown, isHex: boolean): unknown {
  if (field.type === 'message') return prettyMessage(value as DecodedMessage, field.message!, isHex);
  if (field.type === 'bytes') {
    const bytes = value as Uint8Array;
    return field.pretty?.conv === 'unix_name' ? quotedPrintable(bytes) : base64Lines(bytes);
  }
  if (field.type === 'enum') return field.enumDef!.byNumber.get(value as number) ?? value;
  if (typeof value === 'number' || typeof value === 'bigint') {
    if (field.type === 'float' || field.type === 'double') return value;
    if (isHex) return '0x' + value.toString(16);
    const p = field.pretty;
    if (p?.dev) {
      const n = Number(value);
      if (p.odev) {
        // glibc major()/minor() of a (32-bit) dev_t
        const major = (n >>> 8) & 0xfff;
        const minor = (n & 0xff) | ((n >>> 12) & 0xfff00);
        return `${major}:${minor}`;
      }
      return `${Math.floor(n / 2 ** 20)}:${n & 0xfffff}`;
    }
    if (p?.flags) {
      const table = FLAG_TABLES[p.flags];
      return table ? mapFlags(value, table) : '0x' + value.toString(16);
    }
    if (p?.dict) return DICTS[p.dict]?.[field.name]?.[Number(value)] ?? value;
  }
  return value;
}

function prettyUnknown(fields: UnknownField[]): unknown[] {
  return fields.map((f) => ({
    field: f.number,
    wire_type: f.wireType,
    value: f.value instanceof Uint8Array ? base64Lines(f.value) : f.value,
  }));
}

/** crit's pretty form of one decoded message. */
export function prettyMessage(msg: DecodedMessage, def: MessageDef, inheritedHex = false): DecodedMessage {
  const out: DecodedMessage = {};
  for (const field of def.fields) {
    if (!(field.name in msg)) continue;
    const value = msg[field.name];
    const isHex = inheritedHex || field.pretty?.hex === true;
    if (field.repeated) {
      const arr = value as unknown[];
      if (field.pretty?.ipadd) out[field.name] = [ipAddress(arr)];
      else out[field.name] = arr.map((v) => castScalar(field, v, isHex));
    } else {
      out[field.name] = castScalar(field, value, isHex);
    }
  }
  if (msg[UNKNOWN_KEY]) out[UNKNOWN_KEY] = prettyUnknown(msg[UNKNOWN_KEY] as UnknownField[]);
  return out;
}

function prettyExtra(extra: unknown): unknown {
  if (extra instanceof Uint8Array) return base64Lines(extra);
  if (Array.isArray(extra)) {
    return extra.map((x) => (x instanceof Uint8Array ? base64Lines(x) : x && typeof x === 'object' ? prettyMessage(x as DecodedMessage, messageDef('ipc_msg')) : x));
  }
  if (extra && typeof extra === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(extra)) o[k] = v instanceof Uint8Array ? base64Lines(v) : v;
    return o;
  }
  return extra;
}

/** `{ magic, entries }` exactly as `crit show` prints the image (before JSON serialisation). */
export function toCritJson(image: CriuImage): { magic: string; entries: DecodedMessage[] } {
  const type = imageTypeByName(image.magic);
  const entries = image.entries.map((entry, i) => {
    let def: MessageDef;
    if (!type) def = { name: 'unknown', fields: [], byNumber: new Map() };
    else if (type.layout === 'pagemap') def = messageDef(i === 0 ? 'pagemap_head' : 'pagemap_entry');
    else if (type.layout === 'ghost') def = messageDef(i === 0 ? 'ghost_file_entry' : 'ghost_chunk_entry');
    else def = messageDef(type.message);
    const out = prettyMessage(entry, def);
    if ('extra' in entry) out['extra'] = prettyExtra(entry['extra']);
    return out;
  });
  return { magic: image.magic, entries };
}

function asciiJson(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** JSON text like Python's `json.dump(indent=4)`: bigints as plain numbers. */
export function stringifyCritJson(value: unknown, indent = 4): string {
  const pad = (n: number) => ' '.repeat(n * indent);
  const go = (v: unknown, depth: number): string => {
    if (typeof v === 'bigint') return v.toString();
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (typeof v === 'string') return asciiJson(v);
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return '[\n' + v.map((x) => pad(depth + 1) + go(x, depth + 1)).join(',\n') + '\n' + pad(depth) + ']';
    }
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length === 0) return '{}';
    return '{\n' + entries.map(([k, x]) => pad(depth + 1) + asciiJson(k) + ': ' + go(x, depth + 1)).join(',\n') +
      '\n' + pad(depth) + '}';
  };
  return go(value, 0);
}
