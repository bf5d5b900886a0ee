// Dump, freeze and inspect times for processes with a 64 MiB and a 1 GiB heap, beside the physical
// limits on this machine (writing the same bytes to the same disk; copying them in memory) and beside
// gcore (gdb's core dumper), a peer that also freezes a process and writes its memory.
// Inspect must cost the same for both sizes: it reads metadata only.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, helper, fmt, printTable, startProgram, stop, timeCommand, timeWithFreezeWatch } from './lib.js';

const sizesMiB = (process.env.BENCH_SIZES ?? '64,1024').split(',').map(Number);
const work = mkdtempSync(join(tmpdir(), 'cryo-bench-'));
const hasGcore = spawnSync('which', ['gcore']).status === 0;
const rows = [];
try {
  for (const mib of sizesMiB) {
    const { child, ready } = await startProgram('bigheap', [String(mib)]);
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
      rows.push([
        `${mib} MiB`,
        `${(bytes / 2 ** 20).toFixed(0)} MiB`,
        fmt(dump.seconds),
        fmt(dump.frozenSeconds),
        fmt(disk),
        fmt(mem),
        hasGcore ? fmt(gcore) : 'n/a',
        fmt(Math.min(inspect, inspectAgain)),
        ready.checksum ? 'yes' : '',
      ]);
      rmSync(image, { force: true });
      rmSync(join(work, 'disk-limit'), { force: true });
      spawnSync('sh', ['-c', `rm -f ${join(work, 'core')}*`]);
    } finally {
      await stop(child);
    }
  }
  printTable(
    'dump and inspect (seconds; wall clock on this noisy 2-core machine, read as ratios)',
    ['heap', 'image', 'dump', 'frozen', 'disk write', 'memcpy', 'gcore', 'inspect', ''],
    rows.map((r) => r.slice(0, 8).concat([''])),
  );
  console.log('\ndisk write = the same bytes written and flushed by one writeFile; memcpy = one Buffer copy of them.');
  console.log('frozen = time the target had a tracer (sampled from /proc/PID/status); inspect = `cryo-img inspect --json`, best of 2.');
} finally {
  rmSync(work, { recursive: true, force: true });
}
