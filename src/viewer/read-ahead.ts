// A ByteSource wrapper that, while `blockSize` is non-zero, serves reads from large blocks read ahead
// (browsers read a File far faster in a few big slices than in many 1 MiB ones). Off (0) by default,
// so opening an image and showing a page read only what they need; search and diff turn it on.
import { checkRange, type ByteSource } from '../core/byte-source.js';

interface Block {
  start: number;
  end: number;
  bytes: Promise<Uint8Array>;
}

export class ReadAheadSource implements ByteSource {
  /** Bytes read ahead per block while scanning; 0 = pass reads through. */
  blockSize = 0;
  private blocks: Block[] = [];

  constructor(private readonly inner: ByteSource, private readonly keep = 3) {}

  get size(): number {
    return this.inner.size;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.size, offset, length);
    if (this.blockSize === 0 || length >= this.blockSize) return this.inner.read(offset, length);
    let block = this.blocks.find((b) => offset >= b.start && offset + length <= b.end);
    if (!block) {
      const end = Math.min(this.size, offset + this.blockSize);
      block = { start: offset, end, bytes: this.inner.read(offset, end - offset) };
      this.blocks.push(block);
      if (this.blocks.length > this.keep) this.blocks.shift();
    }
    const bytes = await block.bytes;
    return bytes.subarray(offset - block.start, offset - block.start + length);
  }

  /** Stop reading ahead and drop the blocks. */
  stop(): void {
    this.blockSize = 0;
    this.blocks = [];
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}
