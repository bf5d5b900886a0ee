// Inputs are never modified: no command may write over its input or an image in its parent chain,
// and a dump into a place that cannot be written fails at once, leaving the target running, untraced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, helperPath, startProgram, tempDir, type RunningProgram } from './helpers/programs.js';

function cli(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', cwd, timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
}
const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('inputs are never overwritten', () => {
  let dir: ReturnType<typeof tempDir>;
  let counter: RunningProgram;
  let base: string;
  let inc: string;

  beforeAll(async () => {
    dir = tempDir();
    counter = await startProgram('counter', [join(dir.path, 'out.log'), '10']);
    base = join(dir.path, 'base.cryo');
    execFileSync(helperPath, ['dump', '--pid', String(counter.pid), '-o', base]);
    await new Promise((r) => setTimeout(r, 100));
    const second = join(dir.path, 'second.cryo');
    execFileSync(helperPath, ['dump', '--pid', String(counter.pid), '-o', second]);
    inc = join(dir.path, 'inc.cryo');
    execFileSync(process.execPath, [cliPath, 'pack', second, '--parent', base, '-o', inc, '-q']);
  });

  afterAll(async () => {
    await counter?.stop();
    dir?.remove();
  });

  it('refuses an output that is the input, however it is spelled', () => {
    const before = digest(base);
    const r = cli(dir.path, 'rewrite', base, '-o', './base.cryo', '--pid-map', `${counter.pid}:4100003`);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/is the input/);
    expect(digest(base)).toBe(before);
  });

  it('refuses to write over a parent of the input (squash, unpack, dump --parent)', () => {
    const before = digest(base);
    for (const args of [['squash', inc, '-o', base], ['unpack', inc, '-o', base], ['dump', String(counter.pid), '--parent', base, '-o', base]]) {
      const r = cli(dir.path, ...args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/is the input|parent image/);
    }
    expect(digest(base)).toBe(before);
    expect(cli(dir.path, 'verify', inc).status).toBe(0);
  });

  it('a dump --parent that cannot create its output fails at once and leaves the target running, untraced', () => {
    const r = cli(dir.path, 'dump', String(counter.pid), '--parent', base, '-o', join(dir.path, 'no-such-dir', 'x.cryo'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ENOENT/);
    const status = readFileSync(`/proc/${counter.pid}/status`, 'utf8');
    expect(status).toMatch(/TracerPid:\s+0\n/);
    expect(status).not.toMatch(/State:\s+[tT]/);
  });
});
