// Packed and incremental images, and diffImages, in a real browser: headless Chromium loads
// dist/browser.js, decodes codec 1/2 sections in the Wasm engine, resolves an incremental image's
// parent through resolveParent (another Blob), and must see what Node sees.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { openCryoImage } from '../src/node.js';
import { diffImages } from '../src/diff/index.js';
import { launchBrowser } from './helpers/browser.js';
import { cliPath, helperPath, projectRoot, startProgram, tempDir } from './helpers/programs.js';
import { startStaticServer, type StaticServer } from './helpers/static-server.js';

const PAGE = `<!doctype html>
<script type="importmap">{ "imports": { "@msgpack/msgpack": "/node_modules/@msgpack/msgpack/dist.esm/index.mjs" } }</script>
<script type="module">
  import { openImage, diffImages } from '/dist/browser.js';
  window.check = async (marker, counter) => {
    const blob = async (u) => (await fetch(u)).blob();
    const base = await openImage(await blob('/base.packed.cryo'));
    const next = await openImage(await blob('/next.inc.cryo'), { resolveParent: async () => openImage(await blob('/base.packed.cryo')) });
    let missing = null;
    try { await openImage(await blob('/next.inc.cryo')); } catch (e) { missing = e.code + ': ' + e.message; }
    const p = next.processes[0];
    const text = (b) => new TextDecoder().decode(b).split('\\0')[0];
    const u64 = (b) => new DataView(b.buffer).getBigUint64(0, true).toString();
    const d = await diffImages(base, next);
    return {
      marker: text(await base.readMemory(p.pid, BigInt(marker), 32)),
      markerNext: text(await next.readMemory(p.pid, BigInt(marker), 32)),
      counterBase: u64(await base.readMemory(p.pid, BigInt(counter), 8)),
      counterNext: u64(await next.readMemory(p.pid, BigInt(counter), 8)),
      changed: d.totals.pagesChanged,
      bytes: d.totals.bytesChanged,
      missing,
    };
  };
  window.loaded = true;
</script>`;

describe('packed and incremental images in a browser', () => {
  let browser: Browser;
  let server: StaticServer;
  const dir = tempDir();
  let marker = '';
  let counterAddress = '';

  beforeAll(async () => {
    const counter = await startProgram('counter', [join(dir.path, 'out.log'), '10']);
    try {
      execFileSync(helperPath, ['dump', '--pid', String(counter.pid), '-o', join(dir.path, 'base.cryo')]);
      await new Promise((r) => setTimeout(r, 150));
      execFileSync(helperPath, ['dump', '--pid', String(counter.pid), '-o', join(dir.path, 'next.cryo')]);
      marker = counter.ready.marker!;
      counterAddress = counter.ready.counter!;
    } finally {
      await counter.stop();
    }
    execFileSync(process.execPath, [cliPath, 'pack', join(dir.path, 'base.cryo'), '-o', join(dir.path, 'base.packed.cryo'), '-q']);
    execFileSync(process.execPath, [cliPath, 'pack', join(dir.path, 'next.cryo'), '--parent', join(dir.path, 'base.packed.cryo'), '-o', join(dir.path, 'next.inc.cryo'), '-q']);
    server = await startStaticServer(projectRoot, {
      '/test.html': PAGE,
      '/base.packed.cryo': readFileSync(join(dir.path, 'base.packed.cryo')),
      '/next.inc.cryo': readFileSync(join(dir.path, 'next.inc.cryo')),
    });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    dir.remove();
  });

  it('reads them (codecs in the Wasm engine, the parent from a resolver) and diffs them like Node', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/test.html`);
    await page.waitForFunction(() => (window as unknown as { loaded?: boolean }).loaded === true);
    const got = await page.evaluate(([m, c]) => (window as unknown as { check(m: string, c: string): Promise<Record<string, unknown>> }).check(m!, c!), [marker, counterAddress]);
    expect(errors).toEqual([]);
    const base = await openCryoImage(join(dir.path, 'base.packed.cryo'));
    const next = await openCryoImage(join(dir.path, 'next.inc.cryo'));
    const pid = next.processes[0]!.pid;
    const u64 = (b: Uint8Array) => new DataView(b.buffer).getBigUint64(0, true).toString();
    const d = await diffImages(base, next);
    expect(got).toEqual({
      marker: `CRYO-COUNTER-MARKER-${pid}`,
      markerNext: `CRYO-COUNTER-MARKER-${pid}`,
      counterBase: u64(await base.readMemory(pid, BigInt(counterAddress), 8)),
      counterNext: u64(await next.readMemory(pid, BigInt(counterAddress), 8)),
      changed: d.totals.pagesChanged,
      bytes: d.totals.bytesChanged,
      missing: expect.stringMatching(/^PARENT_MISSING: .*no parent resolver/),
    });
    expect(got.counterNext).not.toBe(got.counterBase);
    await base.close();
    await next.close();
  });
});
