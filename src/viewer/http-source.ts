// A ByteSource over a URL, read with HTTP Range requests (what `cryo-img view` serves): the page reads
// only the bytes it shows, however large the image.
import { checkRange, type ByteSource } from '../core/byte-source.js';

export class HttpRangeSource implements ByteSource {
  private constructor(readonly url: string, readonly size: number) {}

  /** Learn the size with a HEAD request. */
  static async open(url: string): Promise<HttpRangeSource> {
    const response = await fetch(url, { method: 'HEAD', cache: 'no-store' });
    if (!response.ok) throw new Error(`cannot open ${url}: HTTP ${response.status}`);
    const size = Number(response.headers.get('content-length'));
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`cannot open ${url}: no Content-Length`);
    return new HttpRangeSource(url, size);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.size, offset, length);
    if (length === 0) return new Uint8Array(0);
    const response = await fetch(this.url, {
      headers: { range: `bytes=${offset}-${offset + length - 1}` },
      cache: 'no-store',
    });
    if (response.status !== 206) throw new Error(`range request for ${length} bytes at ${offset}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length !== length) throw new RangeError(`short range response: ${bytes.length} of ${length} bytes at offset ${offset}`);
    return bytes;
  }
}
