// Pack, unpack and squash for Node: PAGEDATA encoded in worker threads (one per core), outputs
// written atomically (temporary file, mode 0600, renamed into place).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadWasm, writeImageFile, type CryoImage } from '../node.js';
import type { Encoded } from '../codec/engine.js';
import type { WrittenImage } from '../core/writer.js';
import type { BlockEncoder } from './encoder.js';
import { packImage, type PackOptions, type PackStats } from './pack.js';
import { unpackImage, type UnpackOptions } from './unpack.js';

const WORKER_CANDIDATES = [new URL('./worker.js', import.meta.url), new URL('../../dist/pack/worker.js', import.meta.url)];

/** Encodes in worker threads, each with its own Wasm engine; the least busy worker gets the next block. */
export class WorkerEncoder implements BlockEncoder {
  private readonly busy: number[];
  private readonly waiting = new Map<number, { resolve: (e: Encoded) => void; reject: (e: Error) => void; worker: number }>();
  private nextId = 0;

  private constructor(private readonly workers: Worker[]) {
    this.busy = workers.map(() => 0);
    workers.forEach((worker, index) => {
      worker.on('message', (m: { id: number; codec?: number; payload?: Uint8Array; error?: string }) => {
        const job = this.waiting.get(m.id);
        if (!job) return;
        this.waiting.delete(m.id);
        this.busy[index]!--;
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
    const written = await writeImageFile(output, async (writer) => {
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
export function unpackToFile(input: CryoImage, output: string, options: UnpackOptions = {}): Promise<WrittenImage> {
  return writeImageFile(output, (writer) => unpackImage(input, writer, options));
}
