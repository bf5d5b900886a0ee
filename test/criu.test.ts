import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage } from '../src/criu/images.js';
import { toCritJson, stringifyCritJson } from '../src/criu/pretty.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'criu');
const NAMES = ['sleep', 'counter', 'tree', 'threads'];

/** JSON.parse that keeps integers beyond 2^53 exact (as bigint), like Python's json. */
function parseJsonBig(text: string): unknown {
  let i = 0;
  const ws = () => { while (/\s/.test(text[i] ?? '')) i++; };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; const o: Record<string, unknown> = {}; ws();
      if (text[i] === '}') { i++; return o; }
      for (;;) {
        ws(); const k = value() as string; ws(); i++; // ':'
        o[k] = value(); ws();
        if (text[i++] === '}') return o;
      }
    }
    if (c === '[') {
      i++; const a: unknown[] = []; ws();
      if (text[i] === ']') { i++; return a; }
      for (;;) { a.push(value()); ws(); if (text[i++] === ']') return a; }
    }
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const s = JSON.parse(text.slice(i, j + 1)) as string; i = j + 1; return s;
    }
    const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?|^true|^false|^null/.exec(text.slice(i, i + 40))!;
    i += m[0].length;
    if (/^-?\d+$/.test(m[0])) {
      const n = Number(m[0]);
      return Number.isSafeInteger(n) ? n : BigInt(m[0]);
    }
    return JSON.parse(m[0]);
  };
  return value();
}

function imageFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => (f.endsWith('.img') || f === 'stats-dump') && !f.startsWith('pages-')).sort();
}

describe('CRIU image decoding matches crit 4.2', () => {
  for (const name of NAMES) {
    const dir = join(FIXTURES, name);
    for (const file of imageFiles(dir)) {
      it(`${name}/${file}`, () => {
        const image = decodeImage(readFileSync(join(dir, file)), `${name}/${file}`);
        const ours = toCritJson(image);
        const crit = parseJsonBig(readFileSync(join(dir, 'crit-json', `${file}.json`), 'utf8'));
        expect(ours).toEqual(crit);
        expect(image.warnings).toEqual([]);
        expect(JSON.stringify(ours, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).not.toContain('$unknown');
        // the text is what crit show prints
        expect(stringifyCritJson(ours) + '\n').toBe(readFileSync(join(dir, 'crit-json', `${file}.json`), 'utf8'));
      });
    }
  }
});

import { CriuCheckpoint } from '../src/criu/checkpoint.js';
import { EXPLORERS } from '../src/criu/explore.js';
import { openCriuPath } from '../src/criu/node.js';

async function openFixture(name: string): Promise<CriuCheckpoint> {
  return CriuCheckpoint.open(await openCriuPath(join(FIXTURES, name)));
}

describe('crit x explorers', () => {
  for (const name of NAMES) {
    for (const what of ['ps', 'fds', 'mems', 'rss'] as const) {
      it(`${name}: x ${what}`, async () => {
        const cp = await openFixture(name);
        const text = await EXPLORERS[what](cp);
        expect(text).toBe(readFileSync(join(FIXTURES, name, `crit-x-${what}.txt`), 'utf8'));
        await cp.dir.close();
      });
    }
  }
});

const dec = new TextDecoder();
async function readString(cp: CriuCheckpoint, pid: number, addr: bigint | number, len: number): Promise<string> {
  const r = await cp.readMemory(pid, addr, len);
  expect(r.notStored).toEqual([]);
  return dec.decode(r.bytes);
}

describe('memory reads from pagemap + pages', () => {
  it('counter: markers on heap, .data, counter value, 1 MiB anon mapping', async () => {
    const cp = await openFixture('counter');
    expect(await readString(cp, 23547, 0x564b976f82a0n, 16)).toBe('CRYO-MARKER-1234');
    expect(await readString(cp, 23547, 0x564b6679e080n, 19)).toBe('CRYO-DATA-GLOBAL-42');
    const counter = await cp.readMemory(23547, 0x564b6679e0b0n, 8);
    expect(new DataView(counter.bytes.buffer).getBigUint64(0, true)).toBe(6n);
    const anon = 0x7ff25542d000;
    for (const i of [0, 1, 252, 253, 254, 255]) {
      expect(await readString(cp, 23547, anon + i * 4096, 14)).toBe(`CRYO-PAGE-${String(i).padStart(4, '0')}`);
    }
    // one read across the 253/5 pagemap split
    const across = await cp.readMemory(23547, anon + 252 * 4096, 2 * 4096);
    expect(dec.decode(across.bytes.subarray(0, 14))).toBe('CRYO-PAGE-0252');
    expect(dec.decode(across.bytes.subarray(4096, 4096 + 14))).toBe('CRYO-PAGE-0253');
    // the same bytes as the pages file at the README offsets
    const pages = readFileSync(join(FIXTURES, 'counter', 'pages-1.img'));
    expect(dec.decode(pages.subarray(12960, 12960 + 16))).toBe('CRYO-MARKER-1234');
    expect(dec.decode(pages.subarray(1069056, 1069056 + 14))).toBe('CRYO-PAGE-0255');
    await cp.dir.close();
  });

  it('counter: unmapped and file-backed unchanged pages are reported as not stored', async () => {
    const cp = await openFixture('counter');
    const r = await cp.readMemory(23547, 0x1000n, 10);
    expect(r.bytes).toEqual(new Uint8Array(10));
    expect(r.notStored).toEqual([{ start: 0x1000n, end: 0x2000n }]);
    const vsyscall = await cp.readMemory(23547, 0xffffffffff600000n, 16);
    expect(vsyscall.notStored).toEqual([{ start: 0xffffffffff600000n, end: 0xffffffffff601000n }]);
    // text page of the binary (file-backed, not dumped): 0x564b6679a000 is r-- file private, not in pagemap
    const text = await cp.readMemory(23547, 0x564b6679a000n, 4096);
    expect(text.notStored).toEqual([{ start: 0x564b6679a000n, end: 0x564b6679b000n }]);
    await cp.dir.close();
  });

  it('tree: shared memory through memfd → pagemap-shmem-49, per-task copy-on-write heaps', async () => {
    const cp = await openFixture('tree');
    const shm = 0x7f33073a9000;
    for (const pid of [23579, 23582, 23583]) {
      expect(await readString(cp, pid, shm, 15)).toBe('CRYO-SHMEM-TREE');
      expect(await readString(cp, pid, shm + 4096, 21)).toBe('CRYO-CHILD-1-WAS-HERE');
      expect(await readString(cp, pid, shm + 8192, 21)).toBe('CRYO-CHILD-2-WAS-HERE');
    }
    expect(await readString(cp, 23579, 0x559c0eb582a0n, 16)).toBe('CRYO-TREE-PARENT');
    expect(await readString(cp, 23582, 0x559c0eb582a0n, 17)).toBe('CRYO-TREE-CHILD-1');
    expect(await readString(cp, 23583, 0x559c0eb582a0n, 17)).toBe('CRYO-TREE-CHILD-2');
    // the rest of the 64 KiB shared region was never touched
    const rest = await cp.readMemory(23579, shm + 3 * 4096, 4096);
    expect(rest.notStored).toEqual([{ start: BigInt(shm + 3 * 4096), end: BigInt(shm + 4 * 4096) }]);
    await cp.dir.close();
  });

  it('threads: per-thread arenas and TLS values', async () => {
    const cp = await openFixture('threads');
    expect(await readString(cp, 23615, 0x7fd7c4000b70n, 13)).toBe('CRYO-THREAD-0');
    expect(await readString(cp, 23615, 0x7fd7c8000b70n, 13)).toBe('CRYO-THREAD-1');
    expect(await readString(cp, 23615, 0x7fd7bc000b70n, 13)).toBe('CRYO-THREAD-2');
    for (const [addr, v] of [[0x7fd7cd88b6b8n, 1000n], [0x7fd7cd08a6b8n, 1001n], [0x7fd7cc8896b8n, 1002n]] as const) {
      const r = await cp.readMemory(23615, addr, 8);
      expect(new DataView(r.bytes.buffer).getBigInt64(0, true)).toBe(v);
    }
    await cp.dir.close();
  });
});

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, cpSync, writeFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll } from 'vitest';
import { openCriuArchive, MemoryDirectory, type CriuDirectory } from '../src/criu/source.js';
import { CriuFormatError, CriuSourceError } from '../src/criu/errors.js';

/** Everything observable through a checkpoint: decoded images (crit form), explorer text, some memory. */
async function snapshot(dir: CriuDirectory): Promise<unknown> {
  const cp = await CriuCheckpoint.open(dir);
  const images: Record<string, unknown> = {};
  for (const img of await cp.decodeAll()) images[img.file.replace(/^.*[/:]/, '')] = toCritJson(img);
  const explorers: Record<string, string> = {};
  for (const [k, f] of Object.entries(EXPLORERS)) explorers[k] = await f(cp);
  const mem = await cp.readMemory(cp.pids[0]!, 0x7ff25542d000n, 258 * 4096);
  return {
    files: (await dir.list()).filter((n) => !n.startsWith('crit-') && n !== 'meta'), images, explorers,
    mem: createHash('sha256').update(mem.bytes).digest('hex'), notStored: mem.notStored,
  };
}

describe('container checkpoint archives', () => {
  let work: string;
  const archives: Record<string, string> = {};
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'criu-archive-'));
    // the Podman / CRI-O layout: checkpoint/ plus metadata files
    const root = join(work, 'ctr');
    mkdirSync(root);
    const cpDir = join(root, 'checkpoint');
    mkdirSync(cpDir);
    for (const f of readdirSync(join(FIXTURES, 'counter'))) {
      if (f.startsWith('crit-') || f === 'meta') continue;
      cpSync(join(FIXTURES, 'counter', f), join(cpDir, f));
    }
    writeFileSync(join(root, 'config.dump'), '{"id":"abc","name":"counter"}');
    writeFileSync(join(root, 'spec.dump'), '{}');
    mkdirSync(join(root, 'rootfs-diff'));
    writeFileSync(join(root, 'rootfs-diff', 'big.bin'), new Uint8Array(3 << 20));
    execFileSync('tar', ['-cf', join(work, 'c.tar'), '-C', root, '.']);
    execFileSync('tar', ['-czf', join(work, 'c.tar.gz'), '-C', root, '.']);
    execFileSync('tar', ['--zstd', '-cf', join(work, 'c.tar.zst'), '-C', root, 'checkpoint', 'config.dump', 'spec.dump', 'rootfs-diff']);
    // a pax archive with long names, and a tar of a bare image directory
    execFileSync('tar', ['--format=pax', '-cf', join(work, 'pax.tar'), '-C', root, 'checkpoint']);
    archives['tar'] = join(work, 'c.tar');
    archives['tar.gz'] = join(work, 'c.tar.gz');
    archives['tar.zst'] = join(work, 'c.tar.zst');
    archives['pax'] = join(work, 'pax.tar');
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('tar, tar.gz and tar.zst open the same as the directory', async () => {
    const dirSource = await openCriuPath(join(FIXTURES, 'counter'));
    const expected = await snapshot(dirSource);
    for (const kind of ['tar', 'tar.gz', 'tar.zst', 'pax']) {
      const src = await openCriuPath(archives[kind]!);
      expect(src.label).toContain(':checkpoint');
      expect(await snapshot(src), kind).toEqual(expected);
      if (kind !== 'pax') expect(dec.decode((await src.readAux!('config.dump'))!)).toContain('"counter"');
      await src.close();
    }
    await dirSource.close();
  });

  it('a compressed archive whose pages exceed the memory budget is read by re-decompressing', async () => {
    const dirSource = await openCriuPath(join(FIXTURES, 'counter'));
    const expected = await snapshot(dirSource);
    for (const kind of ['tar.gz', 'tar.zst']) {
      const src = await openCriuPath(archives[kind]!, { pagesMemoryBudget: 0 });
      expect(await snapshot(src), kind).toEqual(expected);
      await src.close();
    }
  });

  it('environment-neutral: an archive given as bytes (no node: modules needed for tar/gzip)', async () => {
    const bytes = new Uint8Array(readFileSync(archives['tar.gz']!));
    const src = await openCriuArchive(bytes, { label: 'c.tar.gz' });
    const cp = await CriuCheckpoint.open(src);
    expect(cp.pids).toEqual([23547]);
    await expect(openCriuArchive(new Uint8Array(readFileSync(archives['tar.zst']!)), { label: 'c.tar.zst' }))
      .rejects.toThrow(/zstd-compressed archive, and no zstd decompressor/);
  });

  it('a directory holding checkpoint/ (unpacked container checkpoint) opens its images', async () => {
    const src = await openCriuPath(join(work, 'ctr'));
    expect(src.label).toMatch(/ctr\/checkpoint$/);
    expect(dec.decode((await src.readAux!('config.dump'))!)).toContain('"counter"');
    await src.close();
  });

  it('truncated and corrupted archives name the archive and the offset', async () => {
    const gz = readFileSync(archives['tar.gz']!);
    const cut = join(work, 'cut.tar.gz');
    writeFileSync(cut, gz.subarray(0, gz.length >> 1));
    await expect(openCriuPath(cut)).rejects.toThrow(/cut\.tar\.gz: offset \d+: /);
    const tar = readFileSync(archives['tar']!);
    const cutTar = join(work, 'cut.tar');
    writeFileSync(cutTar, tar.subarray(0, 5000));
    await expect(openCriuPath(cutTar)).rejects.toThrow(/cut\.tar: offset \d+: (truncated tar archive|tar member .* runs past the end)/);
    const bad = Buffer.from(tar);
    bad[600] ^= 0xff; // inside the first member's data? no: first header is at 0, data from 512
    bad[1024 + 10] ^= 0x55; // corrupt a later header's name -> checksum mismatch somewhere
    const badTar = join(work, 'bad.tar');
    writeFileSync(badTar, bad);
    const err = await openCriuPath(badTar).then(() => null, (e: unknown) => e);
    if (err) expect(String(err)).toMatch(/bad\.tar: offset \d+: tar header checksum mismatch|no CRIU image directory/);
  });
});

import { encodeImage } from '../src/criu/encode.js';

describe('round trip: decode then encode gives the same bytes (every field was decoded)', () => {
  for (const name of NAMES) {
    const dir = join(FIXTURES, name);
    for (const file of imageFiles(dir)) {
      it(`${name}/${file}`, () => {
        const bytes = new Uint8Array(readFileSync(join(dir, file)));
        const image = decodeImage(bytes, file);
        expect(Buffer.compare(Buffer.from(encodeImage(image.magic, image.entries)), Buffer.from(bytes))).toBe(0);
      });
    }
  }
});
