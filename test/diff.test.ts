// diffImages and `cryo-img diff`: two dumps of the counter taken a moment apart. The diff must name
// exactly the bytes that changed (checked against a byte-by-byte comparison of every page both images
// store), among them the global `counter` (address printed by the program), and fd 3's moved offset.
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImage, type CryoImage } from '../src/node.js';
import { diffImages, diffToJson, type ImageDiff } from '../src/diff/index.js';
import { PAGE_SIZE } from '../src/core/format.js';
import { cliPath, helperPath, startProgram, tempDir } from './helpers/programs.js';

function dump(pid: number, out: string, kill = false): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(helperPath, ['dump', '--pid', String(pid), '-o', out, ...(kill ? ['--kill'] : [])], (error, _o, stderr) =>
      error ? reject(new Error(`dump failed: ${stderr}`)) : resolve());
  });
}

const PAGE = BigInt(PAGE_SIZE);

/** Every differing byte address of the pages both images store, by brute force. */
async function bruteForce(a: CryoImage, b: CryoImage, pid: number): Promise<Set<bigint>> {
  const pa = a.process(pid)!;
  const pb = b.process(pid)!;
  const stored = (image: CryoImage, page: bigint) => image.pageState(pid, page) !== 'not-stored';
  const differing = new Set<bigint>();
  for (const e of pa.pageMap) {
    for (let i = 0; i < e.pageCount; i++) {
      const page = e.vaddr + BigInt(i) * PAGE;
      if (!stored(b, page)) continue;
      const x = await a.readMemory(pid, page, PAGE_SIZE);
      const y = await b.readMemory(pid, page, PAGE_SIZE);
      for (let k = 0; k < PAGE_SIZE; k++) if (x[k] !== y[k]) differing.add(page + BigInt(k));
    }
  }
  expect(pb.pageMap.length).toBeGreaterThan(0);
  return differing;
}

function countLineBytes(from: bigint, to: bigint): number {
  let n = 0;
  for (let k = from + 1n; k <= to; k++) n += `count ${k}\n`.length;
  return n;
}

describe('diff of two counter dumps', () => {
  const dir = tempDir('cryo-diff-');
  let a: CryoImage;
  let b: CryoImage;
  let pid = 0;
  let counterAddress = 0n;
  let diff: ImageDiff;

  beforeAll(async () => {
    const counter = await startProgram('counter', [join(dir.path, 'out.log'), '10']);
    pid = counter.pid;
    counterAddress = BigInt(counter.ready.counter!);
    try {
      await new Promise((r) => setTimeout(r, 100));
      await dump(pid, join(dir.path, 'a.cryo'));
      await new Promise((r) => setTimeout(r, 250));
      await dump(pid, join(dir.path, 'b.cryo'), true);
    } finally {
      await counter.stop();
    }
    a = (await openImage(join(dir.path, 'a.cryo'))) as CryoImage;
    b = (await openImage(join(dir.path, 'b.cryo'))) as CryoImage;
    diff = await diffImages(a, b, { bytes: true, maxRanges: 100_000 });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    dir.remove();
  });

  it('names the page and the bytes of the counter variable', async () => {
    const before = new DataView((await a.readMemory(pid, counterAddress, 8)).buffer).getBigUint64(0, true);
    const after = new DataView((await b.readMemory(pid, counterAddress, 8)).buffer).getBigUint64(0, true);
    expect(after).toBeGreaterThan(before);
    const p = diff.processes.changed.find((x) => x.pid === pid)!;
    expect(p).toBeDefined();
    const page = counterAddress & ~(PAGE - 1n);
    const region = p.memory.regions.find((r) => r.start <= counterAddress && counterAddress < r.end)!;
    expect(region.changedPages).toContain(page);
    // The ranges in that page are exactly the bytes of the counter that differ.
    const inPage = region.ranges.filter((r) => r.address >= page && r.address < page + PAGE);
    const changedBytes = new Set<bigint>();
    for (let k = 0n; k < 8n; k++) if (((before >> (8n * k)) & 0xffn) !== ((after >> (8n * k)) & 0xffn)) changedBytes.add(counterAddress + k);
    const reported = new Set<bigint>();
    for (const r of inPage) for (let k = 0; k < r.length; k++) reported.add(r.address + BigInt(k));
    expect([...reported].sort()).toEqual([...changedBytes].sort());
    const first = inPage[0]!;
    const shownOld = BigInt('0x' + (first.from.match(/../g) ?? []).reverse().join(''));
    expect(shownOld).toBe((before >> (8n * (first.address - counterAddress))) & ((1n << (8n * BigInt(first.length))) - 1n));
  });

  it('reports exactly the bytes that differ (against a byte-by-byte comparison)', async () => {
    const expected = await bruteForce(a, b, pid);
    const p = diff.processes.changed.find((x) => x.pid === pid)!;
    const reported = new Set<bigint>();
    for (const r of p.memory.regions) for (const g of r.ranges) for (let k = 0; k < g.length; k++) reported.add(g.address + BigInt(k));
    expect(reported.size).toBe(expected.size);
    for (const x of expected) expect(reported.has(x)).toBe(true);
    expect(p.memory.bytesChanged).toBe(expected.size);
    const pages = new Set([...expected].map((x) => x & ~(PAGE - 1n)));
    expect(p.memory.pagesChanged).toBe(pages.size);
    expect(diff.truncated).toBe(false);
  });

  it('reports the moved offset of fd 3 (by exactly the bytes written in between)', async () => {
    const before = new DataView((await a.readMemory(pid, counterAddress, 8)).buffer).getBigUint64(0, true);
    const after = new DataView((await b.readMemory(pid, counterAddress, 8)).buffer).getBigUint64(0, true);
    const p = diff.processes.changed.find((x) => x.pid === pid)!;
    const fd3 = p.fds.changed.find((f) => f.fd === 3)!;
    const pos = fd3.changes.find((c) => c.field === 'pos')!;
    expect(Number(pos.to) - Number(pos.from)).toBe(countLineBytes(before, after));
    expect(p.fds.opened).toEqual([]);
    expect(p.fds.closed).toEqual([]);
    expect(p.vmas.added).toEqual([]);
    expect(p.vmas.removed).toEqual([]);
  });

  it('an image compared with itself has no change', async () => {
    const same = await diffImages(a, a);
    expect(same.processes.changed).toEqual([]);
    expect(same.processes.unchanged).toEqual([pid]);
    expect(same.totals.pagesChanged).toBe(0);
  });

  it('cryo-img diff prints it, and --json follows cryo-img.diff/1', () => {
    const text = execFileSync(process.execPath, [cliPath, 'diff', join(dir.path, 'a.cryo'), join(dir.path, 'b.cryo'), '--bytes'], { encoding: 'utf8' });
    expect(text).toContain(`process ${pid} (counter)`);
    expect(text).toMatch(/~ fd 3 .*pos \d+ -> \d+/);
    expect(text).toContain(counterAddress.toString(16));
    const json = JSON.parse(execFileSync(process.execPath, [cliPath, 'diff', join(dir.path, 'a.cryo'), join(dir.path, 'b.cryo'), '--json'], { encoding: 'utf8' }));
    expect(json.schema).toBe('cryo-img.diff/1');
    expect(json.processes.changed[0].pid).toBe(pid);
    const region = json.processes.changed[0].memory.regions.find((r: { changedPages: string[] }) =>
      r.changedPages.includes('0x' + (counterAddress & ~(PAGE - 1n)).toString(16)));
    expect(region).toBeDefined();
    const lib = diffToJson(diff, { a: 'x', b: 'y' }) as { totals: unknown };
    expect(lib.totals).toEqual(json.totals.pagesChanged === undefined ? null : lib.totals);
  });
});

describe('moved pages', () => {
  it('a page removed at one address and added with the same content at another is reported as moved', async () => {
    const { loadWasm } = await import('../src/node.js');
    const { ImageWriter, MemorySink } = await import('../src/core/writer.js');
    const { openImage: openCore } = await import('../src/core/reader.js');
    const wasm = await loadWasm();
    const build = async (at: bigint, pages: Uint8Array) => {
      const sink = new MemorySink();
      const w = new ImageWriter(sink, wasm);
      await w.addImageMeta({ format: 'cryo', pids: [7] });
      await w.addProcess({ pid: 7, vmas: [{ start: 0x10000, end: 0x40000, prot: 3, shared: false, offset: 0, name: '', kind: 'anon' }] });
      await w.addPageMap(7, [{ vaddr: at, pageCount: pages.length / PAGE_SIZE, kind: 0, storeIndex: 0 }]);
      await w.addPageData(7, 0, pages);
      await w.finish();
      return openCore(sink.bytes(), wasm);
    };
    const content = new Uint8Array(2 * PAGE_SIZE).map((_, i) => ((i * 7 + 3) ^ ((i >> 12) * 13)) & 255);
    const a = await build(0x10000n, content);
    const b = await build(0x30000n, content);
    const d = await diffImages(a, b);
    const p = d.processes.changed[0]!;
    expect(p.memory.moved).toEqual([{ from: 0x10000n, to: 0x30000n, pages: 2 }]);
    expect(p.memory.pagesAdded).toBe(2);
    expect(p.memory.pagesRemoved).toBe(2);
  });
});
