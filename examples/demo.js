#!/usr/bin/env node
// The built-in demo: start a small bundled program (a counter that writes to a file it keeps open),
// dump it into a .cryo image with `cryo-img dump`, and look inside with `cryo-img inspect`.
// The program keeps running through the dump, and is stopped at the end.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'cryo-demo-'));
const image = join(work, 'counter.cryo');

const counter = spawn(join(root, 'test', 'programs', 'bin', 'counter'), [join(work, 'out.log'), '50'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
try {
  const ready = await new Promise((resolveReady, reject) => {
    counter.stdout.once('data', (chunk) => resolveReady(String(chunk).trim()));
    counter.once('exit', (code) => reject(new Error(`counter exited early (${code})`)));
  });
  console.log(`$ ${join('test', 'programs', 'bin', 'counter')} out.log 50    # ${ready}`);
  await new Promise((r) => setTimeout(r, 300));
  const run = (args) => {
    console.log(`$ cryo-img ${args.join(' ')}`);
    process.stdout.write(execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8' }));
  };
  run(['dump', String(counter.pid), '-o', image]);
  run(['inspect', image]);
  run(['verify', image]);
} finally {
  counter.kill('SIGKILL');
  await new Promise((r) => (counter.exitCode !== null ? r() : counter.once('exit', r)));
  rmSync(work, { recursive: true, force: true });
}
