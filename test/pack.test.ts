// pack, unpack, incremental images and squash: real dumps (bigheap, counter) packed and read back
// through every command; chains with a missing or altered parent refused with a named error; corrupt
// compressed payloads refused with a CryoFormatError naming the offset (never a trap).
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, renameSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CryoFormatError } from '../src/core/errors.js';
import { Codec, PAGE_SIZE, SectionType } from '../src/core/format.js';
import { PageKind } from '../src/core/model.js';
import type { CryoImage } from '../src/core/reader.js';
import { ImageWriter, MemorySink } from '../src/core/writer.js';
import { diffImages } from '../src/diff/index.js';
import { loadWasm, openCryoImage, verifyFile } from '../src/node.js';
import { WasmEngine, codecLevel, decodeLz4Js } from '../src/codec/engine.js';
import { cliPath, helperPath, startProgram, tempDir } from './helpers/programs.js';

const PAGE = BigInt(PAGE_SIZE);

function dump(pid: number, out: string, kill = false): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(helperPath, ['dump', '--pid', String(pid), '-o', out, ...(kill ? ['--kill'] : [])], (error, _o, stderr) =>
      error ? reject(new Error(`dump failed: ${stderr}`)) : resolve());
  });
}

function cli(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Every stored page of every process, read through the library, must be equal in both images. */
async function samePageData(a: CryoImage, b: CryoImage): Promise<number> {
  let pages = 0;
  for (const p of a.processes) {
    for (const e of p.pageMap) {
      const x = await a.readMemory(p.pid, e.vaddr, e.pageCount * PAGE_SIZE);
      const y = await b.readMemory(p.pid, e.vaddr, e.pageCount * PAGE_SIZE);
      expect(Buffer.compare(Buffer.from(x), Buffer.from(y)), `pid ${p.pid} run at 0x${e.vaddr.toString(16)}`).toBe(0);
      pages += e.pageCount;
    }
    expect(b.process(p.pid)!.pageMap.reduce((n, e) => n + e.pageCount, 0)).toBe(p.pageMap.reduce((n, e) => n + e.pageCount, 0));
  }
  return pages;
}

describe('pack and unpack', () => {
  const dir = tempDir('cryo-pack-');
  const raw = join(dir.path, 'heap.cryo');
  const packed = join(dir.path, 'heap.packed.cryo');
  const unpacked = join(dir.path, 'heap.unpacked.cryo');

  beforeAll(async () => {
    const heap = await startProgram('bigheap', ['24']);
    try {
      await dump(heap.pid, raw, true);
    } finally {
      await heap.stop();
    }
    execFileSync(process.execPath, [cliPath, 'pack', raw, '-o', packed, '-q']);
    execFileSync(process.execPath, [cliPath, 'unpack', packed, '-o', unpacked, '-q']);
  });
  afterAll(() => dir.remove());

  it('packs smaller, with zero pages as ZERO runs and compressed PAGEDATA sections', async () => {
    expect(statSync(packed).size).toBeLessThan(statSync(raw).size / 3);
    const image = await openCryoImage(packed);
    try {
      const p = image.processes[0]!;
      expect(p.pageMap.some((e) => e.kind === PageKind.ZERO)).toBe(true);
      const data = image.sections.filter((s) => s.type === SectionType.PAGEDATA);
      expect(data.every((s) => s.rawLength <= 1 << 20)).toBe(true);
      expect(data.some((s) => s.codec === Codec.LZ4 || s.codec === Codec.LZ4_DELTA)).toBe(true);
      expect((statSync(packed).mode & 0o777).toString(8)).toBe('600');
    } finally {
      await image.close();
    }
  });

  it('pack -> unpack gives back byte-identical page data (raw, codec 0 only, streaming order)', async () => {
    const a = await openCryoImage(raw);
    const b = await openCryoImage(packed);
    const c = await openCryoImage(unpacked);
    try {
      const pages = await samePageData(a, b);
      expect(pages).toBeGreaterThan(6000);
      await samePageData(a, c);
      expect(c.sections.every((s) => s.codec === Codec.RAW)).toBe(true);
      const order = c.sections.map((s) => s.type);
      expect(order.lastIndexOf(SectionType.PAGEMAP)).toBeLessThan(order.indexOf(SectionType.PAGEDATA));
      const d = await diffImages(a, b);
      expect(d.totals.pagesChanged).toBe(0);
      expect(d.processes.changed).toEqual([]);
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  it('identical pages are stored once (several runs, one store index)', async () => {
    // An image whose process has the same page at two addresses.
    const a = await openCryoImage(raw);
    const wasm = await loadWasm();
    try {
      const p = a.processes[0]!;
      const sink = new MemorySink();
      const w = new ImageWriter(sink, wasm);
      await w.addImageMeta(a.meta.raw);
      await w.addProcess(p.raw);
      const page = await a.readMemory(p.pid, p.pageMap.find((e) => e.kind === PageKind.DATA)!.vaddr, PAGE_SIZE);
      const base = p.vmas.find((v) => v.kind === 'heap' || v.kind === 'anon')!.start;
      await w.addPageMap(p.pid, [{ vaddr: base, pageCount: 3, kind: PageKind.DATA, storeIndex: 0 }]);
      const three = new Uint8Array(3 * PAGE_SIZE);
      three.set(page, 0);
      three.set(page, 2 * PAGE_SIZE);
      three[PAGE_SIZE] = 1;
      await w.addPageData(p.pid, 0, three);
      await w.finish();
      const { openImage } = await import('../src/core/reader.js');
      const small = await openImage(sink.bytes(), wasm);
      const { packImage } = await import('../src/pack/pack.js');
      const out = new MemorySink();
      const w2 = new ImageWriter(out, wasm);
      const stats = await packImage(small, w2);
      await w2.finish();
      expect(stats.dedup).toBe(1);
      const again = await openImage(out.bytes(), wasm, { decoder: (await import('../src/codec/pages.js')).engineDecoder(wasm) });
      const runs = again.processes[0]!.pageMap;
      expect(runs.map((e) => [e.pageCount, e.storeIndex])).toEqual([[2, 0], [1, 0]]);
      expect(again.processes[0]!.storedPageCount).toBe(2);
      expect(await again.readMemory(p.pid, base + 2n * PAGE, PAGE_SIZE)).toEqual(page);
    } finally {
      await a.close();
    }
  });

  it('inspect, read and verify work on packed images', () => {
    const v = cli('verify', packed);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    const i = cli('inspect', packed, '--json');
    expect(i.status).toBe(0);
    const json = JSON.parse(i.stdout);
    const rawJson = JSON.parse(cli('inspect', raw, '--json').stdout);
    expect(json.processes[0].pid).toBe(rawJson.processes[0].pid);
    expect(json.processes[0].memory.mappedBytes).toBe(rawJson.processes[0].memory.mappedBytes);
    const pid = String(json.processes[0].pid);
    const heapStart = rawJson.processes[0].maps.find((m: { size: number }) => m.size > 16 << 20).start;
    const r1 = spawnSync(process.execPath, [cliPath, 'read', raw, '--pid', pid, '--addr', heapStart, '--len', '100000', '--raw']);
    const r2 = spawnSync(process.execPath, [cliPath, 'read', packed, '--pid', pid, '--addr', heapStart, '--len', '100000', '--raw']);
    expect(r2.status).toBe(0);
    expect(Buffer.compare(r1.stdout, r2.stdout)).toBe(0);
  });

  it('a corrupt compressed payload (with a valid CRC) is a CryoFormatError naming the offset', async () => {
    const wasm = await loadWasm();
    const image = await openCryoImage(packed);
    const target = image.sections.find((s) => s.type === SectionType.PAGEDATA && s.codec !== Codec.RAW)!;
    const out = new MemorySink();
    const w = new ImageWriter(out, wasm);
    for (const s of image.sections) {
      const stored = await image.readStoredSection(s);
      if (s === target) {
        const bad = stored.slice();
        bad[Math.floor(bad.length / 2)] ^= 0xff;
        bad[Math.floor(bad.length / 3)] ^= 0x5a;
        await w.addSection({ type: s.type, owner: s.owner, key: s.key, codec: s.codec, rawLength: s.rawLength }, bad);
      } else {
        await w.copySection(s, stored);
      }
    }
    await w.finish();
    await image.close();
    const path = join(dir.path, 'corrupt.cryo');
    await (await import('node:fs/promises')).writeFile(path, out.bytes());
    const report = await verifyFile(path);
    expect(report.ok).toBe(false);
    // Malformed LZ4 (CODEC_PAYLOAD), or well-formed but decoding to other bytes (CODEC_RAW_CRC).
    const problem = report.problems.find((p) => p.code === 'CODEC_PAYLOAD' || p.code === 'CODEC_RAW_CRC')!;
    expect(problem).toBeDefined();
    expect(problem.message).toMatch(/compressed payload \(codec \d\) of the PAGEDATA section at \d+ at offset \d+/);
    const v = cli('verify', path);
    expect(v.status).toBe(1);
    expect(v.stdout).toMatch(/compressed payload/);
    const bad = await openCryoImage(path);
    try {
      const run = bad.processes[0]!.pageMap.filter((e) => e.kind === PageKind.DATA);
      let thrown: unknown = null;
      for (const e of run) {
        try {
          await bad.readMemory(bad.processes[0]!.pid, e.vaddr, e.pageCount * PAGE_SIZE);
        } catch (error) {
          thrown = error;
          break;
        }
      }
      // A flipped byte may still decode (to other bytes): then only the CRC-less decode check can tell.
      if (thrown) expect(thrown).toBeInstanceOf(CryoFormatError);
    } finally {
      await bad.close();
    }
  });
});

describe('codec robustness', () => {
  it('random and mutated payloads give CryoFormatError or the right length, never a trap', async () => {
    const wasm = await loadWasm();
    const engine = await WasmEngine.create(wasm.module);
    const input = new Uint8Array(1 << 20);
    for (let i = 0; i < input.length; i += 8) new DataView(input.buffer).setBigUint64(i, BigInt(i >> 6) * 0x10001n + BigInt(i & 63), true);
    const enc = engine.encode(input, codecLevel(3));
    expect(enc.codec).not.toBe(Codec.RAW);
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    let errors = 0;
    for (let round = 0; round < 300; round++) {
      const bad = enc.payload.slice(0, round % 7 === 0 ? Math.floor(rand() * enc.payload.length) + 1 : enc.payload.length);
      for (let k = 0; k < 1 + (round % 5); k++) bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
      const section = { codec: enc.codec, rawLength: input.length, offset: 1000, payloadOffset: 1048, typeName: 'PAGEDATA' };
      for (const decode of [() => engine.decodeToA(section, bad), () => decodeLz4Js(bad, section)]) {
        try {
          expect(decode().length).toBe(input.length);
        } catch (error) {
          expect(error).toBeInstanceOf(CryoFormatError);
          expect((error as CryoFormatError).offset).toBeGreaterThanOrEqual(1048);
          errors++;
        }
      }
    }
    expect(errors).toBeGreaterThan(100);
    // The engine still works.
    expect(Buffer.compare(Buffer.from(engine.decodeToA({ codec: enc.codec, rawLength: input.length, offset: 0, payloadOffset: 0, typeName: 'X' }, enc.payload)), Buffer.from(input))).toBe(0);
  });

  it('the raw Wasm exports of the engine return codes for hostile pointers and lengths, never trap', async () => {
    const { instance } = await WebAssembly.instantiate(await readFile(new URL('../dist/cryo.wasm', import.meta.url)), {});
    const e = instance.exports as Record<string, (...args: unknown[]) => number> & { memory: WebAssembly.Memory };
    const top = e.memory.buffer.byteLength;
    for (const ptr of [0, 1, top - 1, top - 4096, top, top + 1, 0x7fffffff, -1]) {
      for (const n of [0, 1, 16, 4096, 0x7fffffff, -1]) {
        expect(() => e.xxh64Blocks!(ptr, n)).not.toThrow();
        expect(() => e.isZeroBlock!(ptr, n)).not.toThrow();
        expect(() => e.pageHashes!(ptr, n, ptr)).not.toThrow();
        expect(() => e.comparePages!(ptr, ptr, n, ptr)).not.toThrow();
        expect(() => e.countDiffBytes!(ptr, ptr, n)).not.toThrow();
        expect(() => e.diffRanges!(ptr, ptr, n, ptr, n)).not.toThrow();
        expect(() => e.xorBytes!(ptr, ptr, ptr, n)).not.toThrow();
        expect(() => e.lz4Compress!(ptr, n, ptr, n, ptr, 16, 1)).not.toThrow();
        expect(() => e.lz4Decompress!(ptr, n, ptr, n)).not.toThrow();
        expect(() => e.deltaEncode!(ptr, ptr, n, 8)).not.toThrow();
        expect(() => e.deltaDecode!(ptr, n, 64)).not.toThrow();
      }
    }
  });
});

describe('incremental images', () => {
  const dir = tempDir('cryo-inc-');
  const base = join(dir.path, 'base.cryo');
  const next = join(dir.path, 'next.cryo');
  const inc = join(dir.path, 'next.inc.cryo');
  let pid = 0;
  let counterAddress = 0n;

  beforeAll(async () => {
    const counter = await startProgram('counter', [join(dir.path, 'out.log'), '10']);
    pid = counter.pid;
    counterAddress = BigInt(counter.ready.counter!);
    try {
      await dump(pid, base);
      await new Promise((r) => setTimeout(r, 200));
      await dump(pid, next, true);
    } finally {
      await counter.stop();
    }
    execFileSync(process.execPath, [cliPath, 'pack', next, '--parent', base, '-o', inc, '-q']);
  });
  afterAll(() => dir.remove());

  it('stores only what differs from the parent, and reads back the same memory through the chain', async () => {
    expect(statSync(inc).size).toBeLessThan(statSync(next).size / 10);
    const a = await openCryoImage(next);
    const b = await openCryoImage(inc);
    try {
      const kinds = b.processes[0]!.pageMap.map((e) => e.kind);
      expect(kinds).toContain(PageKind.PARENT);
      expect(kinds).toContain(PageKind.DELTA);
      expect(b.meta.raw.parent).toMatchObject({ path: 'base.cryo' });
      await samePageData(a, b);
      const counter = await b.readMemory(pid, counterAddress, 8);
      expect(counter).toEqual(await a.readMemory(pid, counterAddress, 8));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('inspect, read, verify and diff work on the incremental image', () => {
    expect(cli('verify', inc).status).toBe(0);
    expect(cli('inspect', inc).stdout).toContain(`${pid} counter`);
    const r = cli('read', inc, '--pid', String(pid), '--addr', '0x' + counterAddress.toString(16), '--len', '8');
    expect(r.status).toBe(0);
    const d = cli('diff', next, inc);
    expect(d.stdout).toMatch(/0 pages changed/);
  });

  it('squash gives a self-contained image with the same memory; unpack too', async () => {
    const squashed = join(dir.path, 'squashed.cryo');
    const flat = join(dir.path, 'flat.cryo');
    expect(cli('squash', inc, '-o', squashed, '-q').status).toBe(0);
    expect(cli('unpack', inc, '-o', flat, '-q').status).toBe(0);
    copyFileSync(base, join(dir.path, 'base.keep'));
    renameSync(base, join(dir.path, 'gone.cryo'));
    try {
      const a = await openCryoImage(next);
      for (const path of [squashed, flat]) {
        const b = await openCryoImage(path);
        try {
          expect(b.meta.raw.parent).toBeUndefined();
          expect(b.processes[0]!.pageMap.every((e) => e.kind === PageKind.DATA || e.kind === PageKind.ZERO)).toBe(true);
          await samePageData(a, b);
        } finally {
          await b.close();
        }
      }
      await a.close();
    } finally {
      renameSync(join(dir.path, 'gone.cryo'), base);
    }
  });

  it('rewrite accepts packed and incremental images (packed sections copied as stored)', async () => {
    const packedNext = join(dir.path, 'next.packed.cryo');
    expect(cli('pack', next, '-o', packedNext, '-q').status).toBe(0);
    for (const input of [packedNext, inc]) {
      const out = input.replace(/\.cryo$/, '.rewritten.cryo');
      const r = cli('rewrite', input, '-o', out, '--relocate', `${dir.path}=/moved`);
      expect(r.status, r.stderr).toBe(0);
      expect(cli('verify', out).status).toBe(0);
      const a = await openCryoImage(next);
      const b = await openCryoImage(out);
      try {
        await samePageData(a, b);
        expect(b.processes[0]!.fds.find((f) => f.fd === 3)!.path).toBe('/moved/out.log');
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    }
  });

  it('a missing parent is refused with an error naming it', async () => {
    renameSync(base, join(dir.path, 'moved.cryo'));
    try {
      const error = await openCryoImage(inc).then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(CryoFormatError);
      expect((error as CryoFormatError).code).toBe('PARENT_MISSING');
      expect((error as CryoFormatError).message).toMatch(/parent base\.cryo cannot be opened \(no such file\)/);
      for (const cmd of [['verify', inc], ['inspect', inc], ['read', inc, '--pid', String(pid), '--addr', '4096', '--len', '1']]) {
        const r = cli(...cmd);
        expect(r.status).toBe(1);
        expect(r.stdout + r.stderr).toMatch(/base\.cryo/);
      }
      // A resolver supplies it from elsewhere.
      const image = await openCryoImage(inc, { resolveParent: () => openCryoImage(join(dir.path, 'moved.cryo')) });
      expect(await image.readMemory(pid, counterAddress, 8)).toHaveLength(8);
      await image.close();
    } finally {
      renameSync(join(dir.path, 'moved.cryo'), base);
    }
  });

  it('an altered or wrong parent is refused with an error naming it and both digests', async () => {
    const keep = join(dir.path, 'base.orig');
    copyFileSync(base, keep);
    try {
      copyFileSync(next, base); // another image in its place
      const error = await openCryoImage(inc).then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(CryoFormatError);
      expect((error as CryoFormatError).code).toBe('PARENT_DIGEST');
      expect((error as CryoFormatError).message).toMatch(/parent base\.cryo is not the image this one was made against.*expected digest [0-9a-f]{64}, found digest [0-9a-f]{64}/);
      const v = cli('verify', inc);
      expect(v.status).toBe(1);
      expect(v.stdout).toMatch(/base\.cryo is not the image/);
    } finally {
      copyFileSync(keep, base);
    }
  });
});

describe('dump --parent', () => {
  const dir = tempDir('cryo-dump-parent-');
  afterAll(() => dir.remove());

  it('writes an incremental packed image straight from the helper (no raw file), holding the state at the dump', async () => {
    const log = join(dir.path, 'out.log');
    const counter = await startProgram('counter', [log, '10']);
    const base = join(dir.path, 'base.cryo');
    const inc = join(dir.path, 'inc.cryo');
    try {
      await dump(counter.pid, base);
      await new Promise((r) => setTimeout(r, 200));
      const r = cli('dump', String(counter.pid), '--parent', base, '-o', inc, '--kill', '-q');
      expect(r.status, r.stderr).toBe(0);
    } finally {
      await counter.stop();
    }
    const files = (await import('node:fs')).readdirSync(dir.path);
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(statSync(inc).size).toBeLessThan(statSync(base).size / 5);
    expect(cli('verify', inc).status).toBe(0);
    const image = await openCryoImage(inc);
    try {
      expect(image.meta.raw.parent).toMatchObject({ path: 'base.cryo' });
      const p = image.processes[0]!;
      expect(p.pageMap.some((e) => e.kind === PageKind.PARENT)).toBe(true);
      const lines = (await readFile(log, 'utf8')).trim().split('\n');
      const counterAddress = BigInt(counter.ready.counter!);
      const value = new DataView((await image.readMemory(p.pid, counterAddress, 8)).buffer).getBigUint64(0, true);
      expect(`count ${value}`).toBe(lines[lines.length - 1]);
      expect(p.fds.find((f) => f.fd === 3)!.pos).toBe(statSync(log).size);
    } finally {
      await image.close();
    }
  });
});

describe('hostile incremental images', () => {
  it('a PARENT page the parent does not hold, or PARENT pages without a parent, are CryoFormatErrors naming the entry', async () => {
    const wasm = await loadWasm();
    const { openImage } = await import('../src/core/reader.js');
    const { engineDecoder, imageDigest, linkImage } = await import('../src/codec/pages.js');
    const build = async (meta: Record<string, unknown>, entries: { vaddr: bigint; pageCount: number; kind: number; storeIndex: number }[], pages: number) => {
      const sink = new MemorySink();
      const w = new ImageWriter(sink, wasm);
      await w.addImageMeta({ format: 'cryo', pids: [7], ...meta });
      await w.addProcess({ pid: 7, vmas: [{ start: 0x10000, end: 0x20000, prot: 3, shared: false, offset: 0, name: '', kind: 'anon' }] });
      await w.addPageMap(7, entries as never);
      if (pages) await w.addPageData(7, 0, new Uint8Array(pages * PAGE_SIZE).fill(0x41));
      await w.finish();
      return sink.bytes();
    };
    const parentBytes = await build({}, [{ vaddr: 0x10000n, pageCount: 1, kind: PageKind.DATA, storeIndex: 0 }], 1);
    const parent = await openImage(parentBytes, wasm);
    const digest = await imageDigest(parent);
    const open = async (bytes: Uint8Array, withParent: boolean) => {
      const image = await openImage(bytes, wasm, { decoder: engineDecoder(wasm) });
      await linkImage(image, withParent ? { resolveParent: async () => openImage(parentBytes, wasm) } : {});
      return image;
    };
    // PARENT at 0x11000: the parent stores only 0x10000.
    const child = await build({ parent: { path: 'p.cryo', digest } }, [
      { vaddr: 0x10000n, pageCount: 1, kind: PageKind.PARENT, storeIndex: 0 },
      { vaddr: 0x11000n, pageCount: 1, kind: PageKind.PARENT, storeIndex: 0 },
    ], 0);
    const image = await open(child, true);
    expect(await image.readMemory(7, 0x10000, 16)).toEqual(new Uint8Array(16).fill(0x41));
    const error = await image.readMemory(7, 0x11000, 16).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(CryoFormatError);
    expect((error as CryoFormatError).code).toBe('PARENT_PAGE');
    expect((error as CryoFormatError).message).toMatch(/page-map entry at offset \d+: pid 7: the parent image does not hold page 0x11000/);
    // The same page map without a parent reference.
    const orphan = await build({}, [{ vaddr: 0x10000n, pageCount: 1, kind: PageKind.PARENT, storeIndex: 0 }], 0);
    const e2 = await open(orphan, false).then(() => null, (e: unknown) => e);
    expect((e2 as CryoFormatError).code).toBe('PARENT_MISSING');
    // A DELTA run past the store is refused when the image is opened.
    const past = await build({ parent: { path: 'p.cryo', digest } }, [{ vaddr: 0x10000n, pageCount: 2, kind: PageKind.DELTA, storeIndex: 0 }], 1);
    const e3 = await openImage(past, wasm, { decoder: engineDecoder(wasm) }).then(() => null, (e: unknown) => e);
    expect((e3 as CryoFormatError).code).toBe('PAGEMAP_STORE_RANGE');
    // A malformed parent reference.
    const bad = await build({ parent: { path: 'p.cryo', digest: new Uint8Array(3) } }, [], 0);
    const e4 = await open(bad, true).then(() => null, (e: unknown) => e);
    expect((e4 as CryoFormatError).code).toBe('PARENT_REF');
  });
});
