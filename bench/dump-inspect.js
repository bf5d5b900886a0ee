// Dump, freeze and inspect times for processes with a 64 MiB and a 1 GiB heap, beside the physical
// limits on this machine (writing the same bytes to the same disk; copying them in memory) and beside
// gcore (gdb's core dumper), a peer that also freezes a process and writes its memory.
// Inspect must cost the same for both sizes: it reads metadata only. Restore time is measured from
// starting the helper until the restored process runs untraced, then the heap's checksum is checked.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, helper, fmt, printTable, programs, startProgram, stop, timeCommand, timeWithFreezeWatch } from './lib.js';

const sizesMiB = (process.env.BENCH_SIZES ?? '64,1024').split(',').map(Number);
const work = mkdtempSync(join(tmpdir(), 'cryo-bench-'));
const hasGcore = spawnSync('which', ['gcore']).status === 0;
const rows = [];

/** Restores `image` under the subreaper wrapper; seconds until `pid` runs untraced, then checks its heap. */
async function timeRestore(pid, image, sumFile) {
  const start = process.hrtime.bigint();
  const wrapper = spawn(join(programs, 'subreaper'), [helper, 'restore', '-i', image, '--skip-fd', '1', '--skip-fd', '2'], { stdio: 'ignore' });
  const running = () => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      return /Name:\s+bigheap/.test(status) && /TracerPid:\s+0\n/.test(status);
    } catch {
      return false;
    }
  };
  while (!running()) {
    if (wrapper.exitCode !== null) return { seconds: NaN, checksum: `restore failed (${wrapper.exitCode})` };
    await new Promise((r) => setTimeout(r, 2));
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  // The restored bigheap recomputes its heap checksum on SIGUSR1 and writes "checksum X ok|BAD".
  process.kill(pid, 'SIGUSR1');
  let verdict = 'no answer';
  for (let i = 0; i < 500 && verdict === 'no answer'; i++) {
    await new Promise((r) => setTimeout(r, 20));
    if (existsSync(sumFile)) verdict = readFileSync(sumFile, 'utf8').trim().split(' ').pop() || 'no answer';
  }
  process.kill(pid, 'SIGKILL');
  await new Promise((r) => wrapper.once('exit', r));
  return { seconds, checksum: verdict };
}
try {
  for (const mib of sizesMiB) {
    const sumFile = join(work, `sum-${mib}`);
    const { child } = await startProgram('bigheap', [String(mib), sumFile]);
    try {
      const image = join(work, `heap-${mib}.cryo`);
      const dump = await timeWithFreezeWatch(child.pid, helper, ['dump', '--pid', String(child.pid), '-o', image]);
      const bytes = statSync(image).size;
      const inspect = timeCommand(process.execPath, [cli, 'inspect', '--json', image]);
      const inspectAgain = timeCommand(process.execPath, [cli, 'inspect', '--json', image]);
      // Physical limit: the same number of bytes written to the same file system and fsynced.
      const buffer = Buffer.alloc(bytes, 0x5a);
      const diskStart = process.hrtime.bigint();
      writeFileSync(join(work, 'disk-limit'), buffer, { flush: true });
      const disk = Number(process.hrtime.bigint() - diskStart) / 1e9;
      const memStart = process.hrtime.bigint();
      Buffer.from(buffer);
      const mem = Number(process.hrtime.bigint() - memStart) / 1e9;
      let gcore = NaN;
      if (hasGcore) {
        gcore = timeCommand('gcore', ['-o', join(work, 'core'), String(child.pid)]);
      }
      await stop(child);
      const restore = await timeRestore(child.pid, image, sumFile);
      rows.push([
        `${mib} MiB`,
        `${(bytes / 2 ** 20).toFixed(0)} MiB`,
        fmt(dump.seconds),
        fmt(dump.frozenSeconds),
        fmt(disk),
        fmt(mem),
        hasGcore ? fmt(gcore) : 'n/a',
        fmt(Math.min(inspect, inspectAgain)),
        fmt(restore.seconds),
        restore.checksum,
      ]);
      rmSync(image, { force: true });
      rmSync(join(work, 'disk-limit'), { force: true });
      spawnSync('sh', ['-c', `rm -f ${join(work, 'core')}*`]);
    } finally {
      await stop(child);
    }
  }
  printTable(
    'dump, inspect and restore (seconds; wall clock on this noisy 2-core machine, read as ratios)',
    ['heap', 'image', 'dump', 'frozen', 'disk write', 'memcpy', 'gcore', 'inspect', 'restore', 'heap after'],
    rows,
  );
  console.log('\ndisk write = the same bytes written and flushed by one writeFile; memcpy = one Buffer copy of them.');
  console.log('restore = until the restored process runs untraced; heap after = its own checksum of the heap, recomputed on SIGUSR1.');
  console.log('frozen = time the target had a tracer (sampled from /proc/PID/status); inspect = `cryo-img inspect --json`, best of 2.');
} finally {
  rmSync(work, { recursive: true, force: true });
}
