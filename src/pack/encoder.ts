/**
 * Encoding section payloads off the writing path: a {@link BlockEncoder} turns a payload (≤ 1 MiB)
 * into a codec and stored bytes, in this thread ({@link InlineEncoder}) or in workers (src/pack/node.ts);
 * {@link OrderedSections} writes the results in submission order with a bounded number in flight.
 *
 * @module
 */
import type { SectionInfo } from '../core/format.js';
import type { ImageWriter, SectionSpec } from '../core/writer.js';
import { codecLevel, type CodecLevel, type Encoded, type WasmEngine } from '../codec/engine.js';

export interface BlockEncoder {
  /** Encode one payload (≤ 1 MiB). May take ownership of `bytes` (transfer it to a worker). */
  encode(bytes: Uint8Array): Promise<Encoded>;
  /** A 1 MiB block to fill and pass to encode (recycled when the encoder can). */
  takeBlock?(): Uint8Array;
  /** How many payloads it can work on at once (workers). */
  readonly parallelism: number;
  close(): Promise<void>;
}

/** Encodes in this thread with its own engine. */
export class InlineEncoder implements BlockEncoder {
  readonly parallelism = 1;
  private readonly level: CodecLevel;
  private readonly block = new Uint8Array(1 << 20);

  /** encode() is done with its input when it returns: one block serves every call. */
  takeBlock(): Uint8Array {
    return this.block;
  }

  constructor(private readonly engine: WasmEngine, level: number) {
    this.level = codecLevel(level);
  }

  async encode(bytes: Uint8Array): Promise<Encoded> {
    return this.engine.encode(bytes, this.level);
  }

  async close(): Promise<void> {}
}

/** A raw "encoder" (unpack): the payload as it is. */
export const rawEncoder: BlockEncoder = {
  parallelism: 1,
  encode: async (bytes) => ({ codec: 0, payload: bytes }),
  close: async () => undefined,
};

/** Writes sections whose payloads are still being encoded, in submission order. */
export class OrderedSections {
  private readonly pending: { spec: SectionSpec; rawLength: number; encoded: Promise<Encoded> }[] = [];
  /** Bytes of page data submitted and written (raw lengths), for progress. */
  written = 0;
  storedBytes = 0;

  constructor(private readonly writer: ImageWriter, private readonly depth: number) {}

  /** Queue a section; waits while more than `depth` are in flight. */
  async submit(spec: SectionSpec, rawLength: number, encoded: Promise<Encoded>): Promise<void> {
    encoded.catch(() => undefined); // surfaced when written
    this.pending.push({ spec, rawLength, encoded });
    while (this.pending.length > this.depth) await this.writeOne();
  }

  private async writeOne(): Promise<SectionInfo> {
    const next = this.pending.shift()!;
    const { codec, payload } = await next.encoded;
    this.written += next.rawLength;
    this.storedBytes += payload.length;
    return this.writer.addSection({ ...next.spec, codec, rawLength: next.rawLength }, payload);
  }

  /** Write everything queued. */
  async drain(): Promise<void> {
    while (this.pending.length > 0) await this.writeOne();
  }
}
