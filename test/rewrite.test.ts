// `cryo-img rewrite` on real dumped images: PID remapping everywhere a PID is recorded (including the
// thread IDs glibc caches in memory), path relocation rules, --dry-run, --check, and bad options.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openImage } from '../src/node.js';
import { Relocator, parseRelocation } from '../src/rewrite/relocate.js';
import { rewriteProcPath } from '../src/rewrite/plan.js';
import { cliPath, helperPath, startProgram, tempDir } from './helpers/programs.js';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('relocation rules', () => {
  const relocator = new Relocator(['/srv=/data', '/srv/app=/opt/app', '/opt=/mnt/opt'].map(parseRelocation));

  it('uses the longest matching prefix, on whole path components, once', () => {
    expect(relocator.apply('/srv/app/log.txt')).toBe('/opt/app/log.txt'); // not /mnt/opt/app/...: no chaining
    expect(relocator.apply('/srv/other')).toBe('/data/other');
    expect(relocator.apply('/srv')).toBe('/data');
    expect(relocator.apply('/srv/apple')).toBe('/data/apple');
    expect(relocator.apply('/srvx/file')).toBeNull();
    expect(relocator.apply('/etc/passwd')).toBeNull();
  });

  it('refuses malformed prefixes', () => {
    expect(() => parseRelocation('relative=/x')).toThrow(/not an absolute path/);
    expect(() => parseRelocation('/a')).toThrow(/OLD_PREFIX=NEW_PREFIX/);
    expect(() => parseRelocation('/a/../b=/c')).toThrow(/'\.\.'/);
    expect(() => new Relocator(['/a=/b', '/a/=/c'].map(parseRelocation))).toThrow(/given twice/);
  });

  it('rewrites /proc/PID paths', () => {
    const map = (pid: number) => (pid === 42 ? 4242 : pid === 43 ? 4343 : pid);
    expect(rewriteProcPath('/proc/42/fd/3', map)).toBe('/proc/4242/fd/3');
    expect(rewriteProcPath('/proc/42/task/43/stat', map)).toBe('/proc/4242/task/4343/stat');
    expect(rewriteProcPath('/proc/420/fd', map)).toBe('/proc/420/fd');
    expect(rewriteProcPath('/tmp/proc/42', map)).toBe('/tmp/proc/42');
  });
});

describe('rewrite of a dumped multithreaded program', () => {
  let dir: ReturnType<typeof tempDir>;
  let image: string;
  let pid: number;
  let tids: number[];

  beforeAll(async () => {
    dir = tempDir();
    mkdirSync(join(dir.path, 'A'));
    const program = await startProgram('threads', [join(dir.path, 'A', 'out.txt'), '3', '100000']);
    try {
      image = join(dir.path, 'threads.cryo');
      execFileSync(helperPath, ['dump', '--pid', String(program.pid), '-o', image]);
      pid = program.pid;
      tids = [1, 2, 3].map((i) => Number(program.ready[`tid${i - 1}`]));
    } finally {
      await program.stop();
    }
  });

  afterAll(() => dir?.remove());

  it('changes every recorded PID and TID, and the TIDs glibc caches in memory', async () => {
    const base = 4_000_000 + (process.pid % 1000) * 100; // far above any PID in use here
    const ids = [pid, ...tids];
    const map = ids.map((id, i) => `${id}:${base + i}`).join(',');
    const out = join(dir.path, 'mapped.cryo');
    const result = cli('rewrite', image, '-o', out, '--pid-map', map);
    expect(result.stderr).not.toContain('warning');
    expect(result.status).toBe(0);

    const before = await openImage(image);
    const after = await openImage(out);
    try {
      const newOf = (id: number) => base + ids.indexOf(id);
      expect(after.meta.rootPid).toBe(newOf(pid));
      expect(after.meta.pids).toEqual([newOf(pid)]);
      const p = after.processes[0]!;
      expect(p.pid).toBe(newOf(pid));
      expect(p.threads.map((t) => t.tid)).toEqual(before.processes[0]!.threads.map((t) => newOf(t.tid)));
      // No section is owned by an old PID, and no metadata map still holds one as a PID.
      for (const section of after.sections) expect(ids).not.toContain(section.owner);
      const pidFields = [p.pid, p.pgid, p.sid, ...p.threads.map((t) => t.tid)];
      for (const old of ids) expect(pidFields).not.toContain(old);
      // glibc's struct pthread holds each thread's TID at fs_base + 0x2d0: now the new one.
      for (const t of p.threads) {
        const bytes = await after.readMemory(p.pid, t.fsBase! + 0x2d0n, 4);
        expect(new DataView(bytes.buffer).getInt32(0, true)).toBe(t.tid);
      }
      // Everything else is unchanged: same memory map, same page data.
      expect(p.vmas.map((v) => v.start)).toEqual(before.processes[0]!.vmas.map((v) => v.start));
      const heap = p.vmas.find((v) => v.kind === 'heap')!;
      expect(await after.readMemory(p.pid, heap.start, 4096)).toEqual(await before.readMemory(pid, heap.start, 4096));
      expect((await after.verify()).ok).toBe(true);
    } finally {
      await before.close();
      await after.close();
    }
  });

  it('--dry-run prints each change field by field and writes nothing', () => {
    const out = join(dir.path, 'dry.cryo');
    const result = cli('rewrite', image, '-o', out, '--pid-map', `${pid}:4100000`, '--relocate', `${dir.path}/A=${dir.path}/B`, '--dry-run');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`process ${pid}: pid: ${pid} -> 4100000`);
    expect(result.stdout).toContain(`image: rootPid: ${pid} -> 4100000`);
    expect(result.stdout).toMatch(new RegExp(`process ${pid} thread ${pid}: memory 0x[0-9a-f]+ \\(glibc cached TID\\): ${pid} -> 4100000`));
    expect(existsSync(out)).toBe(false);
  });

  it('refuses bad maps with a clear error and writes nothing', () => {
    const out = join(dir.path, 'bad.cryo');
    const cases: [string[], RegExp][] = [
      [['--pid-map', `${pid}:4100000,${tids[0]}:4100000`], /would both become 4100000/],
      [['--pid-map', `${pid}:1`], /PID 1 is in use on this host/],
      [['--pid-map', `${pid}:${tids[0]}`], /would both become/],
      [['--pid-map', '12x:5'], /is not a PID/],
      [['--pid-map', '999999:4100001'], /not a PID or TID of this image/],
      [['--relocate', 'tmp=/x'], /not an absolute path/],
      [['--relocate-fd', 'three=/x'], /expected \[PID:\]FD=/],
    ];
    for (const [args, message] of cases) {
      const result = cli('rewrite', image, '-o', out, ...args);
      expect(result.status, args.join(' ')).toBe(1);
      expect(result.stderr).toMatch(message);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('writes into a FIFO in place instead of replacing it', async () => {
    const fifo = join(dir.path, 'out.fifo');
    execFileSync('mkfifo', [fifo]);
    const copy = join(dir.path, 'from-fifo.cryo');
    const reader = spawn('sh', ['-c', `cat "${fifo}" > "${copy}"`]);
    const result = cli('rewrite', image, '-o', fifo, '--pid-map', `${pid}:4100002`);
    await new Promise((r) => reader.once('exit', r));
    expect(result.status).toBe(0);
    expect(statSync(fifo).isFIFO()).toBe(true);
    const copied = await openImage(copy);
    try {
      expect(copied.processes[0]!.pid).toBe(4100002);
      expect((await copied.verify()).ok).toBe(true);
    } finally {
      await copied.close();
    }
  });

  it('--check fails clearly when a relocated file is missing or different', async () => {
    const out = join(dir.path, 'checked.cryo');
    const missing = cli('rewrite', image, '-o', out, '--relocate-fd', '1=/nonexistent/cryo-out', '--check');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/fd 1: \/nonexistent\/cryo-out: ENOENT/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('relocation of a dumped counter', () => {
  it('points the open file at its new place', async () => {
    const dir = tempDir();
    try {
      mkdirSync(join(dir.path, 'A'));
      const counter = await startProgram('counter', [join(dir.path, 'A', 'out.log'), '10']);
      const image = join(dir.path, 'c.cryo');
      try {
        execFileSync(helperPath, ['dump', '--pid', String(counter.pid), '-o', image, '--kill']);
      } finally {
        await counter.stop();
      }
      renameSync(join(dir.path, 'A'), join(dir.path, 'B'));
      const out = join(dir.path, 'moved.cryo');
      const result = cli('rewrite', image, '-o', out, '--relocate', `${dir.path}/A=${dir.path}/B`, '--check');
      expect(result.stderr).not.toMatch(/check:/);
      expect(result.status).toBe(0);
      const moved = await openImage(out);
      try {
        const fd3 = moved.processes[0]!.fds.find((f) => f.fd === 3)!;
        expect(fd3.path).toBe(join(dir.path, 'B', 'out.log'));
      } finally {
        await moved.close();
      }
    } finally {
      dir.remove();
    }
  });
});
