/**
 * The one byte-source abstraction under the whole reader: something with a size that can read a range
 * of bytes. Implementations: memory ({@link BytesSource}), Blob/File ({@link BlobSource}), a counting
 * wrapper for tests ({@link CountingSource}); the Node entry adds a file source.
 *
 * @module
 */

/** Random-access bytes. */
export interface ByteSource {
  /** Total length in bytes. */
  readonly size: number;
  /**
   * Read `length` bytes at `offset`. Resolves to exactly `length` bytes; rejects with a RangeError if
   * the range is outside [0, size). The returned array may be a view that the caller must not modify.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: read `target.length` bytes at `offset` into `target`. Sources that copy anyway (files)
   * implement it so that callers can reuse buffers; see {@link readInto}.
   */
  readInto?(offset: number, target: Uint8Array): Promise<void>;
  /** Release resources (open files). Optional. */
  close?(): Promise<void>;
}

/** Check a read range against a source size; throws RangeError. */
export function checkRange(size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new RangeError(`read of ${length} bytes at offset ${offset} is outside the source (${size} bytes)`);
  }
}

/** Read into `target` with the source's readInto when it has one, else read and copy. */
export async function readInto(source: ByteSource, offset: number, target: Uint8Array): Promise<void> {
  if (source.readInto) await source.readInto(offset, target);
  else target.set(await source.read(offset, target.length));
}

/** A ByteSource over bytes in memory. Reads return views (no copy). */
export class BytesSource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}

  get size(): number {
    return this.bytes.length;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.bytes.length, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
}

/** A ByteSource over a Blob or File (browser, Node ≥ 20): each read is one `Blob.slice`. */
export class BlobSource implements ByteSource {
  constructor(private readonly blob: Blob) {}

  get size(): number {
    return this.blob.size;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.blob.size, offset, length);
    const buffer = await this.blob.slice(offset, offset + length).arrayBuffer();
    if (buffer.byteLength !== length) {
      throw new RangeError(`short read from Blob: ${buffer.byteLength} of ${length} bytes at offset ${offset}`);
    }
    return new Uint8Array(buffer);
  }
}

/** Wraps a ByteSource and counts what is read through it (tests use it to prove how little is read). */
export class CountingSource implements ByteSource {
  /** Number of read() calls. */
  reads = 0;
  /** Total bytes requested. */
  bytesRead = 0;
  /** Every read, in order, when `log` is true. */
  readonly log: { offset: number; length: number }[] = [];

  constructor(readonly inner: ByteSource, private readonly keepLog = true) {}

  get size(): number {
    return this.inner.size;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    this.count(offset, length);
    return this.inner.read(offset, length);
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    this.count(offset, target.length);
    await readInto(this.inner, offset, target);
  }

  private count(offset: number, length: number): void {
    this.reads++;
    this.bytesRead += length;
    if (this.keepLog) this.log.push({ offset, length });
  }

  /** Reset the counters. */
  reset(): void {
    this.reads = 0;
    this.bytesRead = 0;
    this.log.length = 0;
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}

/** Anything openImage accepts in every environment: a ByteSource, bytes, or a Blob. */
export type ImageInput = ByteSource | Uint8Array | Blob;

/** Turn bytes or a Blob into a ByteSource; a ByteSource is returned as is. */
export function toByteSource(input: ImageInput): ByteSource {
  if (input instanceof Uint8Array) return new BytesSource(input);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return new BlobSource(input);
  return input as ByteSource;
}
