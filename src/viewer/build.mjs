// Builds the viewer into dist/viewer/: index.html, viewer.css, viewer.js (the page) and worker.js
// (the Web Worker), bundled with esbuild. Classic scripts, no bare imports left: module workers cannot
// use import maps, and the bundle also runs from file:// (the page then starts its worker from a
// blob: URL holding the same code). The Wasm core (dist/cryo.wasm) is bundled into the worker.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const out = join(root, 'dist', 'viewer');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const common = {
  bundle: true,
  format: 'iife',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: [join(here, 'worker.ts')],
  outfile: join(out, 'worker.js'),
  loader: { '.wasm': 'binary' },
  alias: { 'cryo-wasm-bytes': join(root, 'dist', 'cryo.wasm') },
});
const workerSource = readFileSync(join(out, 'worker.js'), 'utf8').replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
await build({
  ...common,
  entryPoints: [join(here, 'main.ts')],
  outfile: join(out, 'viewer.js'),
  define: { __WORKER_SOURCE__: JSON.stringify(workerSource) },
});
copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
copyFileSync(join(here, 'style.css'), join(out, 'viewer.css'));
