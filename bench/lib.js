// Shared bench helpers: start programs, time commands, poll a process's tracer state.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '..');
export const cli = join(root, 'dist', 'cli', 'main.js');
export const helper = join(root, 'native-helper', 'cryo-helper');
export const programs = join(root, 'test', 'programs', 'bin');

export function startProgram(name, args) {
  const child = spawn(join(programs, name), args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolveReady, reject) => {
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
      const line = text.split('\n').find((l) => l.startsWith('READY'));
      if (line) resolveReady({ child, ready: Object.fromEntries(line.split(' ').slice(1).map((kv) => kv.split('='))) });
    });
    child.once('exit', (code) => reject(new Error(`${name} exited ${code}`)));
  });
}

export function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    child.once('exit', r);
    child.kill('SIGKILL');
  });
}

/** Runs a command to completion; returns wall seconds. Throws on failure. */
export function timeCommand(cmd, args, options = {}) {
  const start = process.hrtime.bigint();
  const result = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...options });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${result.stderr}`);
  return seconds;
}

/** Runs a command asynchronously while sampling /proc/PID/status: how long was PID traced (frozen)? */
export async function timeWithFreezeWatch(pid, cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const start = process.hrtime.bigint();
  let frozenSince = null;
  let frozenNs = 0n;
  let done = false;
  child.once('exit', () => (done = true));
  while (!done) {
    let traced = false;
    try {
      traced = !/TracerPid:\s+0\n/.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      traced = false;
    }
    const now = process.hrtime.bigint();
    if (traced && frozenSince === null) frozenSince = now;
    if (!traced && frozenSince !== null) {
      frozenNs += now - frozenSince;
      frozenSince = null;
    }
    await new Promise((r) => setImmediate(r));
  }
  const end = process.hrtime.bigint();
  if (frozenSince !== null) frozenNs += end - frozenSince;
  if (child.exitCode !== 0) throw new Error(`${cmd} failed with ${child.exitCode}`);
  return { seconds: Number(end - start) / 1e9, frozenSeconds: Number(frozenNs) / 1e9 };
}

export function printTable(title, header, rows) {
  console.log(`\n${title}`);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padStart(widths[i])).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

export const fmt = (x, digits = 3) => x.toFixed(digits);
