// The in-browser viewer, end to end: headless Chromium opens images dumped from real programs through
// the page's own file picker (and through `cryo-img view`), and must show the right tree, descriptors,
// search hits, diffs and errors. Screenshots of every view go to test/artifacts/viewer/.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { openImage } from '../src/node.js';
import { parseRange, startViewServer } from '../src/cli/cmd-view.js';
import { CryoWasm } from '../src/core/wasm.js';
import { Engine } from '../src/viewer/engine.js';
import { CELL_DATA, CELL_DEDUP, CELL_NONE, CELL_ZERO, type ImageSummary } from '../src/viewer/protocol.js';
import { ALIAS, HEAP, HEAP_PAGES, LONE, PAGE_MAPS, ROOT_PID, ZERO_PAGES, buildSyntheticImage, expectedMemory } from './helpers/synthetic-image.js';
import { networkInterfaces } from 'node:os';
import { launchBrowser } from './helpers/browser.js';
import { cliPath, helperPath, programsDir, projectRoot, startProgram, stopChild, tempDir, type RunningProgram } from './helpers/programs.js';
import { startStaticServer, type StaticServer } from './helpers/static-server.js';

const artifacts = join(projectRoot, 'test', 'artifacts', 'viewer');
const viewerRoot = join(projectRoot, 'dist', 'viewer');

interface Probe {
  firstPaint: { bytesRead: number; reads: number; ms: number } | null;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: false });
}

async function openViaPicker(page: Page, file: string, button = 'Open…'): Promise<void> {
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: button, exact: true }).first().click();
  await (await chooser).setFiles(file);
}

async function view(page: Page, name: string): Promise<void> {
  await page.click(`.tab[data-view="${name}"]`);
  await page.waitForSelector(`#view.view-${name}`);
}

describe('the viewer in a browser', () => {
  let browser: Browser;
  let server: StaticServer;
  let dir: ReturnType<typeof tempDir>;
  let imageA: string;
  let imageB: string;
  let broken: string;
  let pid: number;
  let marker: bigint;
  let counterAddr: bigint;
  let logPath: string;
  // bigheap takes seconds to fill 1 GiB: start it first, let it work while the other tests run.
  let bigheap: Promise<RunningProgram> | undefined;

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    dir = tempDir();
    bigheap = startProgram('bigheap', ['1024'], 45_000);
    bigheap.catch(() => undefined);
    logPath = join(dir.path, 'out.log');
    const counter = await startProgram('counter', [logPath, '5']);
    try {
      pid = counter.pid;
      marker = BigInt(counter.ready.marker!);
      counterAddr = BigInt(counter.ready.counter!);
      imageA = join(dir.path, 'counter-a.cryo');
      imageB = join(dir.path, 'counter-b.cryo');
      execFileSync(helperPath, ['dump', '--pid', String(pid), '-o', imageA]);
      await new Promise((r) => setTimeout(r, 150));
      execFileSync(helperPath, ['dump', '--pid', String(pid), '-o', imageB]);
    } finally {
      await counter.stop();
    }
    // A damaged copy: one byte of the first PROCESS payload flipped (a payload CRC mismatch).
    broken = join(dir.path, 'damaged.cryo');
    copyFileSync(imageA, broken);
    const image = await openImage(imageA);
    const section = image.sections.find((s) => s.typeName === 'PROCESS')!;
    await image.close();
    const bytes = readFileSync(broken);
    const fd = openSync(broken, 'r+');
    writeSync(fd, Buffer.from([bytes[section.payloadOffset + 10]! ^ 0xff]), 0, 1, section.payloadOffset + 10);
    closeSync(fd);
    server = await startStaticServer(viewerRoot);
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await bigheap?.then((p) => p.stop(), () => undefined);
    await browser?.close();
    await server?.close();
    dir?.remove();
  });

  async function newPage(theme: 'light' | 'dark' = 'light'): Promise<{ page: Page; errors: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: theme });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/index.html`);
    await page.waitForSelector('body[data-started="1"]');
    return { page, errors };
  }

  it('opens an image from the file picker and shows the tree, threads, memory map and descriptors', async () => {
    const { page, errors } = await newPage();
    await shot(page, '0-welcome');
    await openViaPicker(page, imageA);
    await page.waitForSelector('body[data-ready="1"]');
    await shot(page, '1-processes');

    const tree = await page.locator('#tree .tree-item').allInnerTexts();
    expect(tree).toHaveLength(1);
    expect(tree[0]).toContain(String(pid));
    expect(tree[0]).toContain('counter');
    const row = (await page.locator('#process-table tbody tr').first().locator('td').allInnerTexts()).map((t) => t.trim());
    expect(row[0]).toBe(String(pid));
    expect(row[2]).toContain('counter');
    expect(row[3]).toMatch(/^[SR] \((sleeping|running)\)$/);
    expect(row[8]).toContain(`counter ${logPath} 5`);

    // Keyboard: number keys switch views.
    await page.keyboard.press('3');
    await page.waitForSelector('#view.view-threads');
    await page.keyboard.press('1');
    await page.waitForSelector('#view.view-processes');
    await page.click(`#tree .tree-item[data-pid="${pid}"]`);
    await page.waitForSelector('#view.view-overview');
    expect(await page.locator('#view').innerText()).toContain(logPath);
    await shot(page, '2-overview');

    await view(page, 'threads');
    const regs = await page.locator('.thread .reg').allInnerTexts();
    expect(regs).toHaveLength(27);
    expect(regs.find((r) => r.startsWith('rip'))).toMatch(/rip\s+0x[0-9a-f]{16}/);
    await shot(page, '3-threads');

    await view(page, 'memory');
    await page.waitForSelector(`body[data-picture="${pid}"]`);
    const heapRow = page.locator('#vma-table tbody tr', { hasText: '[heap]' });
    expect(await heapRow.count()).toBe(1);
    expect(await page.locator('#memory-picture .block').count()).toBe(await page.locator('#vma-table tbody tr').count());
    await shot(page, '4-memory');

    await view(page, 'files');
    const fds = await page.locator('#fd-table tbody tr').evaluateAll((rows) =>
      rows.map((r) => [...r.querySelectorAll('td')].map((td) => (td as HTMLElement).innerText.trim())));
    const node = await openImage(imageA);
    const p = node.process(pid)!;
    await node.close();
    expect(fds.map((r) => Number(r[0]))).toEqual(p.fds.map((f) => f.fd));
    const log = fds.find((r) => r[2] === logPath)!;
    const logFd = p.fds.find((f) => f.path === logPath)!;
    expect(log).toBeDefined();
    expect(log[0]).toBe(String(logFd.fd));
    expect(log[1]).toBe('file');
    expect(log[3]).toContain('O_WRONLY');
    expect(log[5]).toBe(logFd.pos!.toLocaleString('en-US'));
    expect(logFd.pos).toBeGreaterThan(0);
    await shot(page, '5-files');

    await view(page, 'env');
    await shot(page, '6-env');
    expect(errors).toEqual([]);
  });

  it('searches the memory for the marker string and lands on its address in the hex view', async () => {
    const { page, errors } = await newPage('dark');
    await openViaPicker(page, imageA);
    await page.waitForSelector('body[data-ready="1"]');
    await page.keyboard.press('/');
    await page.waitForSelector('#search-input:focus');
    await page.keyboard.type(`CRYO-COUNTER-MARKER-${pid}`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-search="done"]');
    const hits = await page.locator('#search-results a.hit').allInnerTexts();
    expect(hits).toContain('0x' + marker.toString(16));
    // The page went to the first hit; the heap copy is the one the program printed.
    await page.click(`#search-results a.hit[data-addr="0x${marker.toString(16)}"]`);
    await page.waitForFunction((a) => location.hash.includes(`addr=${a}`), '0x' + marker.toString(16));
    await page.waitForFunction((a) => document.getElementById('hexdump')?.dataset.addr === a, '0x' + (marker & ~15n).toString(16));
    const selected = await page.locator('.hexascii .sel').allInnerTexts();
    expect(selected.join('')).toBe(`CRYO-COUNTER-MARKER-${pid}`);
    expect(await page.locator('.where').innerText()).toContain('[heap]');
    // The inspector reads the bytes at the cursor ('C' = 67); clicking a byte moves the cursor.
    expect(await page.locator('#inspector').innerText()).toContain('u8 67');
    await page.locator('.hexascii .sel').nth(1).click();
    expect(await page.locator('#inspector').innerText()).toMatch(new RegExp(`0x${(marker + 1n).toString(16)}\\s+u8 82`));
    await shot(page, '7-hex-search');

    // Hex-byte search finds the same place ("CRYO-COU").
    await page.selectOption('#search-mode', 'hex');
    await page.fill('#search-input', '43 52 59 4f 2d 43 4f 55');
    await page.evaluate(() => { delete document.body.dataset.search; });
    await page.click('#search-button');
    await page.waitForSelector('body[data-search="done"]');
    expect(await page.locator('#search-results a.hit').allInnerTexts()).toContain('0x' + marker.toString(16));

    // Deep link: a fresh page opened on the same fragment shows the same process, view and address.
    const hash = await page.evaluate(() => location.hash);
    expect(hash).toContain(`pid=${pid}`);
    expect(hash).toContain('view=hex');
    const again = await newPage();
    await again.page.goto(`${server.url}/index.html${hash}`);
    await openViaPicker(again.page, imageA);
    await again.page.waitForSelector('#hexdump[data-addr]');
    const linked = BigInt(new URLSearchParams(hash.slice(1)).get('addr')!);
    expect(await again.page.locator('#hexdump').getAttribute('data-addr')).toBe('0x' + (linked & ~15n).toString(16));
    expect(await again.page.locator('#addr-input').inputValue()).toBe('0x' + linked.toString(16));
    expect(await again.page.locator('.tree-item.selected').getAttribute('data-pid')).toBe(String(pid));
    expect(errors).toEqual([]);
    expect(again.errors).toEqual([]);
  });

  it('compares two images: changed pages marked on the memory picture, fd offsets in the table', async () => {
    const { page, errors } = await newPage();
    await openViaPicker(page, imageA);
    await page.waitForSelector('body[data-ready="1"]');
    await openViaPicker(page, imageB, 'Compare…');
    await page.waitForSelector('body[data-diff="done"]', { timeout: 30_000 });
    const row = (await page.locator('#diff-table tbody tr').first().locator('td').allInnerTexts()).map((t) => t.trim());
    expect(row[0]).toBe(String(pid));
    expect(row[2]).toBe('changed');
    expect(row[4]).toMatch(/fd \d+ changed \(pos [\d]+ → [\d]+/);
    const changed = Number(row[7]!.split(' of ')[0]!.replace(/,/g, ''));
    expect(row[5]).toMatch(/^(—|\d+ (changed|added|removed))/);
    expect(changed).toBeGreaterThan(0);
    // The page holding the program's counter variable changed.
    const counterPage = '0x' + (counterAddr & ~4095n).toString(16);
    expect(await page.locator('#changed-pages a').allInnerTexts()).toContain(counterPage);
    await shot(page, '8-diff');

    await page.click(`#tree .tree-item[data-pid="${pid}"]`);
    await view(page, 'memory');
    await page.waitForSelector(`body[data-picture="${pid}"]`);
    // Red cells on the picture: read the canvas of the VMA holding the counter variable.
    const reds = await page.evaluate((addr) => {
      const rows = [...document.querySelectorAll('#vma-table tbody tr')] as HTMLElement[];
      const i = rows.findIndex((r) => {
        const [s, e] = [...r.querySelectorAll('td')].slice(0, 2).map((td) => BigInt((td as HTMLElement).innerText.trim()));
        return BigInt(addr) >= s! && BigInt(addr) < e!;
      });
      const canvas = document.querySelector(`#memory-picture .block[data-vma="${i}"] canvas`) as HTMLCanvasElement;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      const changed = getComputedStyle(document.body).getPropertyValue('--changed').trim();
      const rgb = [1, 3, 5].map((k) => parseInt(changed.slice(k, k + 2), 16));
      let n = 0;
      for (let k = 0; k < data.length; k += 4) if (data[k] === rgb[0] && data[k + 1] === rgb[1] && data[k + 2] === rgb[2]) n++;
      return n;
    }, counterAddr.toString());
    expect(reds).toBeGreaterThan(0);
    expect(await page.locator('#vma-table .changed-count').count()).toBeGreaterThan(0);
    await shot(page, '9-diff-memory');

    await view(page, 'files');
    expect(await page.locator('#fd-table .badge-changed').count()).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  });

  it('shows a clear message for a damaged image', async () => {
    const { page, errors } = await newPage();
    await openViaPicker(page, broken);
    await page.waitForSelector('body[data-ready="error"]');
    let expected = '';
    try {
      await openImage(broken);
    } catch (error) {
      expected = (error as Error).message;
    }
    expect(expected).toMatch(/offset \d+/);
    expect(await page.locator('#error .error-message').innerText()).toBe(expected);
    expect(await page.locator('#error').innerText()).toContain('expected');
    await shot(page, '10-error');
    expect(errors).toEqual([]);
  });

  it('opens a CRIU container checkpoint archive (tar.gz) and finds its memory marker', async () => {
    // The real CRIU 4.2 dump of the counter fixture (docs: test/fixtures/criu), as Podman packs it.
    const fixture = join(import.meta.dirname, 'fixtures', 'criu', 'counter');
    const archive = join(dir.path, 'checkpoint.tar.gz');
    execFileSync('tar', ['-czf', archive, '--transform', 's,^\\.,checkpoint,', '-C', fixture, '.']);
    const { page, errors } = await newPage();
    await openViaPicker(page, archive);
    await page.waitForSelector('body[data-ready="1"]');
    const tree = await page.locator('#tree .tree-item').allInnerTexts();
    expect(tree).toHaveLength(1);
    expect(tree[0]).toContain('23547');
    expect(tree[0]).toContain('counter');
    await page.keyboard.press('/');
    await page.waitForSelector('#search-input:focus');
    await page.keyboard.type('CRYO-MARKER-1234');
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-search="done"]');
    expect(await page.locator('#search-results a.hit').allInnerTexts()).toContain('0x564b976f82a0');
    await shot(page, '17-criu-archive');
    expect(errors).toEqual([]);
  });

  it('opens packed and incremental images (linked to their parent when both are open)', async () => {
    const packed = join(dir.path, 'a.packed.cryo');
    const incremental = join(dir.path, 'b.incremental.cryo');
    execFileSync(process.execPath, [cliPath, 'pack', imageA, '-o', packed, '-q']);
    execFileSync(process.execPath, [cliPath, 'pack', imageB, '--parent', packed, '-o', incremental, '-q']);
    const { page, errors } = await newPage();
    // The incremental image alone: its metadata shows, and a note says its parent is missing.
    await openViaPicker(page, incremental);
    await page.waitForSelector('body[data-ready="1"]');
    expect(await page.locator('#note').innerText()).toContain('Incremental image');
    expect(await page.locator('#process-table').innerText()).toContain('counter');
    // The packed parent first, then the incremental child: linked, diffed, memory readable.
    await openViaPicker(page, packed);
    await page.waitForSelector('body[data-ready="2"]');
    expect(await page.locator('#view').innerText()).toContain('packed');
    await openViaPicker(page, incremental, 'Compare…');
    await page.waitForSelector('body[data-diff="done"]', { timeout: 30_000 });
    expect(await page.locator('#note').count()).toBe(0);
    expect(Number((await page.locator('#diff-table tbody tr td').nth(7).innerText()).split(' of ')[0])).toBeGreaterThan(0);
    // Search B (the incremental image, its unchanged pages in A) for the marker.
    await page.goto(`${server.url}/index.html#pid=${pid}&view=hex&side=1`);
    await page.waitForSelector('#search-input');
    await page.fill('#search-input', `CRYO-COUNTER-MARKER-${pid}`);
    await page.click('#search-button');
    await page.waitForSelector('body[data-search="done"]');
    expect(await page.locator('#search-results a.hit').allInnerTexts()).toContain('0x' + marker.toString(16));
    expect((await page.locator('.hexascii .sel').allInnerTexts()).join('')).toContain('CRYO-COUNTER-MARKER');
    await shot(page, '15-incremental-hex');
    // The packed parent's memory picture: what packing stored as zero or once for several pages.
    await page.keyboard.press('a');
    await view(page, 'memory');
    await page.waitForSelector(`body[data-picture="${pid}"]`);
    await shot(page, '15-packed-memory');
    expect(errors).toEqual([]);
  });

  it('works as static files with no server at all (file://): a dumped process tree, deep-linked to a child', async () => {
    // tree: a parent and two children sharing a pipe with unread bytes, under a subreaper.
    const out = join(dir.path, 'tree.out');
    writeFileSync(out, '');
    const program = await startProgram('subreaper', [join(programsDir, 'tree'), out]);
    const pids = [Number(program.ready.pid), Number(program.ready.child1), Number(program.ready.child2)];
    const treeImage = join(dir.path, 'tree.cryo');
    try {
      await new Promise((r) => setTimeout(r, 300));
      execFileSync(helperPath, ['dump', '--pid', String(pids[0]), '--tree', '-o', treeImage]);
    } finally {
      for (const p of pids) {
        try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      }
      // The subreaper reaps them and exits on its own (no zombie left behind).
      await new Promise((r) => {
        if (program.child.exitCode !== null || program.child.signalCode !== null) r(undefined);
        program.child.once('exit', r);
        setTimeout(r, 3000);
      });
      await program.stop();
    }
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`file://${viewerRoot}/index.html#pid=${pids[1]}&view=files`);
    await page.waitForSelector('body[data-started="1"]');
    await openViaPicker(page, treeImage);
    await page.waitForSelector('body[data-ready="1"]');
    const items = page.locator('#tree .tree-item');
    expect(await items.evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.pid)))).toEqual(pids);
    const texts = await items.allInnerTexts();
    expect(texts[0]).toContain('cryo-tree-par');
    expect(texts[1]).toMatch(/└\s*\d+ cryo-child-1/);
    expect(texts[2]).toMatch(/└\s*\d+ cryo-child-2/);
    // The deep link chose the first child and its descriptors: the shared pipe and its waiting bytes.
    expect(await page.locator('.tree-item.selected').getAttribute('data-pid')).toBe(String(pids[1]));
    const pending = 'CRYO-PIPE-PENDING\nCRYO-PIPE-SECOND\n'.length;
    expect(await page.locator('#fd-table').innerText()).toMatch(new RegExp(`pipe\\t.*${pending} B waiting in the pipe`));
    await page.locator('#fd-table button[data-blob]').first().click();
    await page.waitForSelector('#blob-bytes');
    expect(await page.locator('#blob-bytes').innerText()).toContain('43 52 59 4f 2d 50 49 50 45 2d 50 45 4e 44 49 4e  CRYO-PIPE-PENDIN');
    await shot(page, '16-tree-files');
    // j moves to the next process.
    await page.keyboard.press('j');
    await page.waitForSelector(`.tree-item.selected[data-pid="${pids[2]}"]`);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('cryo-img view serves the viewer and both images on 127.0.0.1 behind a token, with Range requests', async () => {
    const child = spawn(process.execPath, [cliPath, 'view', imageA, imageB, '--no-open'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 10_000);
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{40,}\/\?serve=1/.exec(out);
          if (m) { clearTimeout(timer); resolve(m[0]); }
        });
        child.once('exit', (code) => reject(new Error(`cryo-img view exited with ${code}: ${out}`)));
      });
      const base = url.replace('?serve=1', '');
      const origin = new URL(url).origin;
      // Without the token (or with another one), everything is refused.
      for (const path of ['/', '/index.html', '/image/0', '/images.json', '/viewer.js', `/${'x'.repeat(43)}/image/0`]) {
        expect((await fetch(origin + path)).status, path).toBe(403);
      }
      // Range requests read exactly what is asked.
      const head = await fetch(base + 'image/0', { method: 'HEAD' });
      expect(Number(head.headers.get('content-length'))).toBe(statSync(imageA).size);
      const range = await fetch(base + 'image/0', { headers: { range: 'bytes=0-15' } });
      expect(range.status).toBe(206);
      expect(range.headers.get('content-range')).toBe(`bytes 0-15/${statSync(imageA).size}`);
      expect(Buffer.from(await range.arrayBuffer())).toEqual(readFileSync(imageA).subarray(0, 16));
      expect((await fetch(base + 'image/0', { headers: { range: 'bytes=99999999-' } })).status).toBe(416);
      expect((await fetch(base + '../etc/passwd')).status).not.toBe(200);
      // Only the loopback interface listens.
      const port = Number(new URL(url).port);
      const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal);
      if (external) {
        await expect(fetch(`http://${external.address}:${port}/`)).rejects.toThrow();
      }

      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);
      await page.waitForSelector('body[data-diff="done"]', { timeout: 30_000 });
      expect(await page.locator('.image-tab').allInnerTexts()).toEqual([
        expect.stringContaining('counter-a.cryo'), expect.stringContaining('counter-b.cryo'),
      ]);
      expect(await page.locator('#diff-table tbody tr td').nth(2).innerText()).toBe('changed');
      await shot(page, '11-view-command-diff');
      expect(errors).toEqual([]);
      await context.close();
    } finally {
      await stopChild(child);
    }
  });

  it('opens a 1 GiB image through cryo-img view reading under 1 MiB before the first paint', async () => {
    const big = await bigheap!;
    const bigImage = join(dir.path, 'bigheap.cryo');
    try {
      execFileSync(helperPath, ['dump', '--pid', String(big.pid), '-o', bigImage]);
    } finally {
      // Freeing 1 GiB takes the kernel a few seconds: let it happen while the page loads
      // (afterAll reaps the process).
      big.child.kill('SIGKILL');
    }
    expect(statSync(bigImage).size).toBeGreaterThan(1 << 30);
    const server = await startViewServer([bigImage]);
    try {
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(server.url);
      await page.waitForSelector('body[data-ready="1"]');
      const served = server.bytesServed[0]!;
      const probe = await page.evaluate(() => (window as unknown as { cryoViewer: Probe }).cryoViewer.firstPaint);
      writeFileSync(join(artifacts, 'first-paint-1gib.json'), JSON.stringify({ imageBytes: statSync(bigImage).size, servedBeforeFirstPaint: served, ...probe }, null, 2));
      expect(probe!.bytesRead).toBeLessThan(1 << 20);
      expect(served).toBeLessThan(1 << 20);
      expect(served).toBe(probe!.bytesRead);
      expect(await page.locator('#tree .tree-item').first().innerText()).toContain('bigheap');
      await shot(page, '12-1gib-processes');

      await page.click(`#tree .tree-item[data-pid="${big.pid}"]`);
      await view(page, 'memory');
      await page.waitForSelector(`body[data-picture="${big.pid}"]`);
      expect(await page.locator('#vma-table tbody tr', { hasText: '1.0 GiB' }).count()).toBeGreaterThan(0);
      await shot(page, '13-1gib-memory');
      await page.goto(server.url.replace('?serve=1', `?serve=1#pid=${big.pid}&view=hex&addr=${big.ready.heap}`));
      await page.waitForSelector('#hexdump[data-addr]');
      expect(await page.locator('.hexascii').first().innerText()).toMatch(/record|\.{4}/);
      await shot(page, '14-1gib-hex');
      // Opening again and showing 512 bytes of the heap still read well under 1 MiB more.
      expect(server.bytesServed[0]! - served).toBeLessThan(1 << 20);
      expect(errors).toEqual([]);
      await context.close();
    } finally {
      await server.close();
    }
  });
});

// The worker's engine runs in Node too (no DOM): exact checks on a synthetic image whose every byte is known.
describe('the viewer engine', () => {
  const PAGE = 4096n;
  let engine: Engine;
  let bytes: Uint8Array;
  let summary: ImageSummary;

  beforeAll(async () => {
    const wasm = await CryoWasm.instantiate(readFileSync(join(projectRoot, 'dist', 'cryo.wasm')));
    bytes = await buildSyntheticImage(wasm);
    // A search step of 3 pages + 5 bytes: matches straddle steps, pages and runs.
    engine = new Engine(async () => wasm, undefined, 3 * 4096 + 5);
    summary = await engine.open(0, { kind: 'blob', blob: new Blob([bytes]), name: 'synthetic.cryo' });
  });

  it('opens reading metadata only, and counts stored, zero and deduplicated pages per VMA', () => {
    expect(summary.bytesRead).toBeLessThan(64 * 1024);
    expect(summary.bytesRead).toBeLessThan(bytes.length / 20);
    const root = summary.processes.find((p) => p.pid === ROOT_PID)!;
    const heap = root.vmas.find((v) => v.start === HEAP)!;
    const alias = root.vmas.find((v) => v.start === ALIAS)!;
    expect([heap.pagesStored, heap.zeroPages, heap.dedupPages]).toEqual([HEAP_PAGES, ZERO_PAGES, 0]);
    // ALIAS uses store pages 5 and 6, which the heap (at a lower address) used first.
    expect([alias.pagesStored, alias.dedupPages]).toEqual([2, 2]);
  });

  it('draws each page of a VMA as its cells: stored, deduplicated, zero, not stored', () => {
    const root = summary.processes.find((p) => p.pid === ROOT_PID)!;
    const cells = root.vmas.map((v) => Number((v.end - v.start) / PAGE)); // one cell per page
    const raster = engine.raster(0, ROOT_PID, cells, false);
    const heapIndex = root.vmas.findIndex((v) => v.start === HEAP);
    const aliasIndex = root.vmas.findIndex((v) => v.start === ALIAS);
    expect([...raster[heapIndex]!]).toEqual([
      ...Array(HEAP_PAGES).fill(CELL_DATA), ...Array(ZERO_PAGES).fill(CELL_ZERO), ...Array(6).fill(CELL_NONE),
    ]);
    expect([...raster[aliasIndex]!]).toEqual([CELL_DEDUP, CELL_DEDUP, CELL_NONE, CELL_NONE]);
    // Fewer cells than pages: a cell shows the most stored state of its pages; more cells: a page fills several.
    expect([...engine.raster(0, ROOT_PID, cells.map(() => 2), false)[aliasIndex]!]).toEqual([CELL_DEDUP, CELL_NONE]);
    expect([...engine.raster(0, ROOT_PID, cells.map(() => 8), false)[aliasIndex]!]).toEqual([3, 3, 3, 3, 0, 0, 0, 0]);
  });

  it('finds every match in stored memory, across search steps, pages and runs (checked against a naive scan)', async () => {
    const ranges: [bigint, number][] = [];
    for (const e of PAGE_MAPS[ROOT_PID]!) {
      const last = ranges[ranges.length - 1];
      if (last && last[0] + BigInt(last[1]) === e.vaddr) last[1] += e.pageCount * 4096;
      else ranges.push([e.vaddr, e.pageCount * 4096]);
    }
    const naive = (pattern: Uint8Array): bigint[] => {
      const out: bigint[] = [];
      for (const [start, length] of ranges) {
        const mem = expectedMemory(ROOT_PID, start, length);
        for (let i = 0; i + pattern.length <= mem.length; i++) {
          let ok = true;
          for (let k = 0; ok && k < pattern.length; k++) ok = mem[i + k] === pattern[k];
          if (ok) out.push(start + BigInt(i));
        }
      }
      return out;
    };
    const patterns = [
      expectedMemory(ROOT_PID, HEAP + 4092n, 8), // across a page boundary
      expectedMemory(ROOT_PID, HEAP + 3n * 4096n + 2n, 7), // across a search step (3 pages + 5 bytes)
      expectedMemory(ROOT_PID, HEAP + BigInt(HEAP_PAGES) * PAGE - 4n, 8), // last data page into the zero run
      expectedMemory(ROOT_PID, LONE + 100n, 16),
      new Uint8Array([0x12]), // a one-byte pattern: many matches
    ];
    for (const pattern of patterns) {
      const result = await engine.search(0, ROOT_PID, pattern, 1_000_000, () => undefined, () => false);
      expect(result.hits.map((h) => h.address)).toEqual(naive(pattern));
      expect(result.hits.length).toBeGreaterThan(0);
    }
  });

  it('reads memory with page states, and blobs', async () => {
    const read = await engine.read(0, ROOT_PID, HEAP + BigInt(HEAP_PAGES) * PAGE - 8n, 16);
    expect(read.bytes).toEqual(expectedMemory(ROOT_PID, HEAP + BigInt(HEAP_PAGES) * PAGE - 8n, 16));
    expect([...read.pageStates]).toEqual([CELL_DATA, CELL_ZERO]);
    const blob = await engine.blob(0, 1, 10);
    expect([blob.length, [...blob.bytes]]).toEqual([100, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
  });

  it('parses Range headers like a server should', () => {
    expect(parseRange(undefined, 100)).toBeNull();
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=50-500', 100)).toEqual({ start: 50, end: 99 });
    for (const bad of ['bytes=100-', 'bytes=5-1', 'bytes=-0', 'bytes=-', 'bytes=0-1,5-6', 'items=0-1', 'bytes=x-1']) {
      expect(parseRange(bad, 100), bad).toBe('bad');
    }
  });
});
