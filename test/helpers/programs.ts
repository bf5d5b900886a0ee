// Starting and stopping the real test programs of test/programs/. Every program prints one
// "READY key=value ..." line once it is set up; startProgram waits for it and returns the values.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const projectRoot = resolve(import.meta.dirname, '..', '..');
export const programsDir = join(projectRoot, 'test', 'programs', 'bin');
export const helperPath = join(projectRoot, 'native-helper', 'cryo-helper');
export const cliPath = join(projectRoot, 'dist', 'cli', 'main.js');

export interface RunningProgram {
  child: ChildProcess;
  pid: number;
  ready: Record<string, string>;
  stop(): Promise<void>;
}

export async function startProgram(name: string, args: string[] = [], timeoutMs = 10_000): Promise<RunningProgram> {
  const child = spawn(join(programsDir, name), args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await new Promise<Record<string, string>>((resolvePromise, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${name} printed no READY line in ${timeoutMs} ms`)), timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const line = text.split('\n').find((l) => l.startsWith('READY'));
      if (line) {
        clearTimeout(timer);
        resolvePromise(Object.fromEntries(line.split(' ').slice(1).map((kv) => kv.split('=') as [string, string])));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready`));
    });
  });
  return {
    child,
    pid: child.pid!,
    ready,
    stop: () => stopChild(child),
  };
}

/** Kill and reap a child; never leaves a zombie behind (PID 1 here does not reap orphans). */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    child.once('exit', () => resolvePromise());
    child.kill('SIGKILL');
  });
}

export function tempDir(prefix = 'cryo-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
