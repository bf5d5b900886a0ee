// Malformed images: truncation, a flipped byte in every section / header / footer, random bytes, and
// hostile values with valid CRCs. Each must give a CryoFormatError naming the offset and what was
// expected, through openImage (and reading every section) and through verify(); never a crash, a
// hang or a Wasm trap.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BytesSource, CountingSource, CryoFormatError, CryoUnsupportedError, CryoWasmError, ImageWriter, MemorySink,
  PageKind, SectionType, openImage, verifyImage, type CryoWasm, type PageMapEntry, type SectionInfo,
} from '../src/index.js';
import { loadWasm } from '../src/node.js';
import { buildSyntheticImage, buildTinyImage, storePage } from './helpers/synthetic-image.js';

let wasm: CryoWasm;
let tiny: Uint8Array;
let synthetic: Uint8Array;
let tinySections: SectionInfo[];
let syntheticSections: SectionInfo[];
let syntheticIndex: SectionInfo;

beforeAll(async () => {
  wasm = await loadWasm();
  tiny = await buildTinyImage(wasm);
  synthetic = await buildSyntheticImage(wasm);
  tinySections = (await openImage(tiny, wasm)).sections.slice();
  const image = await openImage(synthetic, wasm);
  syntheticSections = image.sections.slice();
  syntheticIndex = image.indexSection;
});

function checkError(error: unknown, fileLength: number): CryoFormatError {
  expect(error).not.toBeInstanceOf(WebAssembly.RuntimeError);
  expect(error).not.toBeInstanceOf(CryoWasmError);
  if (!(error instanceof CryoFormatError)) throw new Error(`expected a CryoFormatError, got ${String(error)}`, { cause: error });
  expect(Number.isSafeInteger(error.offset)).toBe(true);
  expect(error.offset).toBeGreaterThanOrEqual(0);
  expect(error.offset).toBeLessThanOrEqual(fileLength);
  expect(error.message).toContain(`at offset ${error.offset}`);
  expect(error.expected, `no expected value in: ${error.message}`).toBeDefined();
  return error;
}

/** openImage, then read every section: must throw a CryoFormatError. */
async function openAndReadAll(bytes: Uint8Array): Promise<CryoFormatError> {
  try {
    const image = await openImage(bytes, wasm);
    for (const s of image.sections) await image.readSection(s);
    for (const p of image.processes) {
      for (const e of p.pageMap) await image.readMemory(p.pid, e.vaddr, Math.min(e.pageCount, 4) * 4096);
    }
  } catch (error) {
    return checkError(error, bytes.length);
  }
  throw new Error('openImage accepted a corrupt image');
}

/** verify(): must report problems, every one a CryoFormatError. */
async function verifyProblems(bytes: Uint8Array): Promise<CryoFormatError[]> {
  const report = await verifyImage(bytes, wasm);
  expect(report.ok).toBe(false);
  expect(report.problems.length).toBeGreaterThan(0);
  for (const problem of report.problems) checkError(problem, bytes.length);
  return report.problems;
}

function flip(bytes: Uint8Array, at: number, mask = 0xff): Uint8Array {
  const copy = bytes.slice();
  copy[at]! ^= mask;
  return copy;
}

/** The offset of the structure holding byte `at`: file header 0, a section, or the footer. */
function structureAt(at: number, sections: SectionInfo[], index: SectionInfo, length: number): number {
  if (at < 16) return 0;
  if (at >= length - 32) return length - 32;
  for (const s of [...sections, index]) if (at >= s.offset && at < s.payloadOffset + s.storedLength) return s.offset;
  throw new Error(`byte ${at} is in no structure`);
}

function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x;
  };
}

describe('a flipped byte', () => {
  it('anywhere in a small image is found, at the offset of its structure, by both paths', async () => {
    const image = await openImage(tiny, wasm);
    for (let at = 0; at < tiny.length; at++) {
      for (const mask of [0x01, 0x80]) {
        const bad = flip(tiny, at, mask);
        const owner = structureAt(at, tinySections, image.indexSection, tiny.length);
        const error = await openAndReadAll(bad);
        const problems = await verifyProblems(bad);
        // The sequential pass names the structure the byte is in (a header field changed may also be
        // named by a neighbour: e.g. a length that moves the next section).
        expect(problems.map((p) => p.offset), `byte ${at} (structure at ${owner}): ${problems.map((p) => p.message).join('; ')}`).toContain(owner);
        expect(error.offset, `byte ${at}: ${error.message}`).toBeGreaterThanOrEqual(0);
      }
    }
  });

  it('in every section of the multi-process image (header and payload), the file header and the footer', async () => {
    const targets: { at: number; owner: number }[] = [];
    for (const s of [...syntheticSections, syntheticIndex]) {
      for (const field of [0, 4, 6, 8, 12, 16, 24, 32, 40, 44, 47]) targets.push({ at: s.offset + field, owner: s.offset });
      if (s.storedLength > 0) {
        for (const p of [0, Math.floor(s.storedLength / 2), s.storedLength - 1]) targets.push({ at: s.payloadOffset + p, owner: s.offset });
      }
    }
    for (let at = 0; at < 16; at++) targets.push({ at, owner: 0 });
    for (let at = synthetic.length - 32; at < synthetic.length; at++) targets.push({ at, owner: synthetic.length - 32 });
    for (const { at, owner } of targets) {
      const bad = flip(synthetic, at);
      const error = await openAndReadAll(bad);
      const problems = await verifyProblems(bad);
      expect(problems.map((p) => p.offset), `byte ${at}: ${problems.map((p) => p.message).join('; ')}`).toContain(owner);
      // Metadata sections, the index, the header and the footer are refused by openImage itself; data
      // sections by the first read of them; either way the error names the structure.
      expect(error.offset, `byte ${at}: ${error.message}`).toBe(owner);
    }
  });

  it('in a payload is reported as a payload CRC mismatch with both CRCs', async () => {
    const s = syntheticSections.find((x) => x.type === SectionType.PROCESS)!;
    const error = await openAndReadAll(flip(synthetic, s.payloadOffset + 10));
    expect(error.code).toBe('PAYLOAD_CRC');
    expect(error.message).toMatch(new RegExp(`^section at offset ${s.offset}: payload CRC32C mismatch \\(expected 0x[0-9A-F]{8}, found 0x[0-9A-F]{8}\\)$`));
  });
});

describe('truncation', () => {
  it('at every length of a small image', async () => {
    for (let length = 0; length < tiny.length; length++) {
      const cut = tiny.subarray(0, length);
      await openAndReadAll(cut);
      await verifyProblems(cut);
    }
  });

  it('at section boundaries and random lengths of the multi-process image', async () => {
    const lengths = new Set<number>([1, 15, 16, 17, 95, 96, 97, synthetic.length - 1, synthetic.length - 32, synthetic.length - 33]);
    for (const s of syntheticSections) for (const d of [-1, 0, 1, 48]) lengths.add(s.offset + d);
    const random = xorshift(7);
    for (let i = 0; i < 10; i++) lengths.add(random() % synthetic.length);
    for (const length of lengths) {
      const cut = synthetic.subarray(0, length);
      await openAndReadAll(cut);
      await verifyProblems(cut);
    }
  });
});

describe('random bytes', () => {
  it('of several sizes and seeds are refused', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      for (const size of [0, 1, 31, 32, 95, 96, 97, 200, 4096, 65536]) {
        const next = xorshift(seed * 1000 + size);
        const bytes = Uint8Array.from({ length: size }, () => next() & 0xff);
        await openAndReadAll(bytes);
        await verifyProblems(bytes);
      }
    }
  });

  it('between a valid file header and a valid footer are refused', async () => {
    for (const seed of [11, 12, 13, 14]) {
      const next = xorshift(seed);
      const size = 4096 + (next() % 4096);
      const bytes = Uint8Array.from({ length: size }, () => next() & 0xff);
      bytes.set(wasm.encodeFileHeader(), 0);
      const indexOffset = 16 + (next() % (size - 16 - 80));
      bytes.set(wasm.encodeFooter(indexOffset, size, next() % 100), size - 32);
      await openAndReadAll(bytes);
      await verifyProblems(bytes);
    }
  });
});

// ---- hostile values with valid CRCs ------------------------------------------------------------------

interface RawSection {
  type: number;
  codec?: number;
  owner?: number;
  flags?: number;
  key?: bigint;
  /** Overrides of the header's lengths (default: the payload's length). */
  storedLength?: bigint;
  rawLength?: bigint;
  payload?: Uint8Array;
}

interface CraftOptions {
  /** Change index entries (after they are built from the sections). */
  entry?: (i: number, view: DataView) => void;
  footer?: { indexOffset?: bigint; fileLength?: bigint; sectionCount?: number };
  major?: number;
}

/** Build a file byte by byte (independent of ImageWriter): valid CRCs around whatever values are given. */
function craft(sections: RawSection[], options: CraftOptions = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  const fileHeader = new Uint8Array(16);
  fileHeader.set(new TextEncoder().encode('CRYO-IMG'));
  new DataView(fileHeader.buffer).setUint16(8, options.major ?? 1, true);
  new DataView(fileHeader.buffer).setUint32(12, wasm.crc32c(fileHeader.subarray(0, 12)), true);
  parts.push(fileHeader);
  let offset = 16;
  const entries: Uint8Array[] = [];
  const header = (s: RawSection): Uint8Array => {
    const payload = s.payload ?? new Uint8Array(0);
    const h = new Uint8Array(48);
    const v = new DataView(h.buffer);
    h.set(new TextEncoder().encode('CSEC'));
    v.setUint16(4, s.type, true);
    v.setUint16(6, s.codec ?? 0, true);
    v.setUint32(8, s.owner ?? 0, true);
    v.setUint32(12, s.flags ?? 0, true);
    v.setBigUint64(16, s.key ?? 0n, true);
    v.setBigUint64(24, s.storedLength ?? BigInt(payload.length), true);
    v.setBigUint64(32, s.rawLength ?? s.storedLength ?? BigInt(payload.length), true);
    v.setUint32(40, wasm.crc32c(payload), true);
    v.setUint32(44, wasm.crc32c(h.subarray(0, 44)), true);
    return h;
  };
  for (const s of sections) {
    const h = header(s);
    const entry = new Uint8Array(56);
    new DataView(entry.buffer).setBigUint64(0, BigInt(offset), true);
    entry.set(h, 8);
    entries.push(entry);
    parts.push(h, s.payload ?? new Uint8Array(0));
    offset += 48 + (s.payload?.length ?? 0);
  }
  const indexPayload = new Uint8Array(entries.length * 56);
  entries.forEach((e, i) => {
    indexPayload.set(e, i * 56);
    if (options.entry) {
      options.entry(i, new DataView(indexPayload.buffer, i * 56, 56));
      // keep the entry's header CRC valid after the change
      const view = new DataView(indexPayload.buffer, i * 56 + 8, 48);
      view.setUint32(44, wasm.crc32c(indexPayload.subarray(i * 56 + 8, i * 56 + 8 + 44)), true);
    }
  });
  const indexOffset = offset;
  parts.push(header({ type: SectionType.INDEX, payload: indexPayload }), indexPayload);
  offset += 48 + indexPayload.length;
  const footer = new Uint8Array(32);
  const fv = new DataView(footer.buffer);
  fv.setBigUint64(0, options.footer?.indexOffset ?? BigInt(indexOffset), true);
  fv.setBigUint64(8, options.footer?.fileLength ?? BigInt(offset + 32), true);
  fv.setUint32(16, options.footer?.sectionCount ?? entries.length, true);
  footer.set(new TextEncoder().encode('CRYO-END'), 24);
  fv.setUint32(20, wasm.crc32c(footer.subarray(24, 32), wasm.crc32c(footer.subarray(0, 20))), true);
  parts.push(footer);
  const out = new Uint8Array(offset + 32);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const { encodeMetadata } = await import('../src/index.js');
const META = (pids: number[] = [7]): RawSection => ({ type: SectionType.IMAGE_META, payload: encodeMetadata({ format: 'cryo', pids, rootPid: pids[0] }) });
const PROC = (pid = 7): RawSection => ({ type: SectionType.PROCESS, owner: pid, payload: encodeMetadata({ pid, comm: 'x' }) });
function pageMapBytes(entries: { vaddr: bigint; count: number; kind: number; flags?: number; store: bigint }[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * 24);
  const v = new DataView(bytes.buffer);
  entries.forEach((e, i) => {
    v.setBigUint64(i * 24, e.vaddr, true);
    v.setUint32(i * 24 + 8, e.count >>> 0, true);
    v.setUint16(i * 24 + 12, e.kind, true);
    v.setUint16(i * 24 + 14, e.flags ?? 0, true);
    v.setBigUint64(i * 24 + 16, e.store, true);
  });
  return bytes;
}
const DATA = (pid = 7, key = 0n, pages = 1): RawSection => ({ type: SectionType.PAGEDATA, owner: pid, key, payload: new Uint8Array(pages * 4096) });

async function refused(bytes: Uint8Array, code: string, offset?: number): Promise<CryoFormatError> {
  const error = await openAndReadAll(bytes);
  expect(error.code, error.message).toBe(code);
  if (offset !== undefined) expect(error.offset, error.message).toBe(offset);
  const problems = await verifyProblems(bytes);
  expect(problems.map((p) => p.code), problems.map((p) => p.message).join('; ')).toContain(code);
  return error;
}

describe('hostile values', () => {
  it('the crafted baseline is valid', async () => {
    const ok = craft([META(), PROC(), { type: SectionType.PAGEMAP, owner: 7, payload: pageMapBytes([{ vaddr: 0x1000n, count: 1, kind: 0, store: 0n }]) }, DATA()]);
    const image = await openImage(ok, wasm);
    expect(image.process(7)!.pageMap).toHaveLength(1);
    expect((await verifyImage(ok, wasm)).ok).toBe(true);
  });

  it('a section length of 2^60 is refused without allocation', async () => {
    for (const type of [SectionType.PROCESS, SectionType.PAGEDATA, SectionType.BLOB, 99]) {
      const bytes = craft([META(), { type, owner: 7, storedLength: 1n << 60n }, PROC()]);
      const source = new CountingSource(new BytesSource(bytes));
      const error = await openImage(source, wasm).then(() => null, (e: unknown) => checkError(e, bytes.length));
      expect(error!.code).toBe('LIMIT_EXCEEDED');
      expect(error!.message).toContain(`found ${1n << 60n}`);
      expect(source.bytesRead).toBeLessThan(bytes.length + 100);
      await verifyProblems(bytes);
    }
    const huge = craft([META(), { type: SectionType.BLOB, storedLength: 0xffff_ffff_ffff_ffffn }]);
    await refused(huge, 'LIMIT_EXCEEDED');
  });

  it('a length just over the limit, and stored != raw', async () => {
    await refused(craft([META(), { type: SectionType.BLOB, storedLength: (1n << 20n) + 1n }]), 'LIMIT_EXCEEDED');
    await refused(craft([META(), { type: SectionType.PROCESS, owner: 7, storedLength: (64n << 20n) + 1n }]), 'LIMIT_EXCEEDED');
    await refused(craft([META(), { type: SectionType.BLOB, payload: new Uint8Array(4), storedLength: 4n, rawLength: 8n }]), 'LENGTH_MISMATCH');
  });

  it('a page map claiming 2^32 entries', async () => {
    const e = await refused(craft([META(), PROC(), { type: SectionType.PAGEMAP, owner: 7, storedLength: 24n << 32n }]), 'LIMIT_EXCEEDED');
    expect(e.expected).toBe(`at most ${64 << 20}`);
    // an entry claiming 2^32 - 1 pages
    await refused(craft([META(), PROC(), { type: SectionType.PAGEMAP, owner: 7, payload: pageMapBytes([{ vaddr: 0x1000n, count: 0xffffffff, kind: 0, store: 0n }]) }, DATA()]), 'PAGEMAP_STORE_RANGE');
    await refused(craft([META(), PROC(), { type: SectionType.PAGEMAP, owner: 7, payload: pageMapBytes([{ vaddr: 0xffff_ffff_ffff_0000n, count: 0xffffffff, kind: 1, store: 0n }]) }]), 'PAGEMAP_OVERFLOW');
  });

  it('malformed page maps name the offending entry', async () => {
    const pm = (entries: Parameters<typeof pageMapBytes>[0]): Uint8Array =>
      craft([META(), PROC(), { type: SectionType.PAGEMAP, owner: 7, payload: pageMapBytes(entries) }, DATA(7, 0n, 4)]);
    const pageMapPayload = 16 + (48 + META().payload!.length) + (48 + PROC().payload!.length) + 48;
    const second = pageMapPayload + 24;
    await refused(pm([{ vaddr: 0x1000n, count: 1, kind: 0, store: 0n }, { vaddr: 0x1800n, count: 1, kind: 0, store: 1n }]), 'PAGEMAP_ALIGN', second);
    await refused(pm([{ vaddr: 0x3000n, count: 1, kind: 0, store: 0n }, { vaddr: 0x1000n, count: 1, kind: 0, store: 1n }]), 'PAGEMAP_ORDER', second);
    await refused(pm([{ vaddr: 0x1000n, count: 2, kind: 0, store: 0n }, { vaddr: 0x2000n, count: 1, kind: 0, store: 1n }]), 'PAGEMAP_ORDER', second);
    await refused(pm([{ vaddr: 0x1000n, count: 1, kind: 0, store: 0n }, { vaddr: 0x2000n, count: 1, kind: 7, store: 0n }]), 'PAGEMAP_KIND', second);
    await refused(pm([{ vaddr: 0x1000n, count: 1, kind: 0, store: 0n }, { vaddr: 0x2000n, count: 0, kind: 0, store: 0n }]), 'PAGEMAP_COUNT', second);
    await refused(pm([{ vaddr: 0x1000n, count: 1, kind: 0, store: 0n }, { vaddr: 0x2000n, count: 1, kind: 0, flags: 1, store: 0n }]), 'PAGEMAP_FLAGS', second);
    await refused(pm([{ vaddr: 0x1000n, count: 1, kind: 0, store: 0n }, { vaddr: 0x2000n, count: 2, kind: 0, store: 3n }]), 'PAGEMAP_STORE_RANGE', second);
    await refused(pm([{ vaddr: 0x1000n, count: 1, kind: 0, store: 0n }, { vaddr: 0x2000n, count: 1, kind: 0, store: 1n << 62n }]), 'PAGEMAP_STORE_RANGE', second);
    await refused(pm([{ vaddr: 0x1000n, count: 1, kind: 0, store: 0n }, { vaddr: 0x2000n, count: 1, kind: 1, store: 2n }]), 'PAGEMAP_ZERO_STORE', second);
    await refused(craft([META(), PROC(), { type: SectionType.PAGEMAP, owner: 7, payload: new Uint8Array(25) }]), 'PAGEMAP_LENGTH');
  });

  it('page stores with a gap or an overlap', async () => {
    const pm = { type: SectionType.PAGEMAP, owner: 7, payload: pageMapBytes([{ vaddr: 0x1000n, count: 1, kind: 0, store: 0n }]) };
    await refused(craft([META(), PROC(), pm, DATA(7, 0n), DATA(7, 2n)]), 'PAGEDATA_COVERAGE');
    await refused(craft([META(), PROC(), pm, DATA(7, 0n, 2), DATA(7, 1n)]), 'PAGEDATA_COVERAGE');
    await refused(craft([META(), PROC(), pm, DATA(7, 1n)]), 'PAGEDATA_COVERAGE');
    await refused(craft([META(), PROC(), pm, { type: SectionType.PAGEDATA, owner: 7, payload: new Uint8Array(100) }]), 'PAGEDATA_LENGTH');
    await refused(craft([META(), PROC(), pm, { type: SectionType.PAGEDATA, owner: 7, payload: new Uint8Array(0) }]), 'PAGEDATA_LENGTH');
  });

  it('an index pointing outside the file', async () => {
    const base = [META(), PROC()];
    const n = craft(base).length;
    await refused(craft(base, { footer: { indexOffset: 1n << 60n } }), 'INDEX_OFFSET', n - 32);
    await refused(craft(base, { footer: { indexOffset: BigInt(n) } }), 'INDEX_OFFSET', n - 32);
    await refused(craft(base, { footer: { indexOffset: 3n } }), 'INDEX_OFFSET');
    await refused(craft(base, { footer: { fileLength: 1n << 62n } }), 'FILE_LENGTH', n - 32);
    // entries with offsets past the file / overflowing
    const entryAt = (i: number) => craft(base).length - 32 - 2 * 56 + i * 56;
    await refused(craft(base, { entry: (i, v) => i === 1 && v.setBigUint64(0, 1n << 60n, true) }), 'PAST_END', entryAt(1));
    await refused(craft(base, { entry: (i, v) => i === 1 && v.setBigUint64(0, 0xffff_ffff_ffff_fff0n, true) }), 'PAST_END', entryAt(1));
    await refused(craft(base, { entry: (i, v) => i === 1 && v.setBigUint64(0, 20n, true) }), 'INDEX_ORDER', entryAt(1));
    await refused(craft(base, { entry: (i, v) => i === 0 && v.setBigUint64(8 + 32, 1n << 60n, true) }), 'LENGTH_MISMATCH', entryAt(0));
    await refused(craft(base, {
      entry: (i, v) => { if (i === 0) { v.setBigUint64(8 + 24, 1n << 60n, true); v.setBigUint64(8 + 32, 1n << 60n, true); } },
    }), 'LIMIT_EXCEEDED', entryAt(0));
  });

  it('a footer claiming 2^32 - 1 sections is refused after reading only the INDEX header', async () => {
    const bytes = craft([META(), PROC()], { footer: { sectionCount: 0xffffffff } });
    const source = new CountingSource(new BytesSource(bytes));
    const error = await openImage(source, wasm).then(() => null, (e: unknown) => checkError(e, bytes.length));
    expect(error!.code).toBe('INDEX_HEADER');
    expect(source.bytesRead).toBeLessThanOrEqual(32 + 48);
    await verifyProblems(bytes);
  });

  it('an unknown codec or major version is a CryoUnsupportedError naming it', async () => {
    const codec = await refused(craft([META(), { type: SectionType.BLOB, codec: 3, payload: new Uint8Array(4) }]), 'UNKNOWN_CODEC');
    expect(codec).toBeInstanceOf(CryoUnsupportedError);
    expect(codec.message).toMatch(/unknown codec \(expected (at most )?\d+, found 3\)/);
    const version = await refused(craft([META(), PROC()], { major: 2 }), 'UNSUPPORTED_VERSION', 0);
    expect(version).toBeInstanceOf(CryoUnsupportedError);
    expect(version.message).toContain('found 2');
    await refused(craft([META(), { type: SectionType.BLOB, flags: 1 }]), 'SECTION_FLAGS');
  });

  it('malformed metadata and structure', async () => {
    const metaOffset = 16;
    await refused(craft([{ type: SectionType.IMAGE_META, payload: new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]) }]), 'MSGPACK', metaOffset);
    await refused(craft([{ type: SectionType.IMAGE_META, payload: new Uint8Array([0xc1]) }]), 'MSGPACK', metaOffset);
    await refused(craft([{ type: SectionType.IMAGE_META, payload: new Uint8Array([0x92, 1, 2]) }]), 'MSGPACK', metaOffset);
    await refused(craft([{ type: SectionType.IMAGE_META, payload: new Uint8Array([0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 0x61]) }]), 'MSGPACK', metaOffset);
    await refused(craft([PROC()]), 'STRUCTURE');
    await refused(craft([META(), META()]), 'STRUCTURE');
    await refused(craft([META(), PROC(), PROC()]), 'STRUCTURE');
    await refused(craft([META([7, 8]), PROC()]), 'STRUCTURE');
    await refused(craft([META(), PROC(), { type: SectionType.PAGEMAP, owner: 9, payload: new Uint8Array(0) }]), 'STRUCTURE');
    await refused(craft([META(), { type: SectionType.PROCESS, owner: 7, payload: encodeMetadata({ pid: 8 }) }]), 'STRUCTURE');
    await refused(craft([META(), { type: SectionType.INDEX, payload: new Uint8Array(0) }]), 'INDEX_ENTRY_TYPE');
  });

  it('VMAs out of range, unaligned or overlapping are refused at the PROCESS section', async () => {
    const build = async (vmas: { start: number | bigint; end: number | bigint }[]): Promise<{ bytes: Uint8Array; processOffset: number }> => {
      const sink = new MemorySink();
      const w = new ImageWriter(sink, wasm);
      await w.addImageMeta({ format: 'cryo', pids: [7], rootPid: 7 });
      const process = await w.addProcess({ pid: 7, comm: 'vmas', vmas });
      await w.finish();
      return { bytes: sink.bytes(), processOffset: process.offset };
    };
    const good = await build([{ start: 0x1000, end: 0x3000 }, { start: 0x3000, end: 0x4000 }, { start: 0xffffffffff600000n, end: 0xffffffffff601000n }]);
    expect((await verifyImage(good.bytes, wasm)).ok).toBe(true);
    const cases: [{ start: number | bigint; end: number | bigint }[], RegExp][] = [
      [[{ start: 0x3000, end: 0x1000 }], /VMA 0x3000-0x1000: end is not above start/],
      [[{ start: 0x1000, end: 0x1000 }], /VMA 0x1000-0x1000: end is not above start/],
      [[{ start: 0x1000, end: 0x1800 }], /VMA 0x1000-0x1800: not page-aligned/],
      [[{ start: 0x1000, end: 0x3000 }, { start: 0x2000, end: 0x4000 }], /VMA 0x2000-0x4000: overlaps or precedes the previous VMA \(ending at 0x3000\)/],
      [[{ start: 0x5000, end: 0x6000 }, { start: 0x1000, end: 0x2000 }], /VMA 0x1000-0x2000: overlaps or precedes/],
    ];
    for (const [vmas, message] of cases) {
      const { bytes, processOffset } = await build(vmas);
      await expect(openImage(bytes, wasm)).rejects.toThrow(CryoFormatError);
      const error = await refused(bytes, 'VMA_RANGE', processOffset);
      expect(error.message).toMatch(message);
      expect(error.message).toContain(`section at offset ${processOffset}`);
      const problems = await verifyProblems(bytes);
      const problem = problems.find((p) => p.code === 'VMA_RANGE')!;
      expect(problem).toBeInstanceOf(CryoFormatError);
      expect(problem.offset).toBe(processOffset);
      expect(problem.message).toMatch(message);
    }
  });

  it('verify() reports a pipe whose data blob does not hold dataLength bytes', async () => {
    const proc = (dataBlob: number) => ({ type: SectionType.PROCESS, owner: 7, payload: encodeMetadata({ pid: 7, fds: [{ fd: 0, type: 'pipe', pipe: { inode: 1, dataBlob, dataLength: 5 } }] }) });
    const good = craft([META(), proc(4), { type: SectionType.BLOB, key: 4n, payload: new Uint8Array(5) }]);
    expect((await verifyImage(good, wasm)).ok).toBe(true);
    for (const bad of [craft([META(), proc(4), { type: SectionType.BLOB, key: 4n, payload: new Uint8Array(4) }]), craft([META(), proc(9)])]) {
      const problems = await verifyProblems(bad);
      expect(problems.map((p) => p.code)).toEqual(['BLOB_REFERENCE']);
      expect(problems[0]!.offset).toBe(16 + 48 + META().payload!.length);
    }
  });

  it('the writer refuses what a reader would refuse', async () => {
    const writer = new ImageWriter(new MemorySink(), wasm);
    await expect(writer.addBlob(1, new Uint8Array(10))).resolves.toHaveLength(1);
    await expect(writer.addSection({ type: SectionType.BLOB }, new Uint8Array((1 << 20) + 1))).rejects.toThrow(RangeError);
    await expect(writer.addPageData(7, 0, new Uint8Array(100))).rejects.toThrow(RangeError);
    await expect(writer.addSection({ type: SectionType.INDEX }, new Uint8Array(0))).rejects.toThrow(RangeError);
  });

  it('misuse of the Wasm boundary is a CryoWasmError, never a trap', () => {
    expect(() => wasm.parseFileHeader(new Uint8Array(3))).toThrow(CryoWasmError);
    expect(() => wasm.parseIndex(new Uint8Array(57), 0, 0)).toThrow(CryoWasmError);
  });

  it('the raw Wasm exports return error codes for hostile arguments, never trap', async () => {
    const { readFile } = await import('node:fs/promises');
    const { instance } = await WebAssembly.instantiate(await readFile(new URL('../dist/cryo.wasm', import.meta.url)), {});
    const e = instance.exports as Record<string, (...args: unknown[]) => number> & { memory: WebAssembly.Memory };
    const top = () => e.memory.buffer.byteLength;
    const pointers = [0, 1, top() - 1, top() - 47, top(), top() + 1, 0x7fffffff, -1];
    const big = [0n, 1n, 1n << 32n, 1n << 60n, (1n << 64n) - 1n];
    for (const ptr of pointers) {
      for (const n of [0, 1, 48, 0x7fffffff, -1]) expect(() => e.crc32cUpdate!(0, ptr, n)).not.toThrow();
      for (const x of big) {
        expect(() => e.parseFileHeader!(ptr)).not.toThrow();
        expect(() => e.parseSectionHeader!(ptr, x, x)).not.toThrow();
        expect(() => e.parseFooter!(ptr, x)).not.toThrow();
        expect(() => e.parseIndexHeader!(ptr, x, x, 0xffffffff)).not.toThrow();
        expect(() => e.indexCheck!(ptr, 0xffffffff, x, x)).not.toThrow();
        expect(() => e.indexCheck!(ptr, 3, x, x)).not.toThrow();
        expect(() => e.decodeIndexEntry!(ptr)).not.toThrow();
        expect(() => e.encodeSectionHeader!(ptr, 1, 0, 0, 0, x, x, x, 0)).not.toThrow();
        expect(() => e.encodeFooter!(ptr, x, x, 1)).not.toThrow();
        expect(() => e.encodeIndexEntry!(ptr, x, ptr)).not.toThrow();
        expect(() => e.pagemapValidate!(ptr, x, x, x)).not.toThrow();
        expect(() => e.pagemapFind!(ptr, 0xffffffff, x)).not.toThrow();
        expect(() => e.pagemapCount!(ptr, 0xffffffff, 0n, x)).not.toThrow();
        expect(() => e.pagestoreCheck!(ptr, 0xffffffff)).not.toThrow();
        expect(() => e.pagestoreFind!(ptr, 0xffffffff, x)).not.toThrow();
      }
    }
    for (const x of big) expect(() => e.slotReserve!(x)).not.toThrow();
    expect(e.crc32cUpdate!(0, top(), 1)).toBe(0);
    expect((e.errorCode as unknown as WebAssembly.Global).value).toBe(1); // BAD_ARGUMENT
  });

  it('a good image survives all this (the shared Wasm instance is not poisoned)', async () => {
    const image = await openImage(tiny, wasm);
    expect(await image.readMemory(7, 0x1000, 4096)).toEqual(storePage(7, 0));
    expect((await image.verify()).ok).toBe(true);
    const entries: PageMapEntry[] = image.process(7)!.pageMap;
    expect(entries.map((e) => e.kind)).toEqual([PageKind.DATA, PageKind.ZERO]);
  });
});
