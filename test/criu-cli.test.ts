// The CLI on real CRIU checkpoints (test/fixtures/criu): inspect (text and JSON) of an image directory
// and of a tar.gz archive, everything `crit x DIR ps/fds/mems/rss` prints visible in inspect's text,
// read of the marker strings, convert → verify → the same model and the same memory, and clear errors
// for corrupted images.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath } from './helpers/programs.js';
import { openImage, type AnyImage } from '../src/node.js';
import type { ProcessInfo } from '../src/core/model.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'criu');
const NAMES = ['sleep', 'counter', 'tree', 'threads'] as const;

function cli(...args: string[]) {
  const result = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'buffer', maxBuffer: 64 << 20 });
  return { status: result.status, stdout: result.stdout, text: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** The marker strings of the fixture README: [fixture, pid, address, text]. */
const MARKERS: [string, number, number, string][] = [
  ['counter', 23547, 0x564b976f82a0, 'CRYO-MARKER-1234'],
  ['counter', 23547, 0x564b6679e080, 'CRYO-DATA-GLOBAL-42'],
  ['counter', 23547, 0x7ff25542d000, 'CRYO-PAGE-0000'],
  ['counter', 23547, 0x7ff25542d000 + 255 * 4096, 'CRYO-PAGE-0255'],
  ['tree', 23579, 0x7f33073a9000, 'CRYO-SHMEM-TREE'],
  ['tree', 23582, 0x7f33073a9000 + 4096, 'CRYO-CHILD-1-WAS-HERE'],
  ['tree', 23583, 0x7f33073a9000 + 8192, 'CRYO-CHILD-2-WAS-HERE'],
  ['tree', 23579, 0x559c0eb582a0, 'CRYO-TREE-PARENT'],
  ['tree', 23582, 0x559c0eb582a0, 'CRYO-TREE-CHILD-1'],
  ['tree', 23583, 0x559c0eb582a0, 'CRYO-TREE-CHILD-2'],
  ['threads', 23615, 0x7fd7c4000b70, 'CRYO-THREAD-0'],
  ['threads', 23615, 0x7fd7c8000b70, 'CRYO-THREAD-1'],
  ['threads', 23615, 0x7fd7bc000b70, 'CRYO-THREAD-2'],
];

/** The report without what necessarily differs between two files holding the same checkpoint. */
function content(report: any, dropPageMap = true) {
  const { path: _p, bytes: _b, sections: _s, format: _f, tool: _t, ...image } = report.image;
  const processes = report.processes.map((p: any) => {
    if (!dropPageMap) return p;
    const { pageMap: _m, ...rest } = p;
    return rest;
  });
  return { ...report, image, processes };
}

/** The model without what is representation: raw maps, the page map's store numbering. */
function model(p: ProcessInfo) {
  return {
    ...p, raw: null, pageMap: null, storedPageCount: null,
    threads: p.threads.map((t) => ({ ...t, raw: null })),
    vmas: p.vmas.map((v) => ({ ...v, raw: null })),
    fds: p.fds.map((f) => ({ ...f, raw: null })),
  };
}

/** Process sections of inspect's text, by pid. */
function sections(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const part of text.split(/\n(?=process \d+ )/).slice(1)) out.set(Number(/^process (\d+)/.exec(part)![1]), part);
  return out;
}

const pad12 = (hex: string) => hex.padStart(12, '0');

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'criu-cli-'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('inspect of a CRIU image directory shows what crit x ps/fds/mems/rss print', () => {
  for (const name of NAMES) {
    it(name, () => {
      const dir = join(FIXTURES, name);
      const r = cli('inspect', dir);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const text = r.text;
      const procs = sections(text);
      const fixture = (what: string) => readFileSync(join(dir, `crit-x-${what}.txt`), 'utf8');

      // ps: pid, pgid, sid, comm, and the tree
      for (const line of fixture('ps').split('\n').slice(1).filter(Boolean)) {
        const [pid, pgid, sid, comm] = line.trim().split(/\s+/);
        expect(text).toContain(`process ${pid} (${comm})`);
        expect(procs.get(Number(pid))).toMatch(new RegExp(`pgid ${pgid}  sid ${sid}`));
        expect(text).toMatch(new RegExp(`^ +(?:[└├]─ )?${pid} ${comm} `, 'm'));
      }

      // per-pid blocks of fds, mems, rss
      const blocks = (what: string) => {
        const out = new Map<number, string[]>();
        let cur: string[] = [];
        for (const line of fixture(what).split('\n')) {
          if (/^\d+$/.test(line)) out.set(Number(line), (cur = []));
          else if (line.trim()) cur.push(line);
        }
        return out;
      };

      for (const [pid, lines] of blocks('fds')) {
        const sec = procs.get(pid)!;
        for (const line of lines) {
          const m = /^\t\s*(\S+): (.*)$/.exec(line)!;
          const [, fd, target] = m as unknown as [string, string, string];
          if (fd === 'cwd') { expect(sec).toContain(`cwd: ${target} `); continue; }
          if (fd === 'root') { expect(sec).toContain(`root: ${target} `); continue; }
          const row = sec.split('\n').find((l) => new RegExp(`^ +${fd}  `).test(l));
          expect(row, `fd ${fd} of ${pid}`).toBeDefined();
          const pipe = /^pipe\[(\d+)\]$/.exec(target);
          const unix = /^unix\[(\d+) /.exec(target);
          if (pipe) expect(row).toContain(`pipe:[${pipe[1]}]`);
          else if (unix) expect(row).toContain(`socket:[${unix[1]}]`);
          else expect(row).toContain(target);
        }
      }

      for (const [pid, lines] of blocks('mems')) {
        const sec = procs.get(pid)!;
        const rows = sec.split('\n');
        for (const line of lines) {
          const exe = /^\texe\s+(.*)$/.exec(line);
          if (exe) { expect(sec).toContain(`exe: ${exe[1]}`); continue; }
          const m = /^\t([0-9a-f]+)-([0-9a-f]+)\s+([r-][w-][x-])(?: (.*?))?( \*)?$/.exec(line)!;
          expect(m, line).not.toBeNull();
          const [, start, end, prot, what] = m as unknown as [string, string, string, string, string | undefined];
          const row = rows.find((l) => l.startsWith(`    ${pad12(start)}  `));
          expect(row, `${pid} ${start}`).toBeDefined();
          expect(row).toContain(pad12(end));
          expect(row).toContain(` ${prot}`);
          if (what === undefined) continue;
          const file = /^(\/\S*)(?: \+ (0x[0-9a-f]+))?( \(s\))?$/.exec(what);
          if (file) {
            expect(row).toContain(file[1]);
            if (file[2]) expect(row).toContain(` ${file[2]} `);
            expect(row).toContain(` ${prot}${file[3] ? 's' : 'p'} `);
          } else if (/^unknown path( \(s\))?$/.test(what)) {
            // crit cannot name a memfd (shared anonymous) mapping by its file id; we can
            expect(row).toMatch(/ (memfd|shmem) .*\(deleted\)$/);
            if (what.endsWith('(s)')) expect(row).toContain(` ${prot}s `);
          } else if (what === '[stack?]') expect(row).toContain('[stack]');
          else if (/^shmem\[/.test(what)) expect(row).toMatch(/ (shmem|memfd) /);
          else expect(row).toContain(what);
        }
      }

      // rss: every pagemap run (vaddr / pages), and the VMAs it falls in
      for (const [pid, lines] of blocks('rss')) {
        const sec = procs.get(pid)!;
        const rows = sec.slice(sec.indexOf('  page map (')).split('\n');
        const mapRows = sec.split('\n');
        let run: string | undefined;
        for (const line of lines) {
          const head = /^\t([0-9a-f]+) \/ (\d+)\s+(.*)$/.exec(line);
          const vmaPart = head ? head[3] : line.trim();
          if (head) {
            run = rows.find((l) => l.startsWith(`    ${pad12(head[1]!)}  `));
            expect(run, `${pid} run ${head[1]}`).toBeDefined();
            // crit 4.2 prints nr_pages; check ours against it
            expect(run!.split(/\s+/)[2]).toBe(head[2]);
          }
          const vma = /^([0-9a-f]+) \/ (\d+)/.exec(vmaPart);
          if (vma) {
            expect(run).toContain(pad12(vma[1]!));
            const vmaRow = mapRows.find((l) => l.startsWith(`    ${pad12(vma[1]!)}  `))!;
            const [, s, e] = vmaRow.split(/\s+/);
            expect((parseInt(e!, 16) - parseInt(s!, 16)) / 4096).toBe(Number(vma[2]));
          }
        }
      }
    });
  }
});

describe('inspect --json of a directory and of a tar.gz archive', () => {
  it('gives the same report, with the image size of each', () => {
    const archive = join(work, 'tree.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', join(FIXTURES, 'tree'), '.']);
    const d = cli('inspect', '--json', join(FIXTURES, 'tree'));
    const a = cli('inspect', '--json', archive);
    expect([d.status, a.status]).toEqual([0, 0]);
    const dr = JSON.parse(d.text);
    const ar = JSON.parse(a.text);
    expect(dr.schema).toBe('cryo-img.inspect/1');
    expect(dr.image.format).toBe('criu');
    expect(dr.image.sections).toBeNull();
    expect(ar.image.bytes).toBe(statSync(archive).size);
    const files = readdirSync(join(FIXTURES, 'tree')).filter((f) => statSync(join(FIXTURES, 'tree', f)).isFile());
    expect(dr.image.bytes).toBe(files.reduce((n, f) => n + statSync(join(FIXTURES, 'tree', f)).size, 0));
    expect(content(ar, false)).toEqual(content(dr, false));
    expect(dr.image.pids).toEqual([23579, 23582, 23583]);
    const child = dr.processes.find((p: any) => p.pid === 23582);
    expect(child).toMatchObject({ ppid: 23579, pgid: 23579, sid: 23579, comm: 'cryo-child-1', threadCount: 1 });
    const shm = child.maps.find((v: any) => v.start === '0x7f33073a9000');
    expect(shm).toMatchObject({ kind: 'memfd', prot: 'rw-s', pagesStored: 3, size: 65536 });
    expect(child.pageMap.length).toBeGreaterThan(0);
    expect(child.fds.filter((f: any) => f.type === 'pipe').map((f: any) => f.path)).toEqual(['pipe:[45326]', 'pipe:[45326]']);
  });
});

describe('read of marker strings', () => {
  for (const [name, pid, addr, text] of MARKERS) {
    it(`${name} ${pid} 0x${addr.toString(16)}: ${text}`, () => {
      const r = cli('read', join(FIXTURES, name), '--pid', String(pid), '--addr', `0x${addr.toString(16)}`, '--len', String(text.length), '--raw');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout.toString('latin1')).toBe(text);
    });
  }
  it('a hexdump, and a note for pages not stored', () => {
    const r = cli('read', join(FIXTURES, 'counter'), '--pid', '23547', '--addr', '0x564b6679a000', '--len', '16');
    expect(r.status).toBe(0);
    expect(r.text).toMatch(/^564b6679a000  00 00/);
    expect(r.stderr).toContain('0x564b6679a000-0x564b6679b000 is not stored');
  });
});

describe('convert → verify → the same model', () => {
  const converted = new Map<string, string>();
  for (const name of NAMES) {
    it(`${name}: convert, verify, inspect --json equal, every stored page equal, markers`, async () => {
      const out = join(work, `${name}.cryo`);
      const c = cli('convert', join(FIXTURES, name), '-o', out);
      expect(c.stderr).toContain(`wrote ${out}`);
      expect(c.status).toBe(0);
      expect(statSync(out).mode & 0o777).toBe(0o600);
      converted.set(name, out);
      const v = cli('verify', out);
      expect(v.text).toContain(': ok (');
      expect(v.status).toBe(0);

      const dj = JSON.parse(cli('inspect', '--json', '--threads', '--maps', '--fds', '--env', join(FIXTURES, name)).text);
      const cj = JSON.parse(cli('inspect', '--json', '--threads', '--maps', '--fds', '--env', out).text);
      expect(content(cj)).toEqual(content(dj));
      expect(cj.image.format).toBe('cryo');
      // everything but the page map was compared: threads with registers, maps, fds, environment
      expect(dj.processes.every((p: any) => p.threads && p.maps && p.fds && p.environ && !p.pageMap)).toBe(true);

      const criu = await openImage(join(FIXTURES, name));
      const cryo = await openImage(out);
      try {
        expect('sections' in cryo).toBe(true);
        expect(cryo.processes.map(model)).toEqual(criu.processes.map(model));
        expect([cryo.meta.host, cryo.meta.rootPid, cryo.meta.pids]).toEqual([criu.meta.host, criu.meta.rootPid, criu.meta.pids]);
        for (const p of criu.processes) {
          // threads: registers and the XSAVE area survive
          expect(cryo.process(p.pid)!.threads.every((t) => t.registers !== null && t.xstate !== null)).toBe(true);
          for (const v of p.vmas) {
            if (v.end > BigInt(Number.MAX_SAFE_INTEGER)) continue;
            const len = Number(v.end - v.start);
            if (v.pagesStored === 0 && len > 1 << 20) continue; // big reservations (glibc arenas): nothing to compare
            const a = await criu.readMemoryDetailed(p.pid, v.start, len);
            const b = await cryo.readMemoryDetailed(p.pid, v.start, len);
            expect(b.notStored, `${p.pid} ${v.name}`).toEqual(a.notStored);
            expect(Buffer.compare(Buffer.from(b.bytes), Buffer.from(a.bytes)), `${p.pid} ${v.start.toString(16)}`).toBe(0);
          }
          for (const f of p.fds) {
            for (const id of [f.contentBlob, f.pipe?.dataBlob ?? null]) {
              if (id !== null) expect(await cryo.readBlob(id)).toEqual(await criu.readBlob(id));
            }
          }
        }
        // every CRIU image file but the pages is kept verbatim
        const files = (cryo.meta.raw['criu'] as { files: Record<string, number> }).files;
        expect(Object.keys(files)).toContain('inventory.img');
        expect(Object.keys(files).some((f) => f.startsWith('pages-'))).toBe(false);
        expect(await cryo.readBlob(files['pstree.img']!)).toEqual(new Uint8Array(readFileSync(join(FIXTURES, name, 'pstree.img'))));
      } finally {
        await criu.close();
        await cryo.close();
      }
      for (const [n, pid, addr, text] of MARKERS.filter((m) => m[0] === name)) {
        const r = cli('read', out, '--pid', String(pid), '--addr', String(addr), '--len', String(text.length), '--raw');
        expect(r.status, n).toBe(0);
        expect(r.stdout.toString('latin1')).toBe(text);
      }
      for (const pid of dj.image.pids as number[]) {
        const args = ['--pid', String(pid), '--addr', '0x7f33073a8000', '--len', '20000'];
        const a = cli('read', join(FIXTURES, name), ...args);
        const b = cli('read', out, ...args);
        expect([b.text, b.stderr]).toEqual([a.text, a.stderr]);
      }
    });
  }

  it('tree: the shared memory pages are in each process page map', async () => {
    const image = await openImage(converted.get('tree') ?? join(work, 'tree.cryo'));
    try {
      for (const pid of [23579, 23582, 23583]) {
        expect(image.process(pid)!.pageMap.some((e) => e.vaddr === 0x7f33073a9000n && e.pageCount === 3)).toBe(true);
      }
    } finally {
      await image.close();
    }
  });

  it('converts a tar.gz archive to the same image content', () => {
    const archive = join(work, 'counter.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', join(FIXTURES, 'counter'), '.']);
    const out = join(work, 'counter-from-archive.cryo');
    expect(cli('convert', archive, '-o', out).status).toBe(0);
    expect(cli('verify', out).status).toBe(0);
    const a = JSON.parse(cli('inspect', '--json', out).text);
    const b = JSON.parse(cli('inspect', '--json', join(FIXTURES, 'counter')).text);
    expect(content(a)).toEqual(content(b));
  });

  it('a Podman-style container checkpoint (checkpoint/ + config.dump): the container metadata is kept', async () => {
    const root = join(work, 'podman');
    cpSync(join(FIXTURES, 'sleep'), join(root, 'checkpoint'), { recursive: true });
    writeFileSync(join(root, 'config.dump'), JSON.stringify({ id: 'c0ffee', name: 'sleeper', rootfsImageName: 'debian:12' }));
    writeFileSync(join(root, 'spec.dump'), JSON.stringify({ ociVersion: '1.0.2', process: { args: ['sleep', '1000'] } }));
    const archive = join(work, 'podman.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', root, '.']);
    const out = join(work, 'podman.cryo');
    const c = cli('convert', archive, '-o', out);
    expect(c.stderr).toContain('wrote');
    expect(cli('verify', out).status).toBe(0);
    const image = await openImage(out);
    try {
      const criu = image.meta.raw['criu'] as Record<string, any>;
      expect(criu['container']).toEqual({ id: 'c0ffee', name: 'sleeper', rootfsImageName: 'debian:12' });
      expect(criu['spec'].process.args).toEqual(['sleep', '1000']);
      expect(image.process(23472)!.comm).toBe('sleep');
    } finally {
      await image.close();
    }
  });

  it('--no-source-files keeps no CRIU files', async () => {
    const out = join(work, 'sleep-bare.cryo');
    expect(cli('convert', join(FIXTURES, 'sleep'), '-o', out, '--no-source-files').status).toBe(0);
    const image = await openImage(out);
    try {
      expect((image.meta.raw['criu'] as { files: object }).files).toEqual({});
    } finally {
      await image.close();
    }
    expect(statSync(out).size).toBeLessThan(statSync(join(work, 'sleep.cryo')).size);
  });
});

describe('diff of CRIU checkpoints', () => {
  it('a directory against its converted image, and against a tar.gz of itself: nothing changed', () => {
    const out = join(work, 'counter-diff.cryo');
    expect(cli('convert', join(FIXTURES, 'counter'), '-o', out).status).toBe(0);
    const archive = join(work, 'tree-diff.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', join(FIXTURES, 'tree'), '.']);
    for (const [a, b, pages] of [[join(FIXTURES, 'counter'), out, 285], [join(FIXTURES, 'tree'), archive, 96]] as const) {
      const r = cli('diff', '--json', '-q', a, b);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const d = JSON.parse(r.text);
      expect(d.processes.changed).toEqual([]);
      expect(d.totals).toEqual({ pagesCompared: pages, pagesChanged: 0, pagesAdded: 0, pagesRemoved: 0, bytesChanged: 0 });
    }
  });

  it('finds the changed bytes between two CRIU directories', () => {
    const dir = join(work, `counter-changed`);
    cpSync(join(FIXTURES, 'counter'), dir, { recursive: true });
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'pages-1.img'), 0o644);
    const pages = readFileSync(join(dir, 'pages-1.img'));
    pages.write('9999', 12960 + 12, 'latin1'); // CRYO-MARKER-1234 -> CRYO-MARKER-9999 (heap, 0x564b976f82a0)
    writeFileSync(join(dir, 'pages-1.img'), pages);
    const r = cli('diff', '--json', '--bytes', '-q', join(FIXTURES, 'counter'), dir);
    expect(r.status).toBe(0);
    const d = JSON.parse(r.text);
    expect(d.totals).toMatchObject({ pagesCompared: 285, pagesChanged: 1, bytesChanged: 4 });
    const region = d.processes.changed[0].memory.regions[0];
    expect(region.name).toBe('[heap]');
    expect(region.ranges).toEqual([{ address: '0x564b976f82ac', length: 4, from: '31323334', to: '39393939' }]);
  });
});

describe('errors', () => {
  function brokenCopy(name: string): string {
    const dir = join(work, `broken-${name}-${Math.random().toString(36).slice(2)}`);
    cpSync(join(FIXTURES, name), dir, { recursive: true });
    chmodSync(dir, 0o755);
    for (const f of readdirSync(dir)) chmodSync(join(dir, f), statSync(join(dir, f)).isDirectory() ? 0o755 : 0o644);
    return dir;
  }

  it('a truncated image file: exit 1, naming the file and the offset', () => {
    const dir = brokenCopy('counter');
    truncateSync(join(dir, 'mm-23547.img'), 500);
    for (const args of [['inspect', dir], ['inspect', '--json', dir], ['convert', dir, '-o', join(work, 'never.cryo')]]) {
      const r = cli(...args);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/mm-23547\.img: offset \d+: .*past the end/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(readdirSync(work).some((f) => f.includes('never'))).toBe(false);
  });

  it('a corrupted image file (bad protobuf): exit 1, naming the file and the offset', () => {
    const dir = brokenCopy('counter');
    const path = join(dir, 'core-23547.img');
    const bytes = readFileSync(path);
    bytes[12] = 0x0f; // first key of the first entry: field 1, wire type 7 (there is none)
    writeFileSync(path, bytes);
    for (const args of [['inspect', dir], ['convert', dir, '-o', join(work, 'never.cryo')]]) {
      const r = cli(...args);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`${path}: offset 12: entry 0 (core_entry): invalid wire type 7`);
    }
  });

  it('a truncated pages file: read fails naming pages-1.img', () => {
    const dir = brokenCopy('counter');
    truncateSync(join(dir, 'pages-1.img'), 16384);
    const r = cli('read', dir, '--pid', '23547', '--addr', '0x7ff25542d000', '--len', '16');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('pages-1.img');
  });

  it('convert refuses a .cryo input', () => {
    const out = join(work, 'sleep.cryo');
    if (!statSync(out, { throwIfNoEntry: false })) expect(cli('convert', join(FIXTURES, 'sleep'), '-o', out).status).toBe(0);
    const r = cli('convert', out, '-o', join(work, 'again.cryo'));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('already a .cryo image');
  });

  it('verify and rewrite of a CRIU directory say to convert it first', () => {
    for (const args of [['verify', join(FIXTURES, 'sleep')], ['rewrite', join(FIXTURES, 'sleep'), '-o', join(work, 'x.cryo'), '--pid-map', '23472:23473']]) {
      const r = cli(...args);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('a CRIU checkpoint, not a .cryo image: convert it first');
    }
  });
});

describe('library', () => {
  it('openImage gives a CRIU image for a directory and a .cryo image for a converted file', async () => {
    const dir: AnyImage = await openImage(join(FIXTURES, 'sleep'));
    try {
      expect('format' in dir && dir.format).toBe('criu');
      expect(dir.process(23472)!.comm).toBe('sleep');
    } finally {
      await dir.close();
    }
  });
});

import { ImageWriter, MemorySink, loadWasm, openImage as openAny } from '../src/node.js';
import { convertToCryo } from '../src/convert/index.js';
import { decodeImage } from '../src/criu/images.js';
import { encodeImage } from '../src/criu/encode.js';
import { MemoryDirectory } from '../src/criu/source.js';
import { openCriuImage } from '../src/criu/model.js';
import { openCriu } from '../src/criu/node.js';
import type { CheckpointImage } from '../src/core/model.js';

describe('convertToCryo (library)', () => {
  it('reads the source in pieces of at most 1 MiB and writes sections of at most 1 MiB', async () => {
    const criu = await openCriu(join(FIXTURES, 'counter'));
    let largest = 0;
    let reads = 0;
    const spy = new Proxy(criu, {
      get(target, key, receiver) {
        if (key === 'readMemoryDetailed') {
          return (pid: number, address: bigint, length: number) => {
            largest = Math.max(largest, length);
            reads++;
            return target.readMemoryDetailed(pid, address, length);
          };
        }
        const v = Reflect.get(target, key, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as CheckpointImage;
    try {
      const sink = new MemorySink();
      const writer = new ImageWriter(sink, await loadWasm());
      const summary = await convertToCryo(spy, writer);
      const written = await writer.finish();
      expect(summary.pages).toBe(285);
      expect(largest).toBeLessThanOrEqual(1 << 20);
      expect(reads).toBeGreaterThan(1);
      expect(Math.max(...written.sections.map((s) => s.rawLength))).toBeLessThanOrEqual(1 << 20);
      // one 1 MiB PAGEDATA section then the rest: 285 pages = 256 + 29
      expect(written.sections.filter((s) => s.typeName === 'PAGEDATA').map((s) => s.rawLength / 4096)).toEqual([256, 29]);
      const image = await openAny(sink.bytes());
      try {
        expect(image.process(23547)!.pageMap).toEqual(criu.process(23547)!.pageMap); // store numbering kept
      } finally {
        await image.close();
      }
    } finally {
      await criu.close();
    }
  });

  it('a 10,000-VMA checkpoint converts to the same model', async () => {
    const dir = join(FIXTURES, 'counter');
    const files: Record<string, Uint8Array> = {};
    for (const name of readdirSync(dir)) if (statSync(join(dir, name)).isFile()) files[name] = new Uint8Array(readFileSync(join(dir, name)));
    const mm = decodeImage(files['mm-23547.img']!, 'mm').entries[0]!;
    const vmas = mm['vmas'] as Record<string, unknown>[];
    const template = vmas.find((v) => Number(v['start']) === 0x7ff25542d000)!;
    const extra = Array.from({ length: 10_000 }, (_, i) => ({ ...template, start: 0x100000000000 + i * 0x2000, end: 0x100000001000 + i * 0x2000 }));
    files['mm-23547.img'] = encodeImage('MM', [{ ...mm, vmas: [...vmas, ...extra].sort((a, b) => Number(a['start']) - Number(b['start'])) }]);
    const criu = await openCriuImage(new MemoryDirectory(files, 'synthetic'));
    try {
      const sink = new MemorySink();
      const writer = new ImageWriter(sink, await loadWasm());
      await convertToCryo(criu, writer, { keepSourceFiles: false });
      await writer.finish();
      const image = await openAny(sink.bytes());
      try {
        expect(image.processes[0]!.vmas).toHaveLength(10_023);
        expect(image.processes.map(model)).toEqual(criu.processes.map(model));
      } finally {
        await image.close();
      }
    } finally {
      await criu.close();
    }
  });
});

describe('browser entry (in Node)', () => {
  it('openCriuArchive, directoryFromFiles and openCriuImage from src/browser.ts', async () => {
    const browser = await import('../src/browser.js');
    const archive = join(work, 'threads.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', join(FIXTURES, 'threads'), '.']);
    const fromArchive = await browser.openCriuImage(await browser.openCriuArchive(new Blob([readFileSync(archive)]), { label: 'threads.tar.gz' }));
    const names = readdirSync(join(FIXTURES, 'threads')).filter((f) => f.endsWith('.img'));
    const picked = names.map((f) => ({ path: `threads/${f}`, data: new Blob([readFileSync(join(FIXTURES, 'threads', f))]) }));
    const fromFiles = await browser.openCriuImage(await browser.directoryFromFiles(picked, 'picked'));
    try {
      for (const image of [fromArchive, fromFiles]) {
        expect(image.process(23615)!.threads.map((t) => t.comm)).toEqual(['cryo-main', 'cryo-worker-0', 'cryo-worker-1', 'cryo-worker-2']);
        const bytes = await image.readMemory(23615, 0x7fd7c4000b70n, 13);
        expect(new TextDecoder().decode(bytes)).toBe('CRYO-THREAD-0');
      }
    } finally {
      await fromArchive.close();
      await fromFiles.close();
    }
  });
});

import { launchBrowser } from './helpers/browser.js';
import { projectRoot } from './helpers/programs.js';
import { startStaticServer } from './helpers/static-server.js';

describe('in a real browser (headless Chromium, dist/browser.js)', () => {
  const PAGE = `<!doctype html>
<script type="importmap">{ "imports": {
  "@msgpack/msgpack": "/node_modules/@msgpack/msgpack/dist.esm/index.mjs",
  "fflate": "/node_modules/fflate/esm/browser.js" } }</script>
<script type="module">
  import { openCriuArchive, directoryFromFiles, openCriuImage } from '/dist/browser.js';
  const summary = async (image) => {
    const p = image.process(23582);
    const shm = await image.readMemory(23582, 0x7f33073aa000n, 21);
    const heap = await image.readMemory(23582, 0x559c0eb582a0n, 17);
    return { pids: image.processes.map((x) => x.pid), comm: p.comm, vmas: p.vmas.length, fds: p.fds.map((f) => f.path),
      shm: new TextDecoder().decode(shm), heap: new TextDecoder().decode(heap) };
  };
  window.fromArchive = async () => summary(await openCriuImage(await openCriuArchive(await (await fetch('/tree.tar.gz')).blob(), { label: 'tree.tar.gz' })));
  window.fromFolder = async (names) => {
    // what a dropped folder gives: Files with their relative paths
    const files = await Promise.all(names.map(async (n) => ({ path: 'tree/' + n, data: new File([await (await fetch('/test/fixtures/criu/tree/' + n)).blob()], n) })));
    return summary(await openCriuImage(await directoryFromFiles(files, 'dropped')));
  };
  window.loaded = true;
</script>`;

  it('a dropped folder and a tar.gz archive open as in Node', async () => {
    const archive = join(work, 'tree-browser.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', join(FIXTURES, 'tree'), '.']);
    const server = await startStaticServer(projectRoot, { '/criu.html': PAGE, '/tree.tar.gz': readFileSync(archive) });
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${server.url}/criu.html`);
      await page.waitForFunction(() => (window as unknown as { loaded?: boolean }).loaded === true);
      type W = { fromArchive(): Promise<unknown>; fromFolder(n: string[]): Promise<unknown> };
      const a = await page.evaluate(() => (window as unknown as W).fromArchive());
      const names = readdirSync(join(FIXTURES, 'tree')).filter((f) => f.endsWith('.img'));
      const f = await page.evaluate((n) => (window as unknown as W).fromFolder(n), names);
      expect(errors).toEqual([]);
      const node = await openCriu(join(FIXTURES, 'tree'));
      try {
        const p = node.process(23582)!;
        const expected = {
          pids: [23579, 23582, 23583], comm: 'cryo-child-1', vmas: p.vmas.length, fds: p.fds.map((x) => x.path),
          shm: 'CRYO-CHILD-1-WAS-HERE', heap: 'CRYO-TREE-CHILD-1',
        };
        expect(a).toEqual(expected);
        expect(f).toEqual(expected);
      } finally {
        await node.close();
      }
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
