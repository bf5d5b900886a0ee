// cryo-helper dump against real running programs: every image is checked against facts read from
// /proc just before the dump, read back through the library (openImage), and the target must be left
// exactly as it was (still running, not traced, not stopped) unless --kill was asked for.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCryoImage as openImage, type CryoImage, type ProcessInfo } from '../src/node.js';
import { helperPath, programsDir, startProgram, tempDir, type RunningProgram } from './helpers/programs.js';

interface HelperResult {
  code: number;
  stderr: string;
}

function runHelper(args: string[]): Promise<HelperResult> {
  return new Promise((resolve) => {
    execFile(helperPath, args, { maxBuffer: 1 << 20 }, (error, _stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr });
    });
  });
}

async function dump(args: string[], out: string): Promise<CryoImage> {
  const result = await runHelper(['dump', ...args, '-o', out]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const image = await openImage(out);
  const report = await image.verify();
  expect(report.problems).toEqual([]);
  expect(report.ok).toBe(true);
  return image;
}

// ---- facts from /proc ----

interface MapsLine {
  start: bigint;
  end: bigint;
  perms: string;
  name: string;
}

function readMaps(pid: number): MapsLine[] {
  return readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line)!;
      return { start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]), perms: m[3], name: m[4] };
    });
}

interface FdFact {
  fd: number;
  path: string;
  flags: number;
  pos: number;
}

function readFds(pid: number): FdFact[] {
  return readdirSync(`/proc/${pid}/fd`)
    .map(Number)
    .sort((a, b) => a - b)
    .map((fd) => {
      const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      const field = (key: string) => new RegExp(`^${key}:\\s*(\\S+)`, 'm').exec(info)![1];
      return {
        fd,
        path: readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/ \(deleted\)$/, ''),
        flags: parseInt(field('flags'), 8),
        pos: Number(field('pos')),
      };
    });
}

function status(pid: number): { state: string; tracer: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    state: /^State:\s*(\S)/m.exec(text)![1],
    tracer: Number(/^TracerPid:\s*(\d+)/m.exec(text)![1]),
  };
}

function protOf(perms: string): number {
  return (perms[0] === 'r' ? 1 : 0) | (perms[1] === 'w' ? 2 : 0) | (perms[2] === 'x' ? 4 : 0);
}

function expectSameVmas(p: ProcessInfo, maps: MapsLine[]): void {
  expect(p.vmas.map((v) => [v.start, v.end, v.prot, v.shared, v.name])).toEqual(
    maps.map((m) => [m.start, m.end, protOf(m.perms), m.perms[3] === 's', m.name]),
  );
}

function expectLeftAlone(pid: number): void {
  const s = status(pid);
  expect(s.tracer).toBe(0);
  expect(s.state).not.toBe('T');
  expect(s.state).not.toBe('t');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function exited(program: RunningProgram): Promise<{ code: number | null; signal: string | null }> {
  const c = program.child;
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve({ code: c.exitCode, signal: c.signalCode });
  return new Promise((resolve) => c.once('exit', (code, signal) => resolve({ code, signal })));
}

function text(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('latin1');
}

describe('cryo-helper dump', () => {
  let dir: ReturnType<typeof tempDir>;
  const running: RunningProgram[] = [];
  const images: CryoImage[] = [];
  const strays: number[] = []; // grandchildren that startProgram does not know about

  function killStrays(): void {
    for (const pid of strays.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  async function start(name: string, args: string[]): Promise<RunningProgram> {
    const program = await startProgram(name, args);
    running.push(program);
    return program;
  }

  async function open(args: string[], name: string): Promise<CryoImage> {
    const image = await dump(args, join(dir.path, name));
    images.push(image);
    return image;
  }

  beforeAll(() => {
    expect(existsSync(helperPath), `${helperPath} is built (make -C native-helper)`).toBe(true);
    expect(existsSync(join(programsDir, 'counter')), 'test programs are built (make -C test/programs)').toBe(true);
    dir = tempDir('cryo-dump-');
  });

  afterAll(async () => {
    for (const image of images) await image.close();
    killStrays();
    for (const program of running) await program.stop();
    dir.remove();
  });

  it('dumps a running counter: metadata, VMAs, fds, registers and its heap marker, then leaves it running', async () => {
    const out = join(dir.path, 'counter.out');
    const counter = await start('counter', [out, '5']);
    const pid = counter.pid;
    const maps = readMaps(pid);
    const fdsBefore = readFds(pid);
    const image = await open(['--pid', String(pid)], 'counter.cryo');
    const fdsAfter = readFds(pid);

    expect(image.meta.format).toBe('cryo');
    expect(image.meta.rootPid).toBe(pid);
    expect(image.meta.pids).toEqual([pid]);
    expect(image.meta.options).toMatchObject({ tree: false, kill: false });
    expect(image.processes).toHaveLength(1);
    const p = image.processes[0];
    expect(p.pid).toBe(pid);
    expect(p.ppid).toBe(process.pid);
    expect(p.comm).toBe('counter');
    expect(p.cmdline).toEqual([join(programsDir, 'counter'), out, '5']);
    expect(p.exe).toBe(join(programsDir, 'counter'));
    expect(p.environ.length).toBeGreaterThan(0);
    expect(p.sigactions).toHaveLength(64);
    expect(p.sigactions[8]).toBeNull(); // SIGKILL
    expect(p.rlimits).toHaveLength(16);
    expect(p.mm?.brk).toBeGreaterThanOrEqual(p.mm!.startBrk!);

    expectSameVmas(p, maps);
    const heap = p.vmas.find((v) => v.name === '[heap]')!;
    expect(heap.kind).toBe('heap');
    expect(heap.vmFlags).toContain('rd');
    expect(p.vmas.find((v) => v.name === '[vdso]')?.pagesStored).toBeGreaterThan(0);

    // The marker string sits on the heap at the address the program printed.
    const marker = await image.readMemory(pid, BigInt(counter.ready.marker), 32);
    expect(text(marker).split('\0')[0]).toBe(`CRYO-COUNTER-MARKER-${pid}`);

    // Descriptors: numbers, paths and flags as /proc showed them.
    expect(p.fds.map((f) => [f.fd, f.path, f.flags])).toEqual(fdsBefore.map((f) => [f.fd, f.path, f.flags]));
    const outFd = p.fds.find((f) => f.fd === Number(counter.ready.fd))!;
    const others = (fds: { fd: number; pos: number | null }[]) =>
      fds.filter((f) => f.fd !== outFd.fd).map((f) => [f.fd, f.pos]);
    expect(others(p.fds)).toEqual(others(fdsBefore));
    expect(outFd.type).toBe('file');
    expect(outFd.path).toBe(out);
    // The output file offset moves while the counter runs: the image holds the one from the moment of
    // the dump, which is exactly the length of the lines "count 1" .. "count N" for the N in memory.
    const before = fdsBefore.find((f) => f.fd === outFd.fd)!.pos;
    const after = fdsAfter.find((f) => f.fd === outFd.fd)!.pos;
    expect(outFd.pos).toBeGreaterThanOrEqual(before);
    expect(outFd.pos).toBeLessThanOrEqual(after);
    // (If the freeze fell between the increment and its write(), the last line is not written yet.)
    const n = Number(Buffer.from(await image.readMemory(pid, BigInt(counter.ready.counter), 8)).readBigUInt64LE());
    let written = 0;
    for (let i = 1; i < n; i++) written += `count ${i}\n`.length;
    expect([written, written + `count ${n}\n`.length]).toContain(outFd.pos);

    // The thread: registers present (the 216-byte user_regs_struct), state before the freeze.
    expect(p.threads).toHaveLength(1);
    const t = p.threads[0];
    expect(t.tid).toBe(pid);
    expect((t.raw.regs as Uint8Array).length).toBe(216);
    expect(t.registers).not.toBeNull();
    expect(t.fsBase).toBe(t.registers!.fs_base);
    expect(t.xstate!.length).toBeGreaterThanOrEqual(576);
    expect(t.xfeatures! & 3n).toBe(3n); // x87 and SSE at least
    expect(['none', 'restart', 'eintr']).toContain(t.restart);

    // Left alone: not traced, not stopped, still counting.
    expectLeftAlone(pid);
    const lines = () => readFileSync(out, 'utf8').split('\n').length;
    const seen = lines();
    await waitFor('the counter to go on counting', () => (lines() > seen + 3 ? true : undefined));
    const counts = readFileSync(out, 'utf8').trim().split('\n');
    counts.forEach((line, i) => expect(line).toBe(`count ${i + 1}`));
  });

  it('dumps every thread of a multi-threaded process, and the threads still finish their work', async () => {
    const out = join(dir.path, 'threads.out');
    const program = await start('threads', [out, '3', '100']);
    const pid = program.pid;
    const maps = readMaps(pid);
    const image = await open(['--pid', String(pid)], 'threads.cryo');
    const p = image.processes[0];

    expectSameVmas(p, maps);
    const workers = ['tid0', 'tid1', 'tid2'].map((k) => Number(program.ready[k]));
    expect(p.threads[0].tid).toBe(pid); // the leader first
    expect(p.threads.map((t) => t.tid).sort()).toEqual([pid, ...workers].sort());
    for (const t of p.threads) {
      expect((t.raw.regs as Uint8Array).length).toBe(216);
      expect(t.registers!.rsp).toBeGreaterThan(0n);
      expect(t.sigmask).not.toBeNull();
      expect(t.clearChildTid).toBeGreaterThan(0n); // glibc sets it for every thread
      expect(t.rseq === null || t.rseq.size >= 32).toBe(true);
    }
    for (const [i, tid] of workers.entries()) expect(p.threads.find((t) => t.tid === tid)!.comm).toBe(`cryo-worker-${i}`);
    expect(new Set(p.threads.map((t) => t.fsBase)).size).toBe(4); // one TLS block per thread

    expectLeftAlone(pid);
    expect(await exited(program)).toEqual({ code: 0, signal: null });
    expect(readFileSync(out, 'utf8')).toBe('joined 3 total 300\n');
  });

  it('dumps a whole tree with --tree: three processes and the unread bytes of their shared pipe', async () => {
    const out = join(dir.path, 'tree.out');
    writeFileSync(out, '');
    // Under the subreaper, so that the children killed at the end are reaped (PID 1 reaps nothing here).
    const program = await start('subreaper', [join(programsDir, 'tree'), out]);
    const pids = [Number(program.ready.pid), Number(program.ready.child1), Number(program.ready.child2)];
    strays.push(...pids);
    // READY comes from the parent; each child is settled once it has its heap and sleeps in pause().
    for (const pid of pids.slice(1))
      await waitFor(`child ${pid} to settle`, () =>
        status(pid).state === 'S' && readMaps(pid).some((m) => m.name === '[heap]') ? true : undefined,
      );
    const maps = pids.map(readMaps);
    const image = await open(['--pid', String(pids[0]), '--tree'], 'tree.cryo');

    expect(image.meta.pids).toEqual(pids);
    expect(image.meta.options).toMatchObject({ tree: true });
    expect(image.processes.map((p) => [p.pid, p.ppid, p.comm])).toEqual([
      [pids[0], program.pid, 'cryo-tree-par'],
      [pids[1], pids[0], 'cryo-child-1'],
      [pids[2], pids[0], 'cryo-child-2'],
    ]);
    image.processes.forEach((p, i) => expectSameVmas(p, maps[i]));

    const pendingRd = Number(program.ready.pending_rd);
    const pendingWr = Number(program.ready.pending_wr);
    const pipeFds = image.processes.flatMap((p) => p.fds.filter((f) => f.fd === pendingRd || f.fd === pendingWr));
    expect(pipeFds).toHaveLength(6);
    const blobIds = new Set(pipeFds.map((f) => f.pipe?.dataBlob));
    expect(blobIds.size).toBe(1); // every descriptor of the pipe, in every process, names one blob
    const expected = 'CRYO-PIPE-PENDING\nCRYO-PIPE-SECOND\n';
    expect(pipeFds.every((f) => f.type === 'pipe' && f.pipe!.dataLength === expected.length)).toBe(true);
    expect(text(await image.readBlob(pipeFds[0].pipe!.dataBlob!))).toBe(expected);

    // Each child's marker is in its own memory.
    for (const p of image.processes.slice(1)) {
      const found = await findMarker(image, p, `CRYO-TREE-CHILD-${p.pid === pids[1] ? 1 : 2}`);
      expect(found).toBe(true);
    }

    // The bytes were read without consuming them: a child still reads the first line.
    for (const pid of pids) expectLeftAlone(pid);
    process.kill(pids[1], 'SIGUSR1');
    await waitFor('child1 to report', () => (readFileSync(out, 'utf8').includes('\n') ? true : undefined));
    expect(readFileSync(out, 'utf8')).toBe('child1 got CRYO-PIPE-PENDING\n');
    killStrays();
    expect((await exited(program)).code).toBe(128 + 9);
  });

  it('saves the content of a deleted, still open file, and leaves its offset alone', async () => {
    const out = join(dir.path, 'deleted.out');
    const program = await start('deleted', [out]);
    const image = await open(['--pid', String(program.pid)], 'deleted.cryo');
    const f = image.processes[0].fds.find((x) => x.fd === Number(program.ready.fd))!;

    expect(f).toMatchObject({ type: 'file', path: program.ready.path, deleted: true, pos: 5, nlink: 0 });
    const content = 'HEAD:CRYO-DELETED-CONTENT the file is gone but still open\n';
    expect(f.size).toBe(content.length);
    expect(text(await image.readBlob(f.contentBlob!))).toBe(content);

    expectLeftAlone(program.pid);
    process.kill(program.pid, 'SIGUSR1');
    expect(await exited(program)).toEqual({ code: 0, signal: null });
    expect(readFileSync(out, 'utf8')).toBe(content.slice(5));
  });

  it('records signal state, special memory and special descriptors (assorted), and changes none of it', async () => {
    const out = join(dir.path, 'assorted.out');
    const program = await start('assorted', [out]);
    const r = program.ready;
    const image = await open(['--pid', String(program.pid)], 'assorted.cryo');
    const p = image.processes[0];
    const t = p.threads[0];
    const bit = (sig: number) => 1n << BigInt(sig - 1);
    const SIGRTMIN = 34; // glibc's SIGRTMIN (the kernel's 32 + the two glibc keeps)

    // Signal dispositions as the kernel holds them, masks as bin(8) -> bigint.
    const usr1 = p.sigactions[10 - 1]!;
    expect(usr1.handler).toBeGreaterThan(1n);
    expect(usr1.flags & 0x10000000).toBe(0x10000000); // SA_RESTART
    expect(usr1.mask).toBe(bit(12)); // SIGUSR2 blocked while it runs
    expect(p.sigactions[12 - 1]!.handler).toBe(1n); // SIGUSR2 ignored
    const term = p.sigactions[15 - 1]!;
    expect(term.flags & (0x4 | 0x08000000)).toBe(0x4 | 0x08000000); // SA_SIGINFO | SA_ONSTACK
    expect(p.sigactions[19 - 1]).toBeNull(); // SIGSTOP
    // Blocked, queued signals: one for the process (with its sigqueue value), one for the thread.
    expect(t.sigmask! & (bit(SIGRTMIN + 1) | bit(SIGRTMIN + 2))).toBe(bit(SIGRTMIN + 1) | bit(SIGRTMIN + 2));
    expect(p.pendingShared.map((si) => Buffer.from(si).readInt32LE(0))).toEqual([SIGRTMIN + 1]);
    expect(Buffer.from(p.pendingShared[0]).readInt32LE(24)).toBe(0x1234);
    expect(t.pending.map((si) => Buffer.from(si).readInt32LE(0))).toEqual([SIGRTMIN + 2]);
    expect(t.sigaltstack).toMatchObject({ sp: BigInt(r.altstack), size: 65536 });
    expect(p.umask).toBe(0o027);
    expect(p.rlimits[7].soft).toBe(1000n); // RLIMIT_NOFILE

    // Every page-map run lies inside one VMA.
    for (const run of p.pageMap) {
      const vma = p.vmas.find((v) => v.start <= run.vaddr && run.vaddr < v.end)!;
      expect(run.vaddr + BigInt(run.pageCount) * 4096n).toBeLessThanOrEqual(vma.end);
    }

    // Special memory: kinds, and contents read back at the program's addresses.
    const vmaAt = (addr: string) => p.vmas.find((v) => v.start === BigInt(addr))!;
    const read = async (addr: string, len: number) => text(await image.readMemory(p.pid, BigInt(addr), len));
    expect(vmaAt(r.memfd)).toMatchObject({ kind: 'memfd', shared: true, path: '/memfd:cryo-memfd' });
    expect(await read(r.memfd, 18)).toBe('CRYO-MEMFD-CONTENT');
    expect(vmaAt(r.shmem)).toMatchObject({ kind: 'shmem', shared: true });
    expect(await read(r.shmem, 10)).toBe('CRYO-SHMEM');
    expect(vmaAt(r.protnone).prot).toBe(0);
    expect(await read(r.protnone, 13)).toBe('CRYO-PROTNONE'); // read through /proc/PID/mem
    expect(await read(r.zeros, 4 * 4096)).toBe('\0'.repeat(4 * 4096));
    expect(vmaAt(r.delmap)).toMatchObject({ kind: 'deleted', path: join(dir.path, 'assorted-mapped.tmp') });
    expect(await read(r.delmap, 16)).toBe('CRYO-DELETED-MAP');
    expect(vmaAt(r.delmap).name).toBe(join(dir.path, 'assorted-mapped.tmp') + ' (deleted)');

    // Special descriptors.
    const byType = (type: string) => p.fds.filter((f) => f.type === type);
    const memfd = byType('memfd')[0];
    expect(memfd).toMatchObject({ path: '/memfd:cryo-memfd', deleted: true, size: 8192 });
    const memfdContent = await image.readBlob(memfd.contentBlob!);
    expect(memfdContent.length).toBe(8192);
    expect(text(memfdContent).startsWith('CRYO-MEMFD-CONTENT\0')).toBe(true);
    const fifo = p.fds.find((f) => f.fd === Number(r.fifo_fd))!;
    expect(fifo).toMatchObject({ type: 'fifo', path: r.fifo });
    expect(fifo.pipe!.dataLength).toBe(15);
    expect(text(await image.readBlob(fifo.pipe!.dataBlob!))).toBe('CRYO-FIFO-DATA\n');
    expect(byType('eventfd')[0].fdinfo['eventfd-count']).toBe('7');
    expect(byType('eventfd')[0].cloexec).toBe(true);
    expect(byType('timerfd')[0].fdinfo.it_interval).toBe('(10, 0)');
    const sockets = byType('socket').map((f) => f.socket!);
    expect(sockets).toContainEqual(expect.objectContaining({ family: 'unix', type: 'stream', state: 'listen', local: `@${r.abstract}` }));
    // The socketpair (the test runner may hand the program more connected unix sockets, e.g. as stderr).
    expect(sockets.filter((s) => s.family === 'unix' && s.state === 'connected').length).toBeGreaterThanOrEqual(2);

    // The program re-checks all of it itself.
    expectLeftAlone(program.pid);
    process.kill(program.pid, 'SIGUSR1');
    expect(await exited(program)).toEqual({ code: 0, signal: null });
    expect(readFileSync(out, 'utf8')).toBe('assorted ok\n');
  });

  it('freezes a process whose threads and children come and go, again and again', async () => {
    const out = join(dir.path, 'spawner.out');
    const program = await start('spawner', [out]);
    const path = join(dir.path, 'spawner.cryo');
    for (let i = 0; i < 8; i++) {
      const result = await runHelper(['dump', '--pid', String(program.pid), '--tree', '-o', path]);
      expect(result.code, result.stderr).toBe(0);
      const image = await openImage(path);
      try {
        expect((await image.verify()).ok).toBe(true);
        expect(image.processes[0].pid).toBe(program.pid);
        expect(image.processes[0].threads.length).toBeGreaterThanOrEqual(2); // main + the pesterer
        for (const p of image.processes) {
          expect(p.threads[0].tid).toBe(p.pid);
          for (const t of p.threads) expect((t.raw.regs as Uint8Array).length).toBe(216);
        }
      } finally {
        await image.close();
      }
      expectLeftAlone(program.pid);
    }
    process.kill(program.pid, 'SIGUSR1');
    expect(await exited(program)).toEqual({ code: 0, signal: null });
    expect(readFileSync(out, 'utf8')).toMatch(/^spawner ok threads=[1-9]\d* children=[1-9]\d* signals=[1-9]\d*\n$/);
  });

  it('keeps a stopped target stopped', async () => {
    const out = join(dir.path, 'stopped.out');
    const counter = await start('counter', [out, '5']);
    process.kill(counter.pid, 'SIGSTOP');
    await waitFor('the counter to stop', () => (status(counter.pid).state === 'T' ? true : undefined));
    const image = await open(['--pid', String(counter.pid)], 'stopped.cryo');
    expect(image.processes[0].state).toBe('T');
    expect(status(counter.pid)).toEqual({ state: 'T', tracer: 0 });
    const size = readFileSync(out).length;
    await sleep(100);
    expect(readFileSync(out).length).toBe(size);
    process.kill(counter.pid, 'SIGCONT');
    await waitFor('the counter to resume', () => (readFileSync(out).length > size ? true : undefined));
    expectLeftAlone(counter.pid);
  });

  it('writes the same image to a pipe with -o -', async () => {
    const counter = await start('counter', [join(dir.path, 'pipe.out'), '5']);
    const path = join(dir.path, 'piped.cryo');
    await new Promise<void>((resolve, reject) => {
      const child = spawn(helperPath, ['dump', '--pid', String(counter.pid), '-o', '-'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const chunks: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => chunks.push(c));
      child.once('exit', (code) => {
        if (code !== 0) return reject(new Error(`cryo-helper exited with ${code}`));
        writeFileSync(path, Buffer.concat(chunks));
        resolve();
      });
    });
    const image = await openImage(path);
    images.push(image);
    expect((await image.verify()).ok).toBe(true);
    const marker = await image.readMemory(counter.pid, BigInt(counter.ready.marker), 32);
    expect(text(marker).split('\0')[0]).toBe(`CRYO-COUNTER-MARKER-${counter.pid}`);
  });

  it('writes into an existing FIFO (or device) in place instead of replacing it', async () => {
    const counter = await start('counter', [join(dir.path, 'fifo.out'), '5']);
    const fifo = join(dir.path, 'image.fifo');
    execFileSync('mkfifo', [fifo]);
    const received = new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      createReadStream(fifo)
        .on('data', (c) => chunks.push(c as Buffer))
        .on('end', () => resolve(Buffer.concat(chunks)))
        .on('error', reject);
    });
    const result = await runHelper(['dump', '--pid', String(counter.pid), '-o', fifo]);
    expect(result).toEqual({ code: 0, stderr: '' });
    const path = join(dir.path, 'from-fifo.cryo');
    writeFileSync(path, await received);
    expect(statSync(fifo).isFIFO()).toBe(true);
    const image = await openImage(path);
    images.push(image);
    expect((await image.verify()).ok).toBe(true);
    expect(image.processes[0].pid).toBe(counter.pid);
  });

  it('dumps a 16 MiB heap page for page', async () => {
    const program = await start('bigheap', ['16']);
    const image = await open(['--pid', String(program.pid)], 'bigheap.cryo');
    const heap = BigInt(program.ready.heap);
    const p = image.processes[0];
    const vma = p.vmas.find((v) => v.start <= heap && heap < v.end)!;
    expect(vma.pagesStored + vma.zeroPages).toBeGreaterThanOrEqual(16 * 256);
    // The checksum the program computed over its heap, recomputed from the image.
    const size = Number(program.ready.size);
    let h = 1469598103934665603n;
    const mask = (1n << 64n) - 1n;
    for (let off = 0; off < size; off += 1 << 20) {
      const bytes = Buffer.from(await image.readMemory(program.pid, heap + BigInt(off), 1 << 20));
      for (let i = 0; i < bytes.length; i += 8) h = ((h ^ bytes.readBigUInt64LE(i)) * 1099511628211n) & mask;
    }
    expect(h.toString(16).padStart(16, '0')).toBe(program.ready.checksum);
  });

  it('kills the target after writing the image with --kill', async () => {
    const counter = await start('counter', [join(dir.path, 'kill.out'), '5']);
    const gone = exited(counter);
    const image = await open(['--pid', String(counter.pid), '--kill'], 'kill.cryo');
    expect(image.meta.options).toMatchObject({ kill: true });
    expect(await gone).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('kills a whole tree with --tree --kill', async () => {
    const program = await start('subreaper', [join(programsDir, 'tree'), join(dir.path, 'tree-kill.out')]);
    const pids = [Number(program.ready.pid), Number(program.ready.child1), Number(program.ready.child2)];
    const image = await open(['--pid', String(pids[0]), '--tree', '--kill'], 'tree-kill.cryo');
    expect(image.meta.pids).toEqual(pids);
    expect((await exited(program)).code).toBe(128 + 9);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('fails clearly for a process that does not exist, and writes nothing', async () => {
    const out = join(dir.path, 'missing.cryo');
    const result = await runHelper(['dump', '--pid', '4194000', '-o', out]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/4194000/);
    expect(result.stderr).toMatch(/ESRCH|ENOENT/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(readdirSync(dir.path).filter((f) => f.startsWith('missing.cryo'))).toEqual([]);
  });

  it('fails clearly when the output fills up (ENOSPC), leaving the target running', async () => {
    const counter = await start('counter', [join(dir.path, 'full.out'), '5']);
    const full = openSync('/dev/full', 'w');
    const result = await new Promise<HelperResult>((resolve) => {
      const child = spawn(helperPath, ['dump', '--pid', String(counter.pid), '-o', '-'], { stdio: ['ignore', full, 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('exit', (code) => resolve({ code: code ?? 1, stderr }));
    });
    closeSync(full);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/write image to stdout: ENOSPC/);
    expectLeftAlone(counter.pid);
  });

  it('fails clearly for an unwritable output, before touching the target', async () => {
    const counter = await start('counter', [join(dir.path, 'unwritable.out'), '5']);
    const result = await runHelper(['dump', '--pid', String(counter.pid), '-o', join(dir.path, 'no', 'such', 'dir.cryo')]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/ENOENT/);
    expectLeftAlone(counter.pid);
  });
});

/** Whether the NUL-terminated string is somewhere in the stored heap of p. */
async function findMarker(image: CryoImage, p: ProcessInfo, marker: string): Promise<boolean> {
  const heap = p.vmas.find((v) => v.kind === 'heap');
  if (!heap) return false;
  const bytes = await image.readMemory(p.pid, heap.start, Number(heap.end - heap.start));
  return text(bytes).includes(marker + '\0');
}
