// cryo-helper restore on real programs: each is dumped with `cryo-helper dump --pid P --kill` (--tree
// for the tree) and restored with `cryo-helper restore -i F` run as a child of the test. The helper is a
// child subreaper and waits for the restored root, so every restored process is reaped through it; each
// test kills what it restored and waits for the helper to exit, so nothing is left behind.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decode } from '@msgpack/msgpack';
import { connect } from 'node:net';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCryoImage, writeImageFile } from '../src/node.js';
import { SectionType } from '../src/core/format.js';
import { helperPath, programsDir, startProgram, stopChild, tempDir, type RunningProgram } from './helpers/programs.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function dump(pid: number, image: string, opts: { tree?: boolean; kill?: boolean } = {}) {
  const args = ['dump', '--pid', String(pid), '-o', image];
  if (opts.tree) args.push('--tree');
  if (opts.kill !== false) args.push('--kill');
  const r = spawnSync(helperPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dump of ${pid} failed (${r.status}): ${r.stderr}`);
}

interface Restored {
  child: ChildProcess;
  closed: () => boolean;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `cryo-helper restore` as a child of the test; `input` streams the image on its stdin. */
function restore(image: string, extra: string[] = [], input?: Buffer): Restored {
  const args = input ? ['restore', '-i', '-', ...extra] : ['restore', '-i', image, ...extra];
  const child = spawn(helperPath, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let err = '';
  let closed = false;
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.once('close', () => (closed = true));
  child.stdout!.resume();
  if (input) {
    child.stdin!.on('error', () => {});
    child.stdin!.end(input);
  }
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal })); // after stderr is read
    child.once('error', (e) => {
      err += String(e);
      resolve({ code: -1, signal: null });
    });
  });
  return { child, closed: () => closed, stderr: () => err, exit };
}

/** Waits for fn while the helper runs; if the helper exits first, fails with its message. */
async function until<T>(r: Restored, what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  return waitFor(what, () => {
    const v = fn();
    if (v) return v;
    if (r.closed()) // exited, and its stderr is read to the end
      throw new Error(`the restore exited (${r.child.exitCode ?? r.child.signalCode}) before ${what}: ${r.stderr()}`);
    return undefined;
  }, timeoutMs);
}

/** Runs a restore that is expected to fail; returns its exit code and message. */
async function restoreFails(image: string, input?: Buffer) {
  const r = restore(image, [], input);
  const { code } = await r.exit;
  return { code, stderr: r.stderr() };
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

function comm(pid: number): string {
  return readText(`/proc/${pid}/comm`).trim();
}

function pidsNamed(name: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => comm(pid) === name);
}

/** The restored process runs on its own: its name is back and the helper no longer traces it. */
function restored(pid: number, name: string): boolean {
  return alive(pid) && comm(pid) === name && /TracerPid:\s+0\n/.test(readText(`/proc/${pid}/status`));
}

function parent(pid: number): number {
  const stat = readText(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Kills restored processes (by their original PIDs) and waits for the helper to reap them and exit. */
async function finish(r: Restored, pids: number[]) {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 10_000);
  const result = await r.exit;
  clearTimeout(timer);
  return result;
}

/** The PROCESS maps of an image, by PID (a section walk of FORMAT.md §3, enough for a test). */
function processes(path: string): Record<number, Record<string, any>> {
  const b = readFileSync(path);
  const out: Record<number, Record<string, any>> = {};
  for (let off = 16; off + 48 <= b.length - 32; ) {
    const type = b.readUInt16LE(off + 4);
    const len = Number(b.readBigUInt64LE(off + 24));
    if (type === 2) out[b.readUInt32LE(off + 8)] = decode(b.subarray(off + 48, off + 48 + len)) as Record<string, any>;
    if (type === 127) break;
    off += 48 + len;
  }
  return out;
}

const hex = (v: unknown) => JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x));

/** VMAs with adjacent twins merged: the kernel merges two fresh neighbouring anonymous mappings with the
 * same flags, where the original could have kept them apart (different anon_vma after a fork), so VMA
 * boundaries inside such a run are not part of what a restore can repeat. */
function merged(vmas: any[]): any[] {
  const out: any[] = [];
  for (const v of vmas) {
    const prev = out[out.length - 1];
    const same = prev && prev.end === v.start && prev.prot === v.prot && prev.shared === v.shared && prev.kind === v.kind &&
      prev.name === v.name && prev.vmFlags.join() === v.vmFlags.join() &&
      (prev.kind !== 'file' || prev.offset + (prev.end - prev.start) === v.offset);
    if (same) out[out.length - 1] = { ...prev, end: v.end };
    else out.push({ ...v });
  }
  return out;
}

/** What a dump of the restored copy must repeat: everything but identities of new kernel objects
 * (pipe and socket inodes, mount ids, times), the root's parent, the stdio the restorer handed over,
 * and vector registers a thread used since. One entry per top-level key, for readable failures. */
function comparable(p: Record<string, any>, isRoot: boolean): Record<string, string> {
  const fds = p.fds.map((f: any) => ({
    ...f,
    inode: 0,
    mntId: 0,
    mtime: 0,
    dev: 0,
    path: String(f.path).replace(/^(pipe|socket):\[\d+\]$/, '$1'),
    pipe: f.pipe && { ...f.pipe, inode: 0 },
    socket: f.socket && { ...f.socket, inode: 0 },
  }));
  const threads = p.threads.map((t: any) => ({ ...t, xstate: undefined, state: undefined }));
  const all = { ...p, ppid: isRoot ? 0 : p.ppid, fds, threads, state: undefined, vmas: merged(p.vmas) };
  return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, hex(v)]));
}

function expectSameImage(image: string, again: string, rootPid: number) {
  const before = processes(image);
  const after = processes(again);
  expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
  for (const key of Object.keys(before)) {
    const [a, b] = [before[Number(key)], after[Number(key)]];
    expect(merged(b.vmas).map((v: any) => `${v.start}-${v.end} ${v.name}`)).toEqual(merged(a.vmas).map((v: any) => `${v.start}-${v.end} ${v.name}`));
    const [x, y] = [comparable(a, Number(key) === rootPid), comparable(b, Number(key) === rootPid)];
    for (const k of Object.keys(x)) {
      if (y[k] !== x[k] && process.env.CRYO_DIFF) writeFileSync(`${process.env.CRYO_DIFF}-${k}`, `${x[k]}\n${y[k]}\n`);
      expect(y[k], `process ${key}: ${k}`).toBe(x[k]);
    }
  }
}

/** Pending and blocked signals of a process and of each of its threads, from /proc. */
function signalState(pid: number): string[] {
  const pick = (text: string) => text.split('\n').filter((l) => /^(SigPnd|ShdPnd|SigBlk|SigIgn|SigCgt):/.test(l)).join(' ');
  return readdirSync(`/proc/${pid}/task`)
    .sort()
    .map((tid) => `${tid}: ${pick(readText(`/proc/${pid}/task/${tid}/status`))}`);
}

const crcTable = Array.from({ length: 256 }, (_, i) => {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c >>> 0;
});

function crc32c(b: Buffer): number {
  let c = 0xffffffff;
  for (const byte of b) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Changes one byte of a PAGEDATA payload and re-signs everything that covers it (payload CRC,
 * header CRC, its INDEX entry, the INDEX CRCs), so that only a semantic check can notice. */
function patchPage(image: Buffer, owner: number, storeIndex: number, offsetInPage: number): Buffer {
  const b = Buffer.from(image);
  let index = -1;
  let target = -1;
  for (let off = 16; off + 48 <= b.length - 32; ) {
    const type = b.readUInt16LE(off + 4);
    const len = Number(b.readBigUInt64LE(off + 24));
    const key = Number(b.readBigUInt64LE(off + 16));
    if (type === 4 && b.readUInt32LE(off + 8) === owner && key <= storeIndex && storeIndex < key + len / 4096) target = off;
    if (type === 127) {
      index = off;
      break;
    }
    off += 48 + len;
  }
  const key = Number(b.readBigUInt64LE(target + 16));
  const len = Number(b.readBigUInt64LE(target + 24));
  b[target + 48 + (storeIndex - key) * 4096 + offsetInPage] ^= 0xff;
  b.writeUInt32LE(crc32c(b.subarray(target + 48, target + 48 + len)), target + 40);
  b.writeUInt32LE(crc32c(b.subarray(target, target + 44)), target + 44);
  const indexLen = Number(b.readBigUInt64LE(index + 24));
  for (let e = index + 48; e < index + 48 + indexLen; e += 56)
    if (Number(b.readBigUInt64LE(e)) === target) b.set(b.subarray(target, target + 48), e + 8);
  b.writeUInt32LE(crc32c(b.subarray(index + 48, index + 48 + indexLen)), index + 40);
  b.writeUInt32LE(crc32c(b.subarray(index, index + 44)), index + 44);
  return b;
}

/** The store index of the page at addr (the PAGEMAP section of owner, FORMAT.md §5.1). */
function storeIndexOf(image: Buffer, owner: number, addr: number): number {
  for (let off = 16; off + 48 <= image.length - 32; ) {
    const type = image.readUInt16LE(off + 4);
    const len = Number(image.readBigUInt64LE(off + 24));
    if (type === 3 && image.readUInt32LE(off + 8) === owner)
      for (let e = off + 48; e < off + 48 + len; e += 24) {
        const vaddr = Number(image.readBigUInt64LE(e));
        const count = image.readUInt32LE(e + 8);
        if (image.readUInt16LE(e + 12) === 0 && vaddr <= addr && addr < vaddr + count * 4096)
          return Number(image.readBigUInt64LE(e + 16)) + (addr - vaddr) / 4096;
      }
    off += 48 + len;
  }
  throw new Error(`no stored page at ${addr.toString(16)}`);
}

/** Connects to 127.0.0.1:port and returns what the server says before it closes. */
function ask(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect(port, '127.0.0.1');
    socket.on('data', (d) => {
      text += d.toString();
      if (text.endsWith('\n')) socket.end(); // the client closes first: TIME_WAIT stays here
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

function consecutive(text: string): number {
  const lines = text.trim().split('\n');
  lines.forEach((line, i) => expect(line).toBe(`count ${i + 1}`));
  return lines.length;
}

describe('cryo-helper restore', () => {
  let dir: ReturnType<typeof tempDir>;
  const running: RunningProgram[] = [];
  const restores: Array<{ r: Restored; pids: number[] }> = [];

  beforeAll(() => {
    dir = tempDir('cryo-restore-');
  });

  afterEach(async () => {
    for (const { r, pids } of restores.splice(0)) await finish(r, pids);
    for (const p of running.splice(0)) await p.stop();
  });

  afterAll(() => dir?.remove());

  /** Starts a test program under the subreaper wrapper (it reaps what a dump kills, and gives the
   * program only fds 0-2, so nothing leaked into the test runner ends up in the image). */
  async function start(name: string, args: string[], keepFd?: number) {
    const wrapper = keepFd === undefined ? [] : ['--keep-fd', String(keepFd)];
    const p = await startProgram('subreaper', [...wrapper, join(programsDir, name), ...args]);
    const pid = Number(p.ready.pid);
    const stop = p.stop;
    p.stop = async () => {
      try {
        if (parent(pid) === p.pid) process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await stop();
    };
    running.push(p);
    return p;
  }

  /** Starts the tree program, dumps the whole tree with --kill (the default) and waits until it is gone. */
  async function dumpedTree(out: string, image: string) {
    const p = await start('tree', [out]);
    const pid = Number(p.ready.pid);
    const kids = [Number(p.ready.child1), Number(p.ready.child2)];
    dump(pid, image, { tree: true });
    await waitFor('the original tree to die', () => ![pid, ...kids].some(alive));
    return { p, pid, kids };
  }

  function track(r: Restored, pids: number[]) {
    restores.push({ r, pids });
    return r;
  }

  it('the counter continues from where it was, at the right file offset, twice from one image', async () => {
    const out = join(dir.path, 'counter.out');
    const image = join(dir.path, 'counter.cryo');
    const p = await start('counter', [out, '20']);
    const pid = Number(p.ready.pid);
    await waitFor('a few counts', () => readText(out).split('\n').length > 5);
    dump(pid, image);
    await waitFor('the original to die', () => !alive(pid));
    const atDump = consecutive(readText(out));

    for (const viaPipe of [false, true]) {
      const r = track(restore(image, [], viaPipe ? readFileSync(image) : undefined), [pid]);
      await until(r, 'the restored counter to write', () => consecutive(readText(out)) >= atDump + 10 && true);
      expect(alive(pid)).toBe(true);
      expect(comm(pid)).toBe('counter');
      expect(parent(pid)).toBe(r.child.pid);
      expect(readlinkSafe(`/proc/${pid}/exe`)).toBe(join(programsDir, 'counter'));
      const { signal, code } = await finish(r, [pid]);
      expect(signal ?? code).toBe(137); // the helper exits with 128+SIGKILL of its root
      restores.pop();
      // the next restore starts again from the image: the file is rewound to the dump point
      const text = readText(out).trim().split('\n').slice(0, atDump).join('\n') + '\n';
      writeFileSync(out, text);
    }
  });

  it('bigheap: the whole heap comes back (checksum ok after SIGUSR1)', async () => {
    const out = join(dir.path, 'bigheap.out');
    const image = join(dir.path, 'bigheap.cryo');
    const p = await start('bigheap', ['64', out]);
    const pid = Number(p.ready.pid);
    dump(pid, image);
    await waitFor('the original to die', () => !alive(pid));
    const r = track(restore(image), [pid]);
    await until(r, 'the restored bigheap', () => restored(pid, 'bigheap'));
    expect(parent(pid)).toBe(r.child.pid);
    await sleep(200);
    process.kill(pid, 'SIGUSR1');
    const text = await until(r, 'the checksum', () => readText(out).includes('checksum') && readText(out));
    expect(text).toBe(`checksum ${p.ready.checksum} ok\n`);
  });

  it('threads: every thread keeps its TID and name, works on, and the main thread joins them', async () => {
    const out = join(dir.path, 'threads.out');
    const image = join(dir.path, 'threads.cryo');
    const p = await start('threads', [out, '3', '300']);
    const pid = Number(p.ready.pid);
    await sleep(300);
    dump(pid, image);
    await waitFor('the original to die', () => !alive(pid));
    const r = track(restore(image), [pid]);
    await until(r, 'the restored threads', () => restored(pid, 'threads') && readdirSync(`/proc/${pid}/task`).length === 4);
    for (let i = 0; i < 3; i++) {
      const tid = Number(p.ready[`tid${i}`]);
      expect(readText(`/proc/${pid}/task/${tid}/comm`).trim()).toBe(`cryo-worker-${i}`);
    }
    const { code } = await r.exit;
    expect(r.stderr()).not.toMatch(/error|BAD/i);
    expect(code).toBe(0);
    expect(readText(out)).toBe('joined 3 total 900\n');
  });

  it('tree (--tree): PIDs, parents and the pipe with waiting bytes come back', async () => {
    const out = join(dir.path, 'tree.out');
    const image = join(dir.path, 'tree.cryo');
    // under a subreaper: the dump kills the whole tree, and orphans must not go to PID 1
    const { p, pid, kids } = await dumpedTree(out, image);
    const r = track(restore(image), [...kids, pid]);
    await until(r, 'the restored tree', () => restored(pid, 'cryo-tree-par') && restored(kids[0], 'cryo-child-1') && restored(kids[1], 'cryo-child-2'));
    expect(parent(pid)).toBe(r.child.pid);
    expect(kids.map(parent)).toEqual([pid, pid]);
    expect(kids.map(comm)).toEqual(['cryo-child-1', 'cryo-child-2']);
    process.kill(kids[0], 'SIGUSR1');
    await until(r, 'child1 to report', () => readText(out).includes('child1'));
    expect(r.stderr().split('\n')).toEqual(['']); // no warning
    process.kill(kids[1], 'SIGUSR1');
    await until(r, 'child2 to report', () => readText(out).includes('child2'));
    expect(readText(out)).toBe('child1 got CRYO-PIPE-PENDING\nchild2 got CRYO-PIPE-SECOND\n');
  });

  it('shm (--tree): shared anonymous memory and a memfd stay shared between parent and child', async () => {
    const out = join(dir.path, 'shm.out');
    const image = join(dir.path, 'shm.cryo');
    const p = await start('shm', [out]);
    const pid = Number(p.ready.pid);
    const kid = Number(p.ready.child);
    process.kill(kid, 'SIGUSR1'); // one increment before the dump
    await sleep(100);
    dump(pid, image, { tree: true });
    await waitFor('the original tree to die', () => ![pid, kid].some(alive));
    const r = track(restore(image), [kid, pid]);
    await until(r, 'the restored tree', () => restored(pid, 'shm') && restored(kid, 'cryo-shm-child'));
    // one increment at a time (two signals sent at once could merge into one): the child writes,
    // the parent reads the counters through its own mappings and reports
    for (const n of [2, 3]) {
      process.kill(kid, 'SIGUSR1');
      await until(r, `the parent to see count ${n}`, () => {
        process.kill(pid, 'SIGUSR2');
        return readText(out) === `shm ${n} memfd ${n}\n`;
      });
    }
    expect(readlinkSafe(`/proc/${kid}/fd/${p.ready.memfd}`)).toBe('/memfd:cryo-memfd (deleted)');
    const maps = (q: number) => readText(`/proc/${q}/maps`).split('\n').filter((l) => / rw-s /.test(l)).map((l) => l.replace(/^(\S+).* (\/.*)$/, '$1 $2'));
    expect(maps(kid)).toEqual(maps(pid));
    expect(maps(pid).join('\n')).toMatch(/\/dev\/zero \(deleted\)/);
  });

  it('events: epoll, eventfd (count), signalfd (mask) and a periodic timerfd are rebuilt', async () => {
    const out = join(dir.path, 'events.out');
    const image = join(dir.path, 'events.cryo');
    const p = await start('events', [out]);
    const pid = Number(p.ready.pid);
    await sleep(120); // a few timer ticks first
    process.kill(pid, 'SIGUSR1');
    await waitFor('the first signal', () => readText(out).includes('signal 1'));
    const fdinfo = (q: number) =>
      ['eventfd', 'signalfd', 'timerfd'].map((k) =>
        readText(`/proc/${q}/fdinfo/${p.ready[k]}`)
          .split('\n')
          .filter((l) => /^(flags|eventfd-count|eventfd-semaphore|sigmask|clockid|it_interval):/.test(l))
          .join(' '),
      );
    const before = fdinfo(pid);
    dump(pid, image);
    await waitFor('the original to die', () => !alive(pid));
    const r = track(restore(image), [pid]);
    await until(r, 'the restored process', () => restored(pid, 'events'));
    expect(fdinfo(pid)).toEqual(before);
    expect(readText(`/proc/${pid}/fdinfo/${p.ready.epoll}`)).toMatch(new RegExp(`tfd:\\s+${p.ready.signalfd} events:\\s+19 data:\\s+1 `));
    await sleep(120); // the timer fires on
    process.kill(pid, 'SIGUSR1');
    await until(r, 'the second signal', () => readText(out).includes('signal 2'));
    await sleep(120);
    process.kill(pid, 'SIGUSR1');
    const { code } = await r.exit;
    expect(code).toBe(0);
    expect(readText(out)).toBe('signal 1 eventfd 5 ticks yes\nsignal 2 eventfd 1 ticks yes\nsignal 3 eventfd 1 ticks yes\n');
  });

  it('tree: page data of the last child damaged, every process created is killed and reaped', async () => {
    const out = join(dir.path, 'tree-bad.out');
    const image = join(dir.path, 'tree-bad.cryo');
    const { p, pid, kids } = await dumpedTree(out, image);
    const bytes = readFileSync(image);
    let last = -1;
    for (let off = 16; off + 48 <= bytes.length - 32; ) {
      const type = bytes.readUInt16LE(off + 4);
      if (type === 4) last = off;
      if (type === 127) break;
      off += 48 + Number(bytes.readBigUInt64LE(off + 24));
    }
    expect(bytes.readUInt32LE(last + 8)).toBe(kids[1]);
    bytes[last + 48 + 10] ^= 1;
    const { code, stderr } = await restoreFails(image, bytes);
    expect(code).toBe(1);
    expect(stderr).toMatch(/PAGEDATA section .*payload CRC mismatch .*every process created was killed and reaped/);
    expect([pid, ...kids].filter((q) => existsSync(`/proc/${q}`))).toEqual([]);
  });

  it('server: a listening TCP socket comes back on its port, blocked in accept', async () => {
    const image = join(dir.path, 'server.cryo');
    const p = await start('server', []);
    const pid = Number(p.ready.pid);
    const port = Number(p.ready.port);
    expect(await ask(port)).toBe('hello 1\n');
    dump(pid, image);
    await waitFor('the original to die', () => !alive(pid));
    const r = track(restore(image), [pid]);
    await until(r, 'the restored server', () => restored(pid, 'server'));
    expect(readlinkSafe(`/proc/${pid}/fd/${p.ready.fd}`)).toMatch(/^socket:/);
    expect(await ask(port)).toBe('hello 2\n');
    expect(await ask(port)).toBe('hello 3\n');
  });

  it('deleted: the unlinked open file comes back with its content and offset', async () => {
    const out = join(dir.path, 'deleted.out');
    const image = join(dir.path, 'deleted.cryo');
    const p = await start('deleted', [out]);
    const pid = Number(p.ready.pid);
    dump(pid, image);
    await waitFor('the original to die', () => !alive(pid));
    const r = track(restore(image), [pid]);
    await until(r, 'the restored process', () => restored(pid, 'deleted'));
    expect(readlinkSafe(`/proc/${pid}/fd/${p.ready.fd}`)).toMatch(/\.hidden.* \(deleted\)$/);
    expect(existsSync(p.ready.path)).toBe(false);
    process.kill(pid, 'SIGUSR1');
    const { code } = await r.exit;
    expect(code).toBe(0);
    expect(readText(out)).toBe('CRYO-DELETED-CONTENT the file is gone but still open\n');
  });

  it('fpu: vector registers and MXCSR caught live in the registers come back exactly', async () => {
    const out = join(dir.path, 'fpu.out');
    const image = join(dir.path, 'fpu.cryo');
    const p = await start('fpu', [out]);
    const pid = Number(p.ready.pid);
    await sleep(300);
    dump(pid, image);
    await waitFor('the original to die', () => !alive(pid));
    const r = track(restore(image), [pid]);
    await until(r, 'the restored process', () => restored(pid, 'fpu'));
    await sleep(700); // several blocks, each checked exactly
    process.kill(pid, 'SIGUSR1');
    const text = await until(r, 'its report', () => readText(out));
    expect(text).toMatch(/^fpu ok blocks=\d+\n$/);
  });

  it('sleeper: a nanosleep ends on time, a blocked read returns when data arrives, signals stay pending', async () => {
    const out = join(dir.path, 'sleeper.out');
    const image = join(dir.path, 'sleeper.cryo');
    const again = join(dir.path, 'sleeper-again.cryo');
    const p = await start('sleeper', [out, '3']);
    const pid = Number(p.ready.pid);
    const started = Date.now();
    await sleep(500);
    const signals = signalState(pid);
    expect(signals.join('\n')).toMatch(/ShdPnd:\s+0*800 /); // SIGUSR2, blocked, pending for the process
    dump(pid, image);
    const remaining = 3000 - (Date.now() - started);
    await waitFor('the original to die', () => !alive(pid));
    const restoredAt = Date.now();
    const r = track(restore(image), [pid]);
    await until(r, 'the restored sleeper', () => restored(pid, 'sleeper'));
    expect(signalState(pid)).toEqual(signals);
    dump(pid, again, { kill: false }); // sigaltstack, rseq, robust list, TID address, mm, fds
    expectSameImage(image, again, pid);
    await until(r, 'the slept line', () => readText(out).includes('slept'), 8000);
    const took = Date.now() - restoredAt;
    expect(took).toBeGreaterThan(remaining - 700);
    expect(took).toBeLessThan(remaining + 3000); // generous: a loaded machine
    expect(readText(out)).toBe('slept\n'); // the reader still waits
    process.kill(pid, 'SIGUSR1');
    const { code } = await r.exit;
    expect(code).toBe(0);
    expect(readText(out)).toBe('slept\nread CRYO-WAKE\ndone\n');
  });

  it('refuses while an original PID is taken, naming the holder, and leaves nothing behind', async () => {
    const out = join(dir.path, 'taken.out');
    const image = join(dir.path, 'taken.cryo');
    const p = await start('counter', [out, '20']);
    const pid = Number(p.ready.pid);
    dump(pid, image, { kill: false });
    const before = pidsNamed('counter').sort();
    const { code, stderr } = await restoreFails(image);
    expect(code).toBe(1);
    expect(stderr).toContain(`PID ${pid}`);
    expect(stderr).toContain(`taken by process ${pid} (counter)`);
    expect(stderr).toContain('nothing was restored');
    expect(pidsNamed('counter').sort()).toEqual(before);
    expect(alive(pid)).toBe(true);
  });

  it('a socket to a process outside the image is refused by name; --skip-fd replaces it with /dev/null', async () => {
    const out = join(dir.path, 'skip.out');
    const image = join(dir.path, 'skip.cryo');
    // fd 3 of the program: a socket of the test runner's (Node gives extra stdio as a socketpair)
    const child = spawn(join(programsDir, 'subreaper'), ['--keep-fd', '3', join(programsDir, 'sleeper'), out, '30'], {
      stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
    });
    const ready = await readyLine(child);
    running.push({ child, pid: child.pid!, ready, stop: () => stopChild(child) });
    const pid = Number(ready.pid);
    expect(readlinkSafe(`/proc/${pid}/fd/3`)).toMatch(/^socket:/);
    dump(pid, image);
    await waitFor('the original to die', () => !alive(pid));
    const refusedRun = await restoreFails(image);
    expect(refusedRun.code).toBe(1);
    expect(refusedRun.stderr).toMatch(new RegExp(`process ${pid} \\(sleeper\\) fd 3: socket .*cannot be restored.*--skip-fd ${pid}:3`));
    expect(alive(pid)).toBe(false);
    const r = track(restore(image, ['--skip-fd', `${pid}:3`]), [pid]);
    await until(r, 'the restored sleeper', () => restored(pid, 'sleeper'));
    expect(readlinkSafe(`/proc/${pid}/fd/3`)).toBe('/dev/null');
    expect(r.stderr()).toContain(`process ${pid} fd 3 (socket`);
    expect(r.stderr()).toContain('replaced with /dev/null');
    process.kill(pid, 'SIGUSR1');
    await until(r, 'the wake-up', () => readText(out).includes('read CRYO-WAKE'));
  });

  it('capabilities come back as they were (bounding, inheritable, ambient), not as the restorer\'s', async () => {
    const out = join(dir.path, 'caps.out');
    const image = join(dir.path, 'caps.cryo');
    const setpriv = ['/usr/bin/setpriv', '--bounding-set=-net_raw,-sys_ptrace', '--inh-caps=+net_admin', '--ambient-caps=+net_admin'];
    const p = await startProgram('subreaper', [...setpriv, join(programsDir, 'sleeper'), out, '30']);
    running.push(p);
    const pid = Number(p.ready.pid);
    const caps = () => readText(`/proc/${pid}/status`).split('\n').filter((l) => l.startsWith('Cap'));
    const before = caps();
    expect(before.join(' ')).toMatch(/CapAmb:\s+0*1000/);
    dump(pid, image);
    await waitFor('the original to die', () => !alive(pid));
    const r = track(restore(image), [pid]);
    await until(r, 'the restored sleeper', () => restored(pid, 'sleeper'));
    expect(caps()).toEqual(before);
  });

  it('--detach returns at once; the restored process runs on under the next subreaper', async () => {
    const out = join(dir.path, 'detach.out');
    const image = join(dir.path, 'detach.cryo');
    const p = await start('counter', [out, '20']);
    const pid = Number(p.ready.pid);
    dump(pid, image);
    await waitFor('the original to die', () => !alive(pid));
    const lines = readText(out).trim().split('\n').length;
    // the wrapper stands in for a service manager: the restored process is reparented to it
    const wrapper = spawn(join(programsDir, 'subreaper'), [helperPath, 'restore', '--detach', '-i', image], { stdio: 'ignore' });
    const wrapperExit = new Promise((resolve) => wrapper.once('exit', resolve));
    try {
      await waitFor('the restored counter, reparented', () => restored(pid, 'counter') && parent(pid) === wrapper.pid);
      await waitFor('it to count on', () => consecutive(readText(out)) > lines + 5);
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      expect(await wrapperExit).toBe(0); // the helper's status, once the wrapper has reaped the counter too
    }
  });

  it('a dump of the restored tree repeats the original image (memory map, fds, threads, signals, mm, creds)', async () => {
    const out = join(dir.path, 'redump.out');
    const image = join(dir.path, 'redump.cryo');
    const again = join(dir.path, 'redump-again.cryo');
    const { p, pid, kids } = await dumpedTree(out, image);
    const r = track(restore(image), [...kids, pid]);
    await until(r, 'the restored tree', () => restored(pid, 'cryo-tree-par') && kids.every((k, i) => restored(k, `cryo-child-${i + 1}`)));
    dump(pid, again, { tree: true, kill: false });
    expectSameImage(image, again, pid);
  });

  it('an image claiming another user opens its files as that user: a root-only file is refused, nothing is created', async () => {
    const out = join(dir.path, 'creds.out');
    const image = join(dir.path, 'creds.cryo');
    const crafted = join(dir.path, 'creds-crafted.cryo');
    // a directory anyone may search, so only the file's own mode stands in the way
    const open = mkdtempSync(join(tmpdir(), 'cryo-secret-'));
    chmodSync(open, 0o755);
    const secret = join(open, 'secret');
    writeFileSync(secret, 'root only\n', { mode: 0o600 });
    chmodSync(secret, 0o600);
    try {
      const p = await start('counter', [out, '20']);
      const pid = Number(p.ready.pid);
      await waitFor('a few counts', () => readText(out).split('\n').length > 3);
      dump(pid, image);
      await waitFor('the original to die', () => !alive(pid));
      await rewriteProcesses(image, crafted, (raw) => {
        raw.creds.uid = [65534, 65534, 65534, 65534];
        raw.creds.gid = [65534, 65534, 65534, 65534];
        raw.creds.groups = [];
        const fd3 = raw.fds.find((f: any) => f.fd === 3);
        expect(fd3?.path).toBe(out);
        fd3.path = secret;
        fd3.flags = (fd3.flags & ~3) | 2; // O_RDWR
      });
      const before = pidsNamed('counter').sort();
      const { code, stderr } = await restoreFails(crafted);
      expect(code).toBe(1);
      expect(stderr).toContain(`opening ${secret} for fd 3`);
      expect(stderr).toMatch(/EACCES|Permission denied/);
      await waitFor('the refused process to be gone', () => !alive(pid));
      expect(pidsNamed('counter').sort()).toEqual(before);
      expect(readText(secret)).toBe('root only\n');
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });

  it('an image without creds.uid is refused before anything is created', async () => {
    const out = join(dir.path, 'nouid.out');
    const image = join(dir.path, 'nouid.cryo');
    const crafted = join(dir.path, 'nouid-crafted.cryo');
    const p = await start('counter', [out, '20']);
    const pid = Number(p.ready.pid);
    dump(pid, image);
    await waitFor('the original to die', () => !alive(pid));
    await rewriteProcesses(image, crafted, (raw) => {
      delete raw.creds.uid;
    });
    const { code, stderr } = await restoreFails(crafted);
    expect(code).toBe(1);
    expect(stderr).toContain(`process ${pid} has no creds.uid or creds.gid`);
    expect(stderr).toContain('nothing was restored');
    expect(alive(pid)).toBe(false);
  });

  describe('damaged images', () => {
    let image: Buffer;
    let pid: number;
    let offsets: { type: number; offset: number; length: number }[];

    beforeAll(async () => {
      const path = join(dir.path, 'damage.cryo');
      const p = await startProgram('subreaper', [join(programsDir, 'counter'), join(dir.path, 'damage.out'), '20']);
      pid = Number(p.ready.pid);
      dump(pid, path);
      await p.stop();
      image = readFileSync(path);
      offsets = [];
      for (let off = 16; off + 48 <= image.length - 32; ) {
        const type = image.readUInt16LE(off + 4);
        const length = Number(image.readBigUInt64LE(off + 24));
        offsets.push({ type, offset: off, length });
        off += 48 + length;
        if (type === 127) break;
      }
    });

    const section = (type: number) => offsets.find((s) => s.type === type)!;

    async function refused(bytes: Buffer, expected: RegExp, viaPipe = false) {
      const path = join(dir.path, 'bad.cryo');
      writeFileSync(path, bytes);
      const { code, stderr } = await restoreFails(path, viaPipe ? bytes : undefined);
      expect(code).toBe(1);
      expect(stderr).toMatch(expected);
      expect(alive(pid)).toBe(false);
      return stderr;
    }

    it('a corrupt PROCESS section is refused before any process is created', async () => {
      const bad = Buffer.from(image);
      const s = section(2);
      bad[s.offset + 48 + Math.floor(s.length / 2)] ^= 0x40;
      const stderr = await refused(bad, /PROCESS section .*payload CRC mismatch/);
      expect(stderr).not.toContain('killed and reaped');
    });

    it('a corrupt section header is refused before any process is created', async () => {
      const bad = Buffer.from(image);
      bad[section(3).offset + 20] ^= 1;
      const stderr = await refused(bad, /section header CRC mismatch/);
      expect(stderr).not.toContain('killed and reaped');
    });

    it('an image truncated inside its metadata is refused before any process is created (from a pipe)', async () => {
      const s = section(2);
      const stderr = await refused(image.subarray(0, s.offset + 100), /truncated image/, true);
      expect(stderr).not.toContain('killed and reaped');
    });

    it('corrupt or truncated page data: from a pipe, everything created is killed and reaped', async () => {
      const bad = Buffer.from(image);
      const s = section(4);
      bad[s.offset + 48 + 5000] ^= 0xff;
      let stderr = await refused(bad, /PAGEDATA section .*payload CRC mismatch.*killed and reaped/, true);
      expect(stderr).toContain('killed and reaped');
      stderr = await refused(image.subarray(0, s.offset + 48 + 4096), /truncated image.*killed and reaped/, true);
      expect(stderr).toContain('killed and reaped');
      // from a file, the section that holds the vDSO pages is read ahead through the INDEX: refused first
      stderr = await refused(bad, /PAGEDATA section .*payload CRC mismatch/);
      expect(stderr).not.toContain('killed and reaped');
    });

    it('a vDSO that is not the running kernel\'s is refused: from a file before anything exists, from a pipe once its pages arrive', async () => {
      const proc = processes(join(dir.path, 'damage.cryo'))[pid];
      const vdso = proc.vmas.find((v: any) => v.kind === 'vdso');
      const bad = patchPage(image, pid, storeIndexOf(image, pid, vdso.start), 3000);
      let stderr = await refused(bad, /vDSO differs from the running kernel's.*refusing/);
      expect(stderr).not.toContain('killed and reaped');
      stderr = await refused(bad, /vDSO differs from the running kernel's.*refusing.*killed and reaped/, true);
    });

    it('a caller who is not root may not restore root\'s process', async () => {
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', helperPath, 'restore', '-i', '-'], {
        input: image,
        encoding: 'utf8',
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`process ${pid} ran as uid 0 gid 0; only root may restore another user's process`);
      expect(alive(pid)).toBe(false);
    });

    it('a bad footer is refused and nothing stays', async () => {
      const bad = Buffer.from(image);
      bad[bad.length - 12] ^= 1; // footer_crc
      await refused(bad, /footer CRC mismatch/);
    });
  });
});

function readyLine(child: ChildProcess): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (c: Buffer) => {
      text += c.toString();
      const line = text.split('\n').find((l) => l.startsWith('READY'));
      if (line) resolve(Object.fromEntries(line.split(' ').slice(1).map((kv) => kv.split('=') as [string, string])));
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before READY`)));
  });
}

/** Writes a copy of an image whose PROCESS maps went through `edit` (every other section is copied as
 * stored, as src/rewrite/stream.ts does). */
async function rewriteProcesses(src: string, dst: string, edit: (raw: Record<string, any>) => void) {
  const image = await openCryoImage(src);
  await writeImageFile(dst, async (writer) => {
    for (const section of image.sections) {
      if (section.type === SectionType.PROCESS) {
        const raw = structuredClone(image.process(section.owner)!.raw) as Record<string, any>;
        edit(raw);
        await writer.addProcess(raw);
      } else {
        await writer.copySection(section, await image.readStoredSection(section));
      }
    }
  });
}

function readlinkSafe(path: string): string {
  const r = spawnSync('readlink', [path], { encoding: 'utf8' });
  return r.stdout.trim();
}
