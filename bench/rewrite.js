// Rewrite throughput on an image of a process with a 1 GiB heap, beside a plain copy of the same file
// (cp, the physical limit of "read it all and write it all" here) in the same run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, helper, fmt, printTable, startProgram, stop, timeCommand } from './lib.js';

const mib = Number(process.env.BENCH_REWRITE_MIB ?? 1024);
const work = mkdtempSync(join(tmpdir(), 'cryo-bench-rw-'));
try {
  const { child } = await startProgram('bigheap', [String(mib)]);
  const image = join(work, 'heap.cryo');
  try {
    timeCommand(helper, ['dump', '--pid', String(child.pid), '-o', image]);
  } finally {
    await stop(child);
  }
  const bytes = statSync(image).size;
  const rows = [];
  const measure = (name, cmd, args) => {
    spawnSync('sync');
    const seconds = timeCommand(cmd, args);
    rows.push([name, fmt(seconds), ((bytes / 2 ** 20) / seconds).toFixed(0)]);
    return seconds;
  };
  // cp then sync of the copy: rewrite also syncs its output before renaming it into place.
  const copy = measure('cp + sync (plain copy)', 'sh', ['-c', `cp "${image}" "${join(work, 'copy.cryo')}" && sync "${join(work, 'copy.cryo')}"`]);
  rmSync(join(work, 'copy.cryo'));
  const rewrite = measure('cryo-img rewrite --pid-map', process.execPath, [cli, 'rewrite', image, '-o', join(work, 'out.cryo'), '--pid-map', `${child.pid}:4000001`]);
  rmSync(join(work, 'out.cryo'));
  const relocate = measure('cryo-img rewrite --relocate', process.execPath, [cli, 'rewrite', image, '-o', join(work, 'out.cryo'), '--relocate', '/usr=/opt/usr']);
  printTable(`rewrite of a ${(bytes / 2 ** 20).toFixed(0)} MiB image (${mib} MiB heap)`, ['what', 'seconds', 'MiB/s'], rows);
  console.log(`rewrite / cp: ${(rewrite / copy).toFixed(2)}x (pid map), ${(relocate / copy).toFixed(2)}x (relocate)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
