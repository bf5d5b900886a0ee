// Rewrite proven by restoring the result: a counter whose files moved keeps appending to them at the
// right offset, and one image runs as several copies side by side under new PIDs.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, helperPath, startProgram, tempDir } from './helpers/programs.js';

interface Finished {
  status: number | null;
  stderr: string;
}

function restoreInBackground(args: string[]): { done: Promise<Finished>; stderr: () => string } {
  const child = spawn(process.execPath, [cliPath, 'restore', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<Finished>((resolve) => child.once('exit', (status) => resolve({ status, stderr })));
  return { done, stderr: () => stderr };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function counts(path: string): number[] {
  return readFileSync(path, 'utf8').trimEnd().split('\n').map((line) => Number(/^count (\d+)$/.exec(line)?.[1] ?? NaN));
}

describe('rewrite, then restore', () => {
  it('a relocated counter continues, appending to the moved file at the right offset', async () => {
    const dir = tempDir();
    try {
      mkdirSync(join(dir.path, 'A'));
      const counter = await startProgram('counter', [join(dir.path, 'A', 'out.log'), '10']);
      await sleep(200);
      const image = join(dir.path, 'counter.cryo');
      try {
        execFileSync(helperPath, ['dump', '--pid', String(counter.pid), '-o', image, '--kill']);
      } finally {
        await counter.stop();
      }
      const reached = counts(join(dir.path, 'A', 'out.log')).length;
      renameSync(join(dir.path, 'A'), join(dir.path, 'B'));
      const moved = join(dir.path, 'moved.cryo');
      execFileSync(process.execPath, [cliPath, 'rewrite', image, '-o', moved, '--relocate', `${dir.path}/A=${dir.path}/B`]);

      // fds 1 and 2 are pipes to this test, outside the image: replaced by /dev/null.
      const restored = restoreInBackground([moved, '--skip-fd', '1', '--skip-fd', '2']);
      const log = join(dir.path, 'B', 'out.log');
      try {
        await waitFor(() => counts(log).length >= reached + 10, 'the restored counter to write 10 more lines');
      } finally {
        try {
          process.kill(counter.pid, 'SIGKILL');
        } catch {
          /* already gone: the restore failed, the assertions below say how */
        }
      }
      const result = await restored.done;
      expect(result.stderr).not.toMatch(/error|cannot/i);
      const lines = counts(log);
      expect(lines.slice(0, reached + 10)).toEqual(Array.from({ length: reached + 10 }, (_, i) => i + 1));
      expect(existsSync(join(dir.path, 'A'))).toBe(false); // nothing was written at the old place
    } finally {
      dir.remove();
    }
  });

  it('runs one image as two copies at once with --pid-map auto, beside the running original', async () => {
    const dir = tempDir();
    const program = await startProgram('threads', [join(dir.path, 'out.txt'), '3', '400']);
    try {
      const image = join(dir.path, 'threads.cryo');
      execFileSync(helperPath, ['dump', '--pid', String(program.pid), '-o', image]);
      const first = restoreInBackground([image, '--pid-map', 'auto', '--skip-fd', '1', '--skip-fd', '2']);
      const second = restoreInBackground([image, '--pid-map', 'auto', '--skip-fd', '1', '--skip-fd', '2']);
      // Both copies and the original are alive at the same time.
      const newPid = (stderr: string) => Number(new RegExp(`${program.pid}->(\\d+)`).exec(stderr)?.[1] ?? NaN);
      await waitFor(() => !Number.isNaN(newPid(first.stderr())) && !Number.isNaN(newPid(second.stderr())), 'both restores to announce their PIDs');
      const pids = [program.pid, newPid(first.stderr()), newPid(second.stderr())];
      expect(new Set(pids).size).toBe(3);
      const runningWithThreads = (pid: number) => {
        try {
          return /Threads:\s+4\n/.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
        } catch {
          return false;
        }
      };
      await waitFor(() => pids.every(runningWithThreads), 'the original and both copies to run with their 4 threads');
      // Each copy's main thread joins its three workers and exits 0 (the restore passes the status on).
      const [a, b] = await Promise.all([first.done, second.done]);
      expect(a.stderr).not.toMatch(/warning|error/i);
      expect(b.stderr).not.toMatch(/warning|error/i);
      expect(a.status).toBe(0);
      expect(b.status).toBe(0);
      const originalStatus = program.child.exitCode ?? (await new Promise((r) => program.child.once('exit', r)));
      expect(originalStatus).toBe(0);
      expect(readFileSync(join(dir.path, 'out.txt'), 'utf8')).toBe('joined 3 total 1200\n');
    } finally {
      await program.stop();
      dir.remove();
    }
  });
});
