// Pack, unpack, page reads, diff and incremental images on realistic memory (bigheap: structs with
// pointers, strings, counters, ~1/16 zero pages), beside the tools users would pick instead:
//   pack/unpack  vs  zstd -1, zstd -3 (both -T2: the same two cores our workers use), lz4 -1, gzip -1
//                    (single-threaded tools; they cannot use the second core) on the raw image;
//   diff         vs  cmp -l (lists every differing byte) and a C reference that memcmp()s pages;
//   incremental  vs  the packed full image (a process that changed 5% of its pages, a few bytes each);
//   page reads   from a packed image through the library (readMemory, 1 MiB at a time).
// Every output goes to /dev/null (no disk in the numbers), inputs are in the page cache (each is read
// once before timing), times are the best of BENCH_RUNS runs (default 3) on this noisy 2-core VM, and
// peak RSS (VmHWM, sampled from /proc) is shown per command next to the image size.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, helper, printTable, root, startProgram, stop } from './lib.js';

const sizes = (process.env.BENCH_PACK_MIB ?? '300').split(',').map(Number);
const diffMiB = Number(process.env.BENCH_DIFF_MIB ?? 1024);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const work = mkdtempSync(join(tmpdir(), 'cryo-bench-pack-'));
const MB = 1e6;

/** Runs cmd with stdout to `out` (a path, default /dev/null); returns { seconds, rssKiB, status }. */
function run(cmd, args, out = '/dev/null') {
  return new Promise((resolve, reject) => {
    const fd = openSync(out, 'w');
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', fd, 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    let hwm = 0;
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) hwm = Math.max(hwm, Number(m[1]));
      } catch { /* exited */ }
    };
    const timer = setInterval(sample, 5);
    child.once('error', reject);
    child.once('exit', (status) => {
      clearInterval(timer);
      closeSync(fd);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (status !== 0 && !(cmd === 'cmp' && status === 1)) reject(new Error(`${cmd} ${args.join(' ')}: exit ${status}: ${stderr}`));
      else resolve({ seconds, rssKiB: hwm, status, stderr });
    });
    sample();
  });
}

/** Best of `runs`: lowest time; RSS is the highest seen. */
async function best(cmd, args, out) {
  let result = null;
  for (let i = 0; i < runs; i++) {
    const r = await run(cmd, args, out);
    if (!result || r.seconds < result.seconds) result = { ...r, rssKiB: Math.max(r.rssKiB, result?.rssKiB ?? 0) };
    else result.rssKiB = Math.max(result.rssKiB, r.rssKiB);
  }
  return result;
}

const mbs = (bytes, s) => `${(bytes / MB / s).toFixed(0)}`;
const mib = (kib) => `${(kib / 1024).toFixed(0)} MiB`;
const size = (bytes) => `${(bytes / MB).toFixed(1)} MB`;

async function dumpBigheap(mib, path) {
  const { child, ready } = await startProgram('bigheap', [String(mib)]);
  try {
    const r = spawnSync(helper, ['dump', '--pid', String(child.pid), '-o', path], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`dump failed: ${r.stderr}`);
    return ready;
  } finally {
    await stop(child);
  }
}

const warm = (path) => spawnSync('cat', [path], { stdio: ['ignore', 'ignore', 'ignore'] });
const node = process.execPath;

try {
  // ---- pack / unpack / page reads ----
  const packRows = [];
  const readRows = [];
  for (const mibSize of sizes) {
    const raw = join(work, `heap-${mibSize}.cryo`);
    await dumpBigheap(mibSize, raw);
    const rawBytes = statSync(raw).size;
    warm(raw);
    const packed = join(work, `heap-${mibSize}.packed.cryo`);
    const ours = await best(node, [cli, 'pack', raw, '-o', '-', '-q'], packed);
    const packedBytes = statSync(packed).size;
    warm(packed);
    const oursUn = await best(node, [cli, 'unpack', packed, '-o', '-', '-q']);
    packRows.push([`${mibSize} MiB heap`, 'cryo-img pack (2 workers)', size(packedBytes), (rawBytes / packedBytes).toFixed(2), mbs(rawBytes, ours.seconds), mib(ours.rssKiB), mbs(rawBytes, oursUn.seconds), mib(oursUn.rssKiB)]);
    for (const [name, cmd, args, dargs] of [
      ['zstd -1 -T2', 'zstd', ['-1', '-T2', '-q', '-c', raw], ['-d', '-q', '-c']],
      ['zstd -3 -T2', 'zstd', ['-3', '-T2', '-q', '-c', raw], ['-d', '-q', '-c']],
      ['lz4 -1', 'lz4', ['-1', '-q', '-c', raw], ['-d', '-q', '-c']],
      ['gzip -1', 'gzip', ['-1', '-c', raw], ['-d', '-c']],
    ]) {
      const out = join(work, `heap-${mibSize}.${name.replace(/\W+/g, '_')}`);
      const c = await best(cmd, args, out);
      const bytes = statSync(out).size;
      warm(out);
      const d = await best(cmd, [...dargs, out]);
      packRows.push(['', name, size(bytes), (rawBytes / bytes).toFixed(2), mbs(rawBytes, c.seconds), mib(c.rssKiB), mbs(rawBytes, d.seconds), mib(d.rssKiB)]);
      rmSync(out, { force: true });
    }
    // Page reads through the library from the packed image (and the raw one), 1 MiB per readMemory.
    const reader = join(work, 'read-all.mjs');
    writeFileSync(reader, `
      import { openCryoImage, readMemoryInto } from ${JSON.stringify(join(root, 'dist', 'node.js'))};
      const image = await openCryoImage(process.argv[2]);
      const reuse = process.argv[3] === 'into';
      const buffer = new Uint8Array(1 << 20);
      const start = performance.now();
      let n = 0;
      for (const p of image.processes) for (const e of p.pageMap) {
        for (let i = 0; i < e.pageCount; i += 256) {
          const k = Math.min(256, e.pageCount - i);
          const at = e.vaddr + BigInt(i * 4096);
          if (reuse) {
            await readMemoryInto(image, p.pid, at, buffer.subarray(0, k * 4096));
            n += k * 4096;
          } else n += (await image.readMemory(p.pid, at, k * 4096)).length;
        }
      }
      const s = (performance.now() - start) / 1000;
      process.stderr.write(JSON.stringify({ bytes: n, seconds: s }));
      await image.close();`);
    for (const [label, path, mode] of [['packed, readMemory', packed, 'alloc'], ['packed, readMemoryInto (reused buffer)', packed, 'into'], ['raw, readMemory', raw, 'alloc'], ['raw, readMemoryInto (reused buffer)', raw, 'into']]) {
      let bestRead = null;
      for (let i = 0; i < runs; i++) {
        const r = await run(node, [reader, path, mode]);
        const j = JSON.parse(r.stderr);
        if (!bestRead || j.seconds < bestRead.seconds) bestRead = { ...j, rssKiB: r.rssKiB };
      }
      readRows.push([`${mibSize} MiB heap`, label, size(bestRead.bytes), mbs(bestRead.bytes, bestRead.seconds), mib(bestRead.rssKiB)]);
    }
    rmSync(packed, { force: true });
    if (mibSize !== diffMiB) rmSync(raw, { force: true });
  }
  printTable('pack and unpack (raw image → packed; MB/s of the raw image; output to /dev/null; best of ' + runs + ')',
    ['image', 'tool', 'size', 'ratio', 'pack MB/s', 'pack RSS', 'unpack MB/s', 'unpack RSS'], packRows);
  printTable('page reads through the library (readMemory, 1 MiB at a time, whole image, in-process time)',
    ['image', 'from', 'bytes', 'MB/s', 'RSS'], readRows);

  // ---- diff of two 1 GiB images, and incremental images ----
  const a = join(work, `heap-${diffMiB}.cryo`);
  if (!sizes.includes(diffMiB)) await dumpBigheap(diffMiB, a);
  const b = join(work, `heap-${diffMiB}.changed.cryo`);
  // B: the same process after it changed 5% of its pages, a few bytes each (a counter bumped, a
  // pointer moved: 8 to 24 bytes per page), written by the library from A.
  const changer = join(work, 'change.mjs');
  writeFileSync(changer, `
    import { openCryoImage, writeImageFile } from ${JSON.stringify(join(root, 'dist', 'node.js'))};
    const image = await openCryoImage(process.argv[2]);
    let seed = 7; const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    let changed = 0, pages = 0;
    await writeImageFile(process.argv[3], async (w) => {
      for (const s of image.sections) {
        const bytes = await image.readSection(s);
        if (s.typeName === 'PAGEDATA') {
          for (let p = 0; p < bytes.length; p += 4096) {
            pages++;
            if (rand() < 0.05 && bytes.subarray(p, p + 4096).some((x) => x)) {
              changed++;
              const words = 1 + Math.floor(rand() * 3);
              for (let k = 0; k < words; k++) {
                const at = p + Math.floor(rand() * 512) * 8;
                bytes[at] = (bytes[at] + 1 + Math.floor(rand() * 200)) & 255;
                bytes[at + 1] ^= Math.floor(rand() * 256);
              }
            }
          }
        }
        await w.addSection({ type: s.type, owner: s.owner, key: s.key }, bytes);
      }
    });
    process.stderr.write(JSON.stringify({ changed, pages }));`);
  const changedRun = await run(node, [changer, a, b]);
  const { changed, pages } = JSON.parse(changedRun.stderr);
  const cref = join(work, 'pagecmp');
  const cc = spawnSync('cc', ['-O2', '-o', cref, join(root, 'bench', 'pagecmp.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc pagecmp.c: ${cc.stderr}`);
  warm(a);
  warm(b);
  const imageBytes = statSync(a).size;
  const ourDiff = await best(node, [cli, 'diff', a, b, '-q']);
  const ourDiffJson = await best(node, [cli, 'diff', a, b, '--json', '--bytes', '-q']);
  // Not to /dev/null: GNU cmp notices it and stops at the first difference (as cmp -s).
  const cmpRun = await best('cmp', ['-l', a, b], join(work, 'cmp.out'));
  const cRun = await best(cref, [a, b]);
  const diffRows = [
    ['cryo-img diff', mbs(2 * imageBytes, ourDiff.seconds), ourDiff.seconds.toFixed(2), mib(ourDiff.rssKiB)],
    ['cryo-img diff --json --bytes', mbs(2 * imageBytes, ourDiffJson.seconds), ourDiffJson.seconds.toFixed(2), mib(ourDiffJson.rssKiB)],
    ['cmp -l', mbs(2 * imageBytes, cmpRun.seconds), cmpRun.seconds.toFixed(2), mib(cmpRun.rssKiB)],
    ['C memcmp per page (bench/pagecmp.c)', mbs(2 * imageBytes, cRun.seconds), cRun.seconds.toFixed(2), mib(cRun.rssKiB)],
  ];
  printTable(`diff of two ${(imageBytes / 2 ** 30).toFixed(2)} GiB images (${changed} of ${pages} pages changed; MB/s of both inputs)`,
    ['tool', 'MB/s', 'seconds', 'RSS'], diffRows);

  // Incremental: B against A (both packed), beside B packed in full; squash it back.
  const aPacked = join(work, 'a.packed.cryo');
  const bPacked = join(work, 'b.packed.cryo');
  const bInc = join(work, 'b.inc.cryo');
  const squashed = join(work, 'b.squashed.cryo');
  const packA = await run(node, [cli, 'pack', a, '-o', aPacked, '-q']);
  const packB = await run(node, [cli, 'pack', b, '-o', bPacked, '-q']);
  const inc = await run(node, [cli, 'pack', b, '--parent', aPacked, '-o', bInc, '-q']);
  const squash = await run(node, [cli, 'squash', bInc, '-o', squashed, '-q']);
  const unpackInc = await run(node, [cli, 'unpack', bInc, '-o', '-', '-q']);
  const full = statSync(bPacked).size;
  const incBytes = statSync(bInc).size;
  printTable('incremental image (5% of pages changed, a few bytes each)', ['image', 'size', '% of packed full', 'seconds', 'RSS'], [
    ['raw B', size(imageBytes), '', '', ''],
    ['packed A (parent)', size(statSync(aPacked).size), '', packA.seconds.toFixed(2), mib(packA.rssKiB)],
    ['packed B (full)', size(full), '100', packB.seconds.toFixed(2), mib(packB.rssKiB)],
    ['B --parent A', size(incBytes), (100 * incBytes / full).toFixed(2), inc.seconds.toFixed(2), mib(inc.rssKiB)],
    ['squash B+A', size(statSync(squashed).size), (100 * statSync(squashed).size / full).toFixed(2), squash.seconds.toFixed(2), mib(squash.rssKiB)],
    ['unpack B+A (to /dev/null)', '', '', unpackInc.seconds.toFixed(2), mib(unpackInc.rssKiB)],
  ]);
  console.log('\nRSS = peak resident set (VmHWM) of the whole process, worker threads included.');
} finally {
  rmSync(work, { recursive: true, force: true });
}
