// The .cryo format: CRC32C vectors, and a writer -> reader round trip of a synthetic multi-process image.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BlobSource, BytesSource, CountingSource, CryoWasm, PageKind, SectionType, openImage as openWith, scanSections, verifyImage, ImageWriter, MemorySink, CryoUnsupportedError, CryoFormatError, encodeMetadata, type SectionInfo,
  type CryoImage,
} from '../src/index.js';
import { loadWasm, openImage as openFile, writeImageFile } from '../src/node.js';
import {
  ALIAS, BIG_BLOB_LENGTH, CHILD_PID, CHILD_TEXT, HEAP, HEAP_PAGES, IMAGE_META, LONE, NON_UTF8_EXE, PAGE,
  PAGE_MAPS, PIPE_BLOB, ROOT_PID, STORE_COUNTS, UNKNOWN_SECTION_TYPE, VSYSCALL, ZERO_PAGES, ZERO_RUN,
  bigBlob, buildSyntheticImage, buildTinyImage, expectedMemory, storePage, storePages,
} from './helpers/synthetic-image.js';

let wasm: CryoWasm;
let file: Uint8Array;

beforeAll(async () => {
  wasm = await loadWasm();
  file = await buildSyntheticImage(wasm);
});

/** Fast equality of large byte arrays (toEqual on megabytes is slow). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  const at = actual.findIndex((b, i) => b !== expected[i]);
  expect(at, `first difference at ${at}`).toBe(-1);
}

/** Bitwise CRC32C, the definition (slow). */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

describe('CRC32C', () => {
  it('matches the test vectors (FORMAT §1, RFC 3720 B.4)', () => {
    const ascii = (s: string) => new TextEncoder().encode(s);
    expect(wasm.crc32c(ascii('123456789'))).toBe(0xe3069283);
    expect(wasm.crc32c(new Uint8Array(0))).toBe(0);
    expect(wasm.crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(wasm.crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(wasm.crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(wasm.crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it('agrees with the bitwise definition, at every length and alignment around the 8-byte stride', () => {
    const data = randomBytes(300, 1);
    for (let start = 0; start < 9; start++) {
      for (let length = 0; length < 70; length++) {
        const piece = data.subarray(start, start + length);
        expect(wasm.crc32c(piece)).toBe(referenceCrc32c(piece));
      }
    }
  });

  it('agrees with the bitwise definition around the three-way interleave blocks (3 x 512 bytes)', () => {
    const data = randomBytes(5000, 3);
    for (const length of [1535, 1536, 1537, 1543, 1544, 1545, 3071, 3072, 3073, 4607, 4608, 4609, 4999]) {
      for (const start of [0, 1, 3]) {
        const piece = data.subarray(start, start + length);
        expect(wasm.crc32c(piece)).toBe(referenceCrc32c(piece));
      }
    }
  });

  it('streams: update(update(0, a), b) = crc(a ++ b), also across the scratch size', () => {
    const data = randomBytes(3 * wasm.scratchSize + 12345, 2);
    const whole = wasm.crc32c(data);
    expect(whole).toBe(referenceCrc32c(data));
    for (const cut of [0, 1, 7, 4096, wasm.scratchSize - 1, wasm.scratchSize, 2 * wasm.scratchSize + 3, data.length]) {
      expect(wasm.crc32c(data.subarray(cut), wasm.crc32c(data.subarray(0, cut)))).toBe(whole);
    }
  });
});

describe('writer -> reader round trip', () => {
  let image: CryoImage;
  let source: CountingSource;

  beforeAll(async () => {
    source = new CountingSource(new BytesSource(file));
    image = await openWith(source, wasm);
  });

  it('opens with three reads (footer, index, header + metadata) and never reads page data', () => {
    expect(source.reads).toBe(3);
    const dataSections = image.sections.filter((s) => s.type === SectionType.PAGEDATA || s.type === SectionType.BLOB);
    for (const read of source.log) {
      for (const s of dataSections) {
        const overlaps = read.offset < s.payloadOffset + s.storedLength && s.payloadOffset < read.offset + read.length;
        expect(overlaps, `read ${read.offset}+${read.length} touches ${s.typeName} at ${s.offset}`).toBe(false);
      }
    }
    expect(source.bytesRead).toBeLessThan(64 * 1024);
    expect(file.length).toBeGreaterThan(3 << 20);
  });

  it('lists every section in file order, unknown types kept', () => {
    const types = image.sections.map((s) => s.typeName);
    expect(types.slice(0, 6)).toEqual(['IMAGE_META', 'PROCESS', 'PAGEMAP', 'PROCESS', 'PAGEMAP', 'TYPE_42']);
    expect(image.sections.filter((s) => s.type === SectionType.BLOB).length).toBe(1 + 3);
    // 301 root pages = 256 + 45 pages; child 3 pages
    expect(image.sections.filter((s) => s.type === SectionType.PAGEDATA).map((s) => [s.owner, Number(s.key), s.rawLength / PAGE]))
      .toEqual([[ROOT_PID, 0, 256], [ROOT_PID, 256, 45], [CHILD_PID, 0, 3]]);
    const unknown = image.sections.find((s) => s.type === UNKNOWN_SECTION_TYPE)!;
    expect(unknown.key).toBe(9n);
    expect(image.footer.sectionCount).toBe(image.sections.length);
    expect(image.footer.fileLength).toBe(file.length);
    expect(image.version).toEqual({ major: 1, minor: 0 });
    let end = 16;
    for (const s of image.sections) {
      expect(s.offset).toBe(end);
      end = s.payloadOffset + s.storedLength;
    }
    expect(image.indexSection.offset).toBe(end);
  });

  it('decodes IMAGE_META, keeping unknown keys', () => {
    expect(image.meta.format).toBe('cryo');
    expect(image.meta.tool).toBe(IMAGE_META.tool);
    expect(image.meta.createdAt).toBe(IMAGE_META.createdAt);
    expect(image.meta.host).toEqual(IMAGE_META.host);
    expect(image.meta.rootPid).toBe(ROOT_PID);
    expect(image.meta.pids).toEqual([ROOT_PID, CHILD_PID]);
    expect(image.meta.options).toEqual({ tree: true, kill: false });
    expect(image.meta.raw.futureMetaKey).toBe('keep me');
  });

  it('decodes processes, threads, VMAs and fds', () => {
    expect(image.processes.map((p) => p.pid)).toEqual([ROOT_PID, CHILD_PID]);
    const root = image.process(ROOT_PID)!;
    expect(root).toMatchObject({ ppid: 1, pgid: ROOT_PID, sid: 1, comm: 'root-proc', state: 'S', cwd: '/tmp', root: '/', umask: 0o22 });
    // bin strings: lenient text, exact bytes in raw
    expect(root.exe).toBe('/tmp/\uFFFD\uFFFDx');
    expect(root.raw.exe).toEqual(NON_UTF8_EXE);
    expect(root.cmdline).toEqual(['/bin/root', '--flag', 'a\uFFFDb']);
    expect(root.environ).toEqual(['HOME=/root', 'LANG=C']);
    expect(root.raw.futureProcessKey).toEqual({ nested: [1, 2, 3] });
    expect(root.creds!.capBnd).toBe(0xffff_ffff_ffff_ffffn);
    expect(root.creds!.capEff).toBe(0x1ff_ffff_ffffn);
    expect(root.creds!.groups).toEqual([0, 10]);
    expect(root.rlimits).toHaveLength(16);
    expect(root.rlimits[7]).toEqual({ soft: 1024n, hard: 4096n });
    expect(root.rlimits[0]).toEqual({ soft: null, hard: null });
    expect(root.mm!.startBrk).toBe(HEAP);
    expect(root.sigactions).toHaveLength(64);
    expect(root.sigactions[8]).toBeNull();
    expect(root.sigactions[1]).toEqual({ handler: 0x40_1234n, flags: 0x0400_0000, restorer: 0x40_5678n, mask: 2n });

    const [leader, worker] = root.threads;
    expect(leader!.tid).toBe(ROOT_PID);
    expect(leader!.registers!.r15).toBe((1n << 32n) | 0n);
    expect(leader!.registers!.rip).toBe(0xffff_0001_0000_0010n);
    expect(leader!.registers!.gs).toBe((1n << 32n) | 26n);
    expect(leader!.restart).toBe('restart');
    expect(leader!.xstate!.length).toBe(832);
    expect(leader!.xfeatures).toBe(0x2e7n);
    expect(leader!.fsBase).toBe(0x7f12_3456_7000n);
    expect(leader!.sigmask).toBe(0x8000_0000_0000_0001n);
    expect(leader!.pending).toHaveLength(1);
    expect(leader!.robustList).toEqual({ head: 0x7f12_3456_7a20n, len: 24 });
    expect(leader!.rseq).toBeNull();
    expect(leader!.raw.futureThreadKey).toBe('kept');
    expect(worker!.registers!.rax).toBe((2n << 32n) | 10n);

    expect(root.vmas.map((v) => v.kind)).toEqual(['file', 'heap', 'anon', 'stack', 'vsyscall']);
    const heap = root.vmas[1]!;
    expect(heap.start).toBe(HEAP);
    expect(heap.pagesStored).toBe(HEAP_PAGES);
    expect(heap.zeroPages).toBe(ZERO_PAGES);
    expect(root.vmas[2]!.pagesStored).toBe(2);
    expect(root.vmas[3]!.pagesStored).toBe(1);
    expect(root.vmas[0]!.pagesStored).toBe(0);
    expect(root.vmas[0]!.dev).toEqual([8, 1]);
    expect(root.vmas[4]!.start).toBe(VSYSCALL); // above 2^53: exact as bigint

    expect(root.fds.map((f) => f.fd)).toEqual([0, 3, 4]);
    expect(root.fds[0]!.pipe).toEqual({ inode: 555, dataBlob: 1, dataLength: 100 });
    expect(root.fds[1]!).toMatchObject({ deleted: true, contentBlob: 2, cloexec: true, pos: 10, fdinfo: { mnt_id: '25' } });
    expect(root.fds[1]!.mtime).toBe(1_700_000_000_123_456_789n);
    expect(root.fds[2]!.socket).toMatchObject({ family: 'unix', state: 'listen', inode: 77 });

    const child = image.process(CHILD_PID)!;
    expect(child.comm).toBe('ch\uFFFD');
    expect(child.raw.comm).toEqual(new Uint8Array([0x63, 0x68, 0xc3]));
    expect(child.creds).toBeNull();
    expect(child.vmas[0]!.pagesStored).toBe(3);
    expect(image.process(999)).toBeUndefined();
  });

  it('decodes the page maps', () => {
    const root = image.process(ROOT_PID)!;
    expect(root.pageMap).toEqual(PAGE_MAPS[ROOT_PID]);
    expect(root.storedPageCount).toBe(STORE_COUNTS[ROOT_PID]);
    expect(image.process(CHILD_PID)!.pageMap).toEqual(PAGE_MAPS[CHILD_PID]);
  });

  it('reads memory across page and PAGEDATA section boundaries, reading only the bytes needed', async () => {
    source.reset();
    const boundary = HEAP + 256n * BigInt(PAGE); // store page 256 starts the second section
    const address = boundary - 5000n;
    const bytes = await image.readMemory(ROOT_PID, address, 3 * PAGE);
    expect(bytes).toEqual(expectedMemory(ROOT_PID, address, 3 * PAGE));
    expect(bytes[5000]).toBe(0); // first byte of store page 256 = low byte of its index (256)
    expect(source.reads).toBe(2);
    expect(source.bytesRead).toBe(3 * PAGE);
  });

  it('reads the whole heap run plus ZERO pages and an unstored tail', async () => {
    const length = (HEAP_PAGES + ZERO_PAGES + 3) * PAGE;
    const result = await image.readMemoryDetailed(ROOT_PID, HEAP, length);
    expectSameBytes(result.bytes, expectedMemory(ROOT_PID, HEAP, length));
    expect(result.notStored).toEqual([{ start: ZERO_RUN + BigInt(ZERO_PAGES * PAGE), end: HEAP + BigInt(length) }]);
    expect(image.pageState(ROOT_PID, HEAP + 299n * BigInt(PAGE))).toBe('data');
    expect(image.pageState(ROOT_PID, ZERO_RUN + 5n)).toBe('zero');
    expect(image.pageState(ROOT_PID, HEAP - 1n)).toBe('not-stored');
  });

  it('reads a store page referenced twice, unaligned spans and gaps', async () => {
    const alias = await image.readMemory(ROOT_PID, ALIAS, 2 * PAGE);
    expect(alias.subarray(0, PAGE)).toEqual(storePage(ROOT_PID, 5));
    expect(alias.subarray(0, PAGE)).toEqual(await image.readMemory(ROOT_PID, HEAP + 5n * BigInt(PAGE), PAGE));
    const span = await image.readMemoryDetailed(ROOT_PID, ALIAS + 100n, 3 * PAGE);
    expect(span.bytes).toEqual(expectedMemory(ROOT_PID, ALIAS + 100n, 3 * PAGE));
    expect(span.notStored).toEqual([{ start: ALIAS + 2n * BigInt(PAGE), end: ALIAS + 4n * BigInt(PAGE) }]);
    expect(await image.readMemory(ROOT_PID, LONE + 4000n, 96)).toEqual(storePage(ROOT_PID, 300).subarray(4000));
    expect(await image.readMemory(CHILD_PID, CHILD_TEXT, 3 * PAGE)).toEqual(expectedMemory(CHILD_PID, CHILD_TEXT, 3 * PAGE));
    expect((await image.readMemory(ROOT_PID, VSYSCALL, 16))).toEqual(new Uint8Array(16));
    expect(await image.readMemory(ROOT_PID, 0, 0)).toEqual(new Uint8Array(0));
    await expect(image.readMemory(12345, 0, 1)).rejects.toThrow(RangeError);
    await expect(image.readMemory(ROOT_PID, 0xffff_ffff_ffff_f000n, 8192)).rejects.toThrow(RangeError);
  });

  it('keeps Wasm memory bounded: no growth from reading, verifying and checksumming', async () => {
    const before = wasm.memoryBytes;
    for (let i = 0; i < 20; i++) {
      await image.readMemory(ROOT_PID, HEAP + BigInt(i * 7 * PAGE), 3 * PAGE);
      await image.readBlob(2);
    }
    await image.verify();
    wasm.crc32c(new Uint8Array(8 << 20));
    expect(wasm.memoryBytes).toBe(before);
    expect(before).toBeLessThanOrEqual(8 << 20);
  });

  it('switching processes keeps lookups right (one Wasm slot)', async () => {
    for (let i = 0; i < 3; i++) {
      expect(await image.readMemory(CHILD_PID, CHILD_TEXT + 4096n, 8)).toEqual(storePage(CHILD_PID, 1).subarray(0, 8));
      expect(await image.readMemory(ROOT_PID, HEAP + 4096n, 8)).toEqual(storePage(ROOT_PID, 1).subarray(0, 8));
    }
  });

  it('verifies page data on first touch when asked', async () => {
    const counting = new CountingSource(new BytesSource(file));
    const checked = await openWith(counting, wasm, { verifyPageData: true });
    counting.reset();
    await checked.readMemory(ROOT_PID, HEAP, 16);
    expect(counting.bytesRead).toBe(48 + (1 << 20));
    counting.reset();
    await checked.readMemory(ROOT_PID, HEAP + 4096n, 16);
    expect(counting.bytesRead).toBe(16);
  });

  it('reads blobs (over 1 MiB: three sections) and sections', async () => {
    expect(await image.readBlob(1)).toEqual(PIPE_BLOB);
    const big = await image.readBlob(2);
    expect(big.length).toBe(BIG_BLOB_LENGTH);
    expectSameBytes(big, bigBlob());
    expect(image.blobLength(2)).toBe(BIG_BLOB_LENGTH);
    expect(await image.readBlob(3)).toEqual(new Uint8Array(0));
    expect(image.blobIds).toEqual([1n, 2n]);
    const unknown = image.sections.find((s) => s.type === UNKNOWN_SECTION_TYPE)!;
    expect(new TextDecoder().decode(await image.readSection(unknown))).toBe('from the future');
  });

  it('verify() is ok, covers every byte, and reads each byte about once', async () => {
    const counting = new CountingSource(new BytesSource(file));
    expect((await verifyImage(counting, wasm)).ok).toBe(true);
    expect(counting.bytesRead).toBeLessThan(file.length * 1.05);
    const report = await image.verify();
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.bytes).toBe(file.length);
    expect(report.sections).toBe(image.sections.length + 1);
  });

  it('copying every section gives a byte-identical file', async () => {
    const sink = new MemorySink();
    const writer = new ImageWriter(sink, wasm);
    for (const s of image.sections) await writer.copySection(s, await image.readSection(s));
    const written = await writer.finish();
    expect(written.fileLength).toBe(file.length);
    expectSameBytes(sink.bytes(), file);
  });

  it('scanSections walks the same sections without the index', async () => {
    const walked = [];
    for await (const s of scanSections(file, wasm)) walked.push(s);
    expect(walked.slice(0, -1)).toEqual(image.sections);
    expect(walked[walked.length - 1]).toEqual(image.indexSection);
  });

  it('reads the same through a Blob source', async () => {
    const fromBlob = await openWith(new BlobSource(new Blob([file])), wasm);
    expect(fromBlob.processes.map((p) => p.comm)).toEqual(image.processes.map((p) => p.comm));
    const address = HEAP + 255n * BigInt(PAGE);
    expect(await fromBlob.readMemory(ROOT_PID, address, 2 * PAGE)).toEqual(expectedMemory(ROOT_PID, address, 2 * PAGE));
    expect((await fromBlob.verify()).ok).toBe(true);
  });
});

describe('sections with a codec other than raw', () => {
  // A stand-in codec 1 ("reversed bytes"): the reader must hand every non-raw payload to the decoder.
  const reverse = (bytes: Uint8Array): Uint8Array => bytes.slice().reverse();

  async function encodedImage(): Promise<Uint8Array> {
    const sink = new MemorySink();
    const w = new ImageWriter(sink, wasm);
    const meta = encodeMetadata({ format: 'cryo', pids: [7], rootPid: 7 });
    await w.addSection({ type: SectionType.IMAGE_META, codec: 1, rawLength: meta.length }, reverse(meta));
    await w.addProcess({ pid: 7, comm: 'encoded', vmas: [{ start: 0x1000, end: 0x3000 }] });
    await w.addPageMap(7, [{ vaddr: 0x1000n, pageCount: 2, kind: PageKind.DATA, storeIndex: 0 }]);
    const pages = storePages(7, 0, 2);
    await w.addSection({ type: SectionType.PAGEDATA, owner: 7, key: 0, codec: 1, rawLength: pages.length }, reverse(pages));
    await w.finish();
    return sink.bytes();
  }

  it('are decoded by OpenOptions.decoder, once per section for readMemory, and refused without one', async (ctx) => {
    const bytes = await encodedImage();
    const without = await openWith(bytes, wasm).catch((e: unknown) => e);
    expect(without).toBeInstanceOf(CryoUnsupportedError);
    const error = without as CryoUnsupportedError;
    if (/expected (at most )?0,/.test(error.message)) ctx.skip(); // this build of the core knows codec 0 only
    expect(error.code).toBe('UNKNOWN_CODEC');
    expect(error.offset).toBe(16);
    let calls = 0;
    const decoder = { decode: (_section: SectionInfo, stored: Uint8Array) => { calls++; return reverse(stored); } };
    const image = await openWith(bytes, wasm, { decoder });
    expect(image.meta.pids).toEqual([7]);
    expect(image.process(7)!.vmas[0]!.pagesStored).toBe(2);
    calls = 0;
    expect(await image.readMemory(7, 0x1000, 100)).toEqual(storePage(7, 0).subarray(0, 100));
    expect(await image.readMemory(7, 0x1ff0, 32)).toEqual(expectedMemoryOf(7, 0x1ff0, 32));
    expect(calls).toBe(1);
    expect((await image.verify()).ok).toBe(true);
    // copied as stored, the file is identical
    const sink = new MemorySink();
    const w = new ImageWriter(sink, wasm);
    for (const s of image.sections) await w.copySection(s, await image.readStoredSection(s));
    await w.finish();
    expectSameBytes(sink.bytes(), bytes);
    // a decoder giving the wrong length is a format error
    const bad = { decode: (_s: SectionInfo, stored: Uint8Array) => stored.subarray(1) };
    await expect(openWith(bytes, wasm, { decoder: bad })).rejects.toMatchObject({ code: 'DECODED_LENGTH', offset: 16 });
  });
});

describe('page kinds other than DATA and ZERO', () => {
  it('are refused by readMemory with a CryoUnsupportedError naming the entry, never read as DATA', async (ctx) => {
    const sink = new MemorySink();
    const w = new ImageWriter(sink, wasm);
    await w.addImageMeta({ format: 'cryo', pids: [7], rootPid: 7 });
    await w.addProcess({ pid: 7 });
    const pageMap = await w.addPageMap(7, [
      { vaddr: 0x1000n, pageCount: 1, kind: PageKind.DATA, storeIndex: 0 },
      { vaddr: 0x2000n, pageCount: 1, kind: 2 as PageKind, storeIndex: 0 },
    ]);
    await w.addPageData(7, 0, storePage(7, 0));
    await w.finish();
    const opened = await openWith(sink.bytes(), wasm).catch((e: unknown) => e);
    if (opened instanceof CryoFormatError && opened.code === 'PAGEMAP_KIND') ctx.skip(); // core knows kinds 0 and 1 only
    const image = opened as CryoImage;
    expect(await image.readMemory(7, 0x1000, 8)).toEqual(storePage(7, 0).subarray(0, 8));
    await expect(image.readMemory(7, 0x1ff8, 16)).rejects.toMatchObject({
      name: 'CryoUnsupportedError', code: 'UNSUPPORTED_PAGE_KIND', offset: pageMap.payloadOffset + 24,
    });
  });
});

function expectedMemoryOf(pid: number, address: number, length: number): Uint8Array {
  const pages = storePages(pid, 0, 2);
  return pages.subarray(address - 0x1000, address - 0x1000 + length);
}

describe('environment neutrality', () => {
  it('src/core, src/index.ts and src/browser.ts import nothing but relative modules and @msgpack/msgpack', async () => {
    const { readdir } = await import('node:fs/promises');
    const root = join(import.meta.dirname, '..', 'src');
    const files = [
      ...(await readdir(join(root, 'core'))).filter((f) => f.endsWith('.ts')).map((f) => join(root, 'core', f)),
      join(root, 'index.ts'),
      join(root, 'browser.ts'),
    ];
    for (const path of files) {
      const text = await readFile(path, 'utf8');
      for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
        expect(spec!.startsWith('./') || spec!.startsWith('../') || spec === '@msgpack/msgpack', `${path} imports ${spec}`).toBe(true);
      }
      expect(text, path).not.toMatch(/\bBuffer\.|\bprocess\.(env|pid|argv|cwd|platform|stdout|stderr|exit|nextTick)\b|require\(/);
    }
  });
});

describe('Node entry', () => {
  it('writes a file atomically with mode 0600 and opens it by path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cryo-format-'));
    try {
      const path = join(dir, 'tiny.cryo');
      const written = await writeImageFile(path, async (w) => {
        await w.addImageMeta({ format: 'cryo', pids: [7], rootPid: 7 });
        await w.addProcess({ pid: 7, comm: 'tiny' });
        await w.addPageMap(7, [{ vaddr: 0x1000n, pageCount: 1, kind: PageKind.DATA, storeIndex: 0 }]);
        await w.addPageData(7, 0, storePage(7, 0));
      });
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(path)).size).toBe(written.fileLength);
      expect(await readFile(path)).toEqual(Buffer.from(await buildTinyLike()));
      const image = await openFile(path);
      try {
        expect(image.process(7)!.comm).toBe('tiny');
        expect(await image.readMemory(7, 0x1000, PAGE)).toEqual(storePage(7, 0));
        expect((await image.verify()).ok).toBe(true);
      } finally {
        await image.close();
      }
      await expect(writeImageFile(join(dir, 'fails.cryo'), async () => { throw new Error('boom'); })).rejects.toThrow('boom');
      const { readdir } = await import('node:fs/promises');
      expect((await readdir(dir)).sort()).toEqual(['tiny.cryo']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('builds the tiny image used by the corruption tests', async () => {
    const tiny = await buildTinyImage(wasm);
    const image = await openWith(tiny, wasm);
    expect(image.process(7)!.vmas[0]!.pagesStored).toBe(1);
    expect(image.process(7)!.vmas[0]!.zeroPages).toBe(1);
    expect((await image.verify()).ok).toBe(true);
  });
});

async function buildTinyLike(): Promise<Uint8Array> {
  const { MemorySink, ImageWriter } = await import('../src/index.js');
  const sink = new MemorySink();
  const w = new ImageWriter(sink, wasm);
  await w.addImageMeta({ format: 'cryo', pids: [7], rootPid: 7 });
  await w.addProcess({ pid: 7, comm: 'tiny' });
  await w.addPageMap(7, [{ vaddr: 0x1000n, pageCount: 1, kind: PageKind.DATA, storeIndex: 0 }]);
  await w.addPageData(7, 0, storePage(7, 0));
  await w.finish();
  return sink.bytes();
}
