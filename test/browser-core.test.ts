// The library and the Wasm core, unchanged, in a real browser: headless Chromium loads dist/browser.js,
// opens a real dumped image from a Blob, and must see what Node sees.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { openImage } from '../src/node.js';
import { launchBrowser } from './helpers/browser.js';
import { helperPath, projectRoot, startProgram, tempDir } from './helpers/programs.js';
import { startStaticServer, type StaticServer } from './helpers/static-server.js';

const PAGE = `<!doctype html>
<script type="importmap">{ "imports": { "@msgpack/msgpack": "/node_modules/@msgpack/msgpack/dist.esm/index.mjs" } }</script>
<script type="module">
  import { openImage } from '/dist/browser.js';
  window.inspectImage = async (url, marker) => {
    const blob = await (await fetch(url)).blob();
    const image = await openImage(blob);
    const p = image.processes[0];
    const bytes = await image.readMemory(p.pid, BigInt(marker), 32);
    return {
      pids: image.processes.map((x) => x.pid),
      comm: p.comm,
      cmdline: p.cmdline,
      vmas: p.vmas.map((v) => [v.start.toString(16), v.end.toString(16), v.prot, v.pagesStored]),
      fds: p.fds.map((f) => [f.fd, f.type, f.path, f.pos]),
      rip: p.threads[0].registers.rip.toString(16),
      marker: new TextDecoder().decode(bytes).split('\\0')[0],
    };
  };
  window.loaded = true;
</script>`;

describe('the core in a browser', () => {
  let browser: Browser;
  let server: StaticServer;
  let dir: ReturnType<typeof tempDir>;
  let imagePath: string;
  let marker: string;

  beforeAll(async () => {
    dir = tempDir();
    const counter = await startProgram('counter', [join(dir.path, 'out.log'), '20']);
    try {
      imagePath = join(dir.path, 'counter.cryo');
      execFileSync(helperPath, ['dump', '--pid', String(counter.pid), '-o', imagePath]);
      marker = counter.ready.marker!;
    } finally {
      await counter.stop();
    }
    server = await startStaticServer(projectRoot, { '/test.html': PAGE, '/image.cryo': readFileSync(imagePath) });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    dir?.remove();
  });

  it('opens a dumped image from a Blob and sees what Node sees', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/test.html`);
    await page.waitForFunction(() => (window as unknown as { loaded?: boolean }).loaded === true);
    const inBrowser = await page.evaluate(
      ([m]) => (window as unknown as { inspectImage(u: string, m: string): Promise<unknown> }).inspectImage('/image.cryo', m!),
      [marker],
    );
    expect(errors).toEqual([]);

    const image = await openImage(imagePath);
    const p = image.processes[0]!;
    expect(inBrowser).toEqual({
      pids: image.processes.map((x) => x.pid),
      comm: p.comm,
      cmdline: p.cmdline,
      vmas: p.vmas.map((v) => [v.start.toString(16), v.end.toString(16), v.prot, v.pagesStored]),
      fds: p.fds.map((f) => [f.fd, f.type, f.path, f.pos]),
      rip: p.threads[0]!.registers!.rip.toString(16),
      marker: `CRYO-COUNTER-MARKER-${p.pid}`,
    });
    await image.close();
  });
});
