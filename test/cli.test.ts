// The cryo-img command line on a real dumped process: dump, inspect (text and JSON, with filters),
// read (hexdump and raw), verify (intact and corrupted).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, startProgram, tempDir, type RunningProgram } from './helpers/programs.js';

function cli(...args: string[]) {
  const result = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'buffer' });
  return { status: result.status, stdout: result.stdout, text: result.stdout.toString(), stderr: result.stderr.toString() };
}

describe('cryo-img CLI', () => {
  let dir: ReturnType<typeof tempDir>;
  let counter: RunningProgram;
  let image: string;
  let outLog: string;

  beforeAll(async () => {
    dir = tempDir();
    outLog = join(dir.path, 'out.log');
    counter = await startProgram('counter', [outLog, '10']);
    image = join(dir.path, 'counter.cryo');
    const dump = cli('dump', String(counter.pid), '-o', image);
    expect(dump.stderr).toContain('wrote');
    expect(dump.status).toBe(0);
  });

  afterAll(async () => {
    await counter?.stop();
    dir?.remove();
  });

  it('writes the image with mode 0600', () => {
    expect(statSync(image).mode & 0o777).toBe(0o600);
  });

  it('inspect shows the process, its memory map and its descriptors', () => {
    const result = cli('inspect', image);
    expect(result.status).toBe(0);
    expect(result.text).toContain(`${counter.pid} counter`);
    expect(result.text).toContain('[heap]');
    expect(result.text).toContain(outLog);
    expect(result.text).toContain('threads (1)');
    expect(result.text).not.toContain('environment'); // only with --env
  });

  it('inspect --json follows the documented schema and matches /proc', () => {
    const result = cli('inspect', '--json', image);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.text);
    expect(report.schema).toBe('cryo-img.inspect/1');
    expect(report.image.pids).toEqual([counter.pid]);
    const p = report.processes[0];
    expect(p.pid).toBe(counter.pid);
    expect(p.comm).toBe('counter');
    expect(p.cmdline).toEqual([join(import.meta.dirname, 'programs', 'bin', 'counter'), outLog, '10']);
    expect(p.cwd).toBe(readlinkSync(`/proc/${counter.pid}/cwd`));
    const fd3 = p.fds.find((f: { fd: number }) => f.fd === 3);
    expect(fd3.path).toBe(outLog);
    expect(fd3.flagNames).toMatch(/^O_WRONLY/);
    expect(p.threads[0].registers.rip).toMatch(/^0x[0-9a-f]+$/);
    const heap = p.maps.find((v: { name: string }) => v.name === '[heap]');
    expect(heap.pagesStored).toBeGreaterThan(0);
  });

  it('inspect filters to the parts asked for', () => {
    const report = JSON.parse(cli('inspect', '--json', '--fds', '--env', image).text);
    const p = report.processes[0];
    expect(p.fds).toBeDefined();
    expect(p.environ).toEqual(expect.arrayContaining([expect.stringMatching(/^PATH=/)]));
    expect(p.maps).toBeUndefined();
    expect(p.threads).toBeUndefined();
    const missing = cli('inspect', '--pid', '999999', image);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no process 999999');
  });

  it('read shows the heap marker at its address, as hexdump and raw', () => {
    const hexdump = cli('read', image, '--pid', String(counter.pid), '--addr', counter.ready.marker!, '--len', '32');
    expect(hexdump.status).toBe(0);
    expect(hexdump.text).toContain('|CRYO-COUNTER-MAR|');
    const raw = cli('read', image, '--pid', String(counter.pid), '--addr', counter.ready.marker!, '--len', '32', '--raw');
    expect(raw.stdout.subarray(0, 20 + String(counter.pid).length).toString()).toBe(`CRYO-COUNTER-MARKER-${counter.pid}`);
  });

  it('verify passes an intact image and names the offset of a flipped byte', () => {
    const ok = cli('verify', image);
    expect(ok.status).toBe(0);
    expect(ok.text).toContain('ok');
    const bytes = readFileSync(image);
    const flipAt = Math.floor(bytes.length / 2);
    bytes[flipAt]! ^= 0x40;
    const bad = join(dir.path, 'flipped.cryo');
    writeFileSync(bad, bytes);
    const result = cli('verify', bad);
    expect(result.status).toBe(1);
    expect(result.text + result.stderr).toMatch(/offset \d+/);
    expect(result.text + result.stderr).toMatch(/CRC32C/);
  });

  it('refuses what is not an image with a clear error', () => {
    const junk = join(dir.path, 'junk.cryo');
    writeFileSync(junk, 'this is not an image at all');
    const result = cli('inspect', junk);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/junk\.cryo: .*offset/);
  });
});
