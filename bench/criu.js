// Reading CRIU checkpoints: `cryo-img inspect --json` on CRIU image directories (the real fixtures and
// a synthetic one with 10,000 more VMAs) beside the crit work that prints the same information
// (`crit x DIR ps`, `fds`, `mems`, `rss`: four runs) and `crit show` of every image file, when a crit
// is installed (Debian: apt-get install criu; it is crit 3.17 there, which prints nr_pages 0 for
// CRIU >= 4.2 pagemaps but decodes everything else). Then, in-process: entries decoded per second on
// the 10,000-VMA image (mm decode alone; the whole model; the inspect report), and convert throughput.
//
// `node bench/criu.js` (needs a build: npx tsc -p tsconfig.json). BENCH_ROUNDS (default 5): best of N.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, fmt, printTable, root } from './lib.js';

const { decodeImage, encodeImage, MemoryDirectory, openCriuImage } = await import(join(root, 'dist', 'criu', 'index.js'));
const { buildInspectReport } = await import(join(root, 'dist', 'cli', 'inspect-report.js'));
const { convertToCryo } = await import(join(root, 'dist', 'convert', 'index.js'));
const { ImageWriter, MemorySink, loadWasm } = await import(join(root, 'dist', 'node.js'));

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const fixtures = join(root, 'test', 'fixtures', 'criu');
const work = mkdtempSync(join(tmpdir(), 'cryo-bench-criu-'));
const crit = spawnSync('crit', ['--help'], { stdio: 'ignore' }).status === 0 ? 'crit' : null;
const critVersion = crit ? (spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'criu'], { encoding: 'utf8' }).stdout || '(version unknown)') : null;

/** Best wall time of `rounds` runs of a list of commands run one after another (seconds). */
function best(commands) {
  let min = Infinity;
  for (let i = 0; i < rounds; i++) {
    const start = process.hrtime.bigint();
    for (const [cmd, args, cwd] of commands) {
      const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd, maxBuffer: 1 << 30 });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
    }
    min = Math.min(min, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return min;
}

/** The counter fixture with `extra` more anonymous VMAs (in a free range, after the real ones' order kept). */
function syntheticFiles(extra) {
  const dir = join(fixtures, 'counter');
  const files = {};
  for (const name of readdirSync(dir)) {
    if (statSync(join(dir, name)).isFile()) files[name] = new Uint8Array(readFileSync(join(dir, name)));
  }
  const mm = decodeImage(files['mm-23547.img'], 'mm-23547.img').entries[0];
  const vmas = mm.vmas;
  const template = vmas.find((v) => Number(v.start) === 0x7ff25542d000); // private anonymous
  const synthetic = Array.from({ length: extra }, (_, i) => ({ ...template, start: 0x100000000000 + i * 0x2000, end: 0x100000001000 + i * 0x2000 }));
  const all = [...vmas, ...synthetic].sort((a, b) => Number(a.start) - Number(b.start));
  files['mm-23547.img'] = encodeImage('MM', [{ ...mm, vmas: all }]);
  return { files, vmaCount: all.length };
}

try {
  // ---- the CLI against crit -------------------------------------------------------------------------
  const { files, vmaCount } = syntheticFiles(10_000);
  const big = join(work, 'counter-10k');
  mkdirSync(big);
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(big, name), bytes);
  const dirs = [...['sleep', 'counter', 'tree', 'threads'].map((n) => [n, join(fixtures, n)]), [`counter + 10,000 VMAs (${vmaCount})`, big]];
  const archive = join(work, 'tree.tar.gz');
  spawnSync('tar', ['-czf', archive, '-C', join(fixtures, 'tree'), '.']);

  const node = best([[process.execPath, ['-e', '0']]]);
  const rows = [];
  for (const [name, dir] of dirs) {
    const ours = best([[process.execPath, [cli, 'inspect', '--json', dir]]]);
    const row = [name, fmt(ours)];
    if (crit) {
      const x = best(['ps', 'fds', 'mems', 'rss'].map((what) => ['crit', ['x', '.', what], dir]));
      const images = readdirSync(dir).filter((f) => f.endsWith('.img') && !f.startsWith('pages-'));
      const show = best(images.map((f) => ['crit', ['show', f], dir]));
      row.push(fmt(x), fmt(show), `${images.length}`, (x / ours).toFixed(1) + 'x');
    }
    rows.push(row);
  }
  rows.push(['tree.tar.gz (archive)', fmt(best([[process.execPath, [cli, 'inspect', '--json', archive]]])), ...(crit ? ['-', '-', '-', '-'] : [])]);
  printTable(
    `CRIU directory: cryo-img inspect --json (one run) vs crit (${crit ? `crit ${critVersion}` : 'crit not installed'}); best of ${rounds}, seconds; node startup alone ${fmt(node)} s`,
    crit ? ['checkpoint', 'inspect --json', 'crit x ps+fds+mems+rss', 'crit show each image', 'images', 'crit x / inspect'] : ['checkpoint', 'inspect --json'],
    rows,
  );
  if (!crit) console.log('crit is not installed: install Debian package criu (apt-get install -y criu) to compare');

  // ---- in-process: entries decoded per second on the 10,000-VMA image ----------------------------------
  const mmBytes = files['mm-23547.img'];
  let decodeBest = Infinity;
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    const img = decodeImage(mmBytes, 'mm-23547.img');
    decodeBest = Math.min(decodeBest, performance.now() - t0);
    if (img.entries[0].vmas.length !== vmaCount) throw new Error('decode lost VMAs');
  }
  let modelBest = Infinity;
  let reportBest = Infinity;
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    const image = await openCriuImage(new MemoryDirectory(files, 'synthetic'));
    const t1 = performance.now();
    const report = buildInspectReport(image, { path: 'synthetic', bytes: 0, sections: null }, { pids: [], threads: true, maps: true, fds: true, env: false, pagemap: true });
    const t2 = performance.now();
    if (report.processes[0].maps.length !== vmaCount) throw new Error('model lost VMAs');
    modelBest = Math.min(modelBest, t1 - t0);
    reportBest = Math.min(reportBest, t2 - t0);
    await image.close();
  }
  const rate = (ms) => Math.round(vmaCount / (ms / 1000)).toLocaleString('en');
  printTable(`in-process, ${vmaCount} VMAs (mm image ${mmBytes.length} bytes), best of 30 / 15, ms`, ['what', 'ms', 'VMA entries/s'], [
    ['decode mm image (protobuf)', decodeBest.toFixed(2), rate(decodeBest)],
    ['whole model (openCriuImage: every image, fds, argv)', modelBest.toFixed(2), rate(modelBest)],
    ['model + inspect report', reportBest.toFixed(2), rate(reportBest)],
  ]);

  // ---- convert: pages per second (in memory, no disk) -----------------------------------------------
  const wasm = await loadWasm();
  const convRows = [];
  for (const name of ['counter', 'tree']) {
    const dir = join(fixtures, name);
    const own = {};
    for (const f of readdirSync(dir)) if (statSync(join(dir, f)).isFile()) own[f] = new Uint8Array(readFileSync(join(dir, f)));
    let bestMs = Infinity;
    let summary;
    let bytes = 0;
    for (let i = 0; i < rounds; i++) {
      const image = await openCriuImage(new MemoryDirectory(own, name));
      const sink = new MemorySink();
      const writer = new ImageWriter(sink, wasm);
      const t0 = performance.now();
      summary = await convertToCryo(image, writer);
      await writer.finish();
      bestMs = Math.min(bestMs, performance.now() - t0);
      bytes = sink.length;
      await image.close();
    }
    convRows.push([name, summary.pages, bytes, bestMs.toFixed(1), ((summary.pages * 4096) / 2 ** 20 / (bestMs / 1000)).toFixed(0)]);
  }
  printTable(`convertToCryo in memory (model already open), best of ${rounds}`, ['fixture', 'pages', '.cryo bytes', 'ms', 'page MiB/s'], convRows);

  // ---- cryo-img convert on disk: a CRIU directory with a big anonymous mapping, beside cp + sync --------
  const mib = Number(process.env.BENCH_CRIU_MIB ?? 256);
  const bigDir = join(work, `counter-${mib}m`);
  mkdirSync(bigDir);
  const src = join(fixtures, 'counter');
  const own = {};
  for (const f of readdirSync(src)) if (statSync(join(src, f)).isFile()) own[f] = new Uint8Array(readFileSync(join(src, f)));
  const pages = mib * 256;
  const vaddr = 0x7fff80000000; // above the stack, below [vsyscall]
  const mmEntry = decodeImage(own['mm-23547.img'], 'mm').entries[0];
  const anon = mmEntry.vmas.find((v) => Number(v.start) === 0x7ff25542d000);
  const vmas = [...mmEntry.vmas, { ...anon, start: vaddr, end: vaddr + pages * 4096 }].sort((a, b) => (BigInt(a.start) < BigInt(b.start) ? -1 : 1));
  own['mm-23547.img'] = encodeImage('MM', [{ ...mmEntry, vmas }]);
  const pm = decodeImage(own['pagemap-23547.img'], 'pagemap').entries;
  own['pagemap-23547.img'] = encodeImage('PAGEMAP', [...pm, { ...pm[1], vaddr, compat_nr_pages: 0, flags: 4, nr_pages: pages }]);
  for (const [f, bytes] of Object.entries(own)) if (f !== 'pages-1.img') writeFileSync(join(bigDir, f), bytes);
  {
    // pages-1.img: the real pages, then the big mapping's (pseudo-random, so nothing compresses or dedups)
    const { openSync, writeSync, closeSync } = await import('node:fs');
    const fd = openSync(join(bigDir, 'pages-1.img'), 'w');
    writeSync(fd, own['pages-1.img']);
    const chunk = new Uint8Array(1 << 20);
    let x = 0x12345678;
    for (let i = 0; i < mib; i++) {
      const v = new Uint32Array(chunk.buffer);
      for (let k = 0; k < v.length; k++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; v[k] = x >>> 0; }
      writeSync(fd, chunk);
    }
    closeSync(fd);
  }
  const bigBytes = readdirSync(bigDir).reduce((n, f) => n + statSync(join(bigDir, f)).size, 0);
  spawnSync('sync');
  const cp = best([['sh', ['-c', `cp -r "${bigDir}" "${bigDir}.copy" && sync && rm -rf "${bigDir}.copy"`]]]);
  const conv = best([['sh', ['-c', `"${process.execPath}" "${cli}" convert "${bigDir}" -o "${bigDir}.cryo" 2>/dev/null && rm -f "${bigDir}.cryo"`]]]);
  const insp = best([[process.execPath, [cli, 'inspect', '--json', bigDir]]]);
  printTable(`a CRIU directory of ${(bigBytes / 2 ** 20).toFixed(0)} MiB (counter + ${mib} MiB anonymous mapping), best of ${rounds}`, ['what', 'seconds', 'MiB/s'], [
    ['cp -r + sync + rm (copy limit)', fmt(cp), (bigBytes / 2 ** 20 / cp).toFixed(0)],
    ['cryo-img convert (+ rm)', fmt(conv), (bigBytes / 2 ** 20 / conv).toFixed(0)],
    ['cryo-img inspect --json', fmt(insp), '-'],
  ]);
} finally {
  rmSync(work, { recursive: true, force: true });
}
