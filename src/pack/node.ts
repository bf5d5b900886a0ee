// Pack, unpack and squash for Node: PAGEDATA encoded in worker threads (one per core), outputs
// written atomically (temporary file, mode 0600, renamed into place).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadWasm, writeImageFile, type CryoImage } from '../node.js';
import type { Encoded } from '../codec/engine.js';
import { ImageWriter, type ByteSink, type WrittenImage } from '../core/writer.js';
import type { Writable } from 'node:stream';
import type { BlockEncoder } from './encoder.js';
import { packImage, type PackOptions, type PackStats } from './pack.js';
import { unpackImage, type SectionDecodePool, type UnpackOptions } from './unpack.js';
import type { SectionInfo } from '../core/format.js';
import { CryoFormatError } from '../core/errors.js';

const WORKER_CANDIDATES = [new URL('./worker.js', import.meta.url), new URL('../../dist/pack/worker.js', import.meta.url)];

/** Encodes in worker threads, each with its own Wasm engine; the least busy worker gets the next block. */
export class WorkerEncoder implements BlockEncoder {
  private readonly busy: number[];
  private readonly waiting = new Map<number, { resolve: (e: Encoded) => void; reject: (e: Error) => void; worker: number }>();
  private nextId = 0;
  /** 1 MiB blocks the workers gave back (no fresh allocation per section). */
  private readonly free: Uint8Array[] = [];

  takeBlock(): Uint8Array {
    return this.free.pop() ?? new Uint8Array(1 << 20);
  }

  private constructor(private readonly workers: Worker[]) {
    this.busy = workers.map(() => 0);
    workers.forEach((worker, index) => {
      worker.on('message', (m: { id: number; codec?: number; payload?: Uint8Array; block?: Uint8Array; error?: string }) => {
        const job = this.waiting.get(m.id);
        if (!job) return;
        this.waiting.delete(m.id);
        this.busy[index]!--;
        if (m.block && m.block.byteLength === 1 << 20 && this.free.length < 2 * workers.length + 2) this.free.push(m.block);
        if (m.error !== undefined) job.reject(new Error(`encoder worker: ${m.error}`));
        else job.resolve({ codec: m.codec!, payload: m.payload! });
      });
      worker.on('error', (error) => {
        for (const [id, job] of this.waiting) {
          if (job.worker === index) {
            this.waiting.delete(id);
            job.reject(error);
          }
        }
      });
    });
  }

  get parallelism(): number {
    return this.workers.length;
  }

  /** `count` workers (default: one per core) encoding at `level`. */
  static async create(level: number, count = availableParallelism()): Promise<WorkerEncoder> {
    const wasm = await loadWasm();
    const url = WORKER_CANDIDATES.find((u) => existsSync(fileURLToPath(u)));
    if (!url) throw new Error('encoder worker script not found (run the TypeScript build)');
    const workers = Array.from({ length: Math.max(1, count) }, () => new Worker(url, { workerData: { module: wasm.module, level } }));
    return new WorkerEncoder(workers);
  }

  encode(bytes: Uint8Array): Promise<Encoded> {
    let worker = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.busy[i]! < this.busy[worker]!) worker = i;
    this.busy[worker]!++;
    const id = this.nextId++;
    return new Promise((resolvePromise, reject) => {
      this.waiting.set(id, { resolve: resolvePromise, reject, worker });
      const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
      this.workers[worker]!.postMessage({ id, bytes: owned }, [owned.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A sink into a Node stream (stdout, a pipe), with backpressure. */
export class StreamSink implements ByteSink {
  constructor(private readonly stream: Writable) {}

  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      const ok = this.stream.write(bytes, (error) => {
        if (error) reject(error);
        else if (ok) resolvePromise();
      });
      if (!ok) this.stream.once('drain', () => resolvePromise());
    });
  }
}

/** Write an image to `output`: a file (atomically, mode 0600) or `-` (stdout). */
export async function writeImageTo(output: string, build: (writer: ImageWriter) => Promise<void>): Promise<WrittenImage> {
  if (output !== '-') return writeImageFile(output, build);
  const writer = new ImageWriter(new StreamSink(process.stdout), await loadWasm());
  await build(writer);
  return writer.finish();
}

/**
 * Decodes PAGEDATA sections of one image file in worker threads (each reads, CRC-checks, decodes and
 * checksums on its own descriptor), with a small pool of reused 1 MiB buffers.
 */
export class WorkerDecoder implements SectionDecodePool {
  private readonly free: Uint8Array[] = [];
  private readonly waiting = new Map<number, { resolve: (r: { bytes: Uint8Array; crc: number }) => void; reject: (e: Error) => void; length: number }>();
  private readonly busy: number[];
  private nextId = 0;
  readonly depth: number;

  private constructor(private readonly workers: Worker[]) {
    this.depth = workers.length * 2;
    this.busy = workers.map(() => 0);
    workers.forEach((worker, index) => {
      worker.on('message', (m: { id: number; target: Uint8Array; crc?: number; error?: { message: string; details: Record<string, unknown> | null } }) => {
        const job = this.waiting.get(m.id);
        if (!job) return;
        this.waiting.delete(m.id);
        this.busy[index]!--;
        if (m.error) {
          this.free.push(m.target);
          const d = m.error.details;
          job.reject(d ? new CryoFormatError({ code: String(d.code), offset: Number(d.offset), subject: String(d.subject), reason: String(d.reason), expected: d.expected as string | undefined, found: d.found as string | undefined }) : new Error(m.error.message));
        } else {
          job.resolve({ bytes: m.target.subarray(0, job.length), crc: m.crc! });
        }
      });
      worker.on('error', (error) => {
        for (const [id, job] of this.waiting) {
          this.waiting.delete(id);
          job.reject(error);
        }
      });
    });
  }

  static async create(path: string, count = availableParallelism()): Promise<WorkerDecoder> {
    const wasm = await loadWasm();
    const url = [new URL('./decode-worker.js', import.meta.url), new URL('../../dist/pack/decode-worker.js', import.meta.url)]
      .find((u) => existsSync(fileURLToPath(u)));
    if (!url) throw new Error('decoder worker script not found (run the TypeScript build)');
    return new WorkerDecoder(Array.from({ length: Math.max(1, count) }, () => new Worker(url, { workerData: { module: wasm.module, path } })));
  }

  decode(section: SectionInfo): Promise<{ bytes: Uint8Array; crc: number }> {
    let worker = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.busy[i]! < this.busy[worker]!) worker = i;
    this.busy[worker]!++;
    const id = this.nextId++;
    const target = this.free.pop() ?? new Uint8Array(1 << 20);
    const { codec, rawLength, storedLength, offset, payloadOffset, payloadCrc, typeName } = section;
    return new Promise((resolvePromise, reject) => {
      this.waiting.set(id, { resolve: resolvePromise, reject, length: rawLength });
      this.workers[worker]!.postMessage({ id, section: { codec, rawLength, storedLength, offset, payloadOffset, payloadCrc, typeName }, target }, [target.buffer as ArrayBuffer]);
    });
  }

  release(bytes: Uint8Array): void {
    if (bytes.byteOffset === 0 && bytes.buffer.byteLength === 1 << 20 && this.free.length < this.depth + 2) {
      this.free.push(new Uint8Array(bytes.buffer as ArrayBuffer));
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The path to record for a parent: relative to the output's directory, '/' separated. */
export function parentPathFor(output: string, parent: string): string {
  return relative(dirname(resolve(output)), resolve(parent)).split(sep).join('/');
}

export interface PackFileOptions extends Omit<PackOptions, 'encoder' | 'parent' | 'parentPath'> {
  /** Worker threads encoding page data (default: one per core; 0 = in this thread). */
  workers?: number;
  /** The parent image, opened, and its path (for an incremental output). */
  parent?: { image: CryoImage; path: string } | null;
}

/** Pack an open image into the file `output` (atomically). */
export async function packToFile(input: CryoImage, output: string, options: PackFileOptions = {}): Promise<{ written: WrittenImage; stats: PackStats }> {
  const workers = options.workers ?? availableParallelism();
  const encoder = workers > 0 ? await WorkerEncoder.create(options.level ?? 3, workers) : undefined;
  try {
    let stats: PackStats | undefined;
    const { parent, workers: _w, ...rest } = options;
    const written = await writeImageTo(output, async (writer) => {
      stats = await packImage(input, writer, {
        ...rest,
        ...(encoder ? { encoder } : {}),
        ...(parent ? { parent: parent.image, parentPath: parentPathFor(output, parent.path) } : {}),
      });
    });
    return { written, stats: stats! };
  } finally {
    await encoder?.close();
  }
}

/** Unpack an open image into the file `output` (atomically). */
export async function unpackToFile(input: CryoImage, output: string, options: UnpackOptions & { path?: string; workers?: number } = {}): Promise<WrittenImage> {
  // Both sinks (file, stream) are done with the bytes when write resolves: buffers can be reused.
  const workers = options.workers ?? availableParallelism();
  const pool = options.path && workers > 0 ? await WorkerDecoder.create(options.path, workers) : undefined;
  try {
    return await writeImageTo(output, (writer) => unpackImage(input, writer, { reuseBuffers: true, ...(pool ? { pool } : {}), ...options }));
  } finally {
    await pool?.close();
  }
}
