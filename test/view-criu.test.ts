// `cryo-img view` of a CRIU image directory: converted to .cryo in memory and served like a file.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startViewServer } from '../src/cli/cmd-view.js';
import { openImage } from '../src/node.js';

describe('cryo-img view of a CRIU directory', () => {
  it('serves the checkpoint as a .cryo image with Range requests, behind the token', async () => {
    const server = await startViewServer([join(import.meta.dirname, 'fixtures', 'criu', 'counter')]);
    try {
      const list = await (await fetch(new URL('images.json', server.url))).json();
      const url = new URL('image/0', server.url);
      const head = await fetch(url, { headers: { range: 'bytes=0-7' } });
      expect(head.status).toBe(206);
      expect(Buffer.from(await head.arrayBuffer()).toString()).toBe('CRYO-IMG');
      const whole = new Uint8Array(await (await fetch(url)).arrayBuffer());
      const image = await openImage(whole);
      try {
        expect(image.processes.map((p) => p.pid)).toEqual([23547]);
        const marker = await image.readMemory(23547, 0x564b976f82a0n, 16);
        expect(Buffer.from(marker).toString()).toBe('CRYO-MARKER-1234');
      } finally {
        await image.close();
      }
      expect(JSON.stringify(list)).toContain('counter.cryo');
      expect((await fetch(new URL('/nottoken/image/0', server.url))).status).toBe(403);
    } finally {
      await server.close();
    }
  });
});
