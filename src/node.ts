/**
 * The Node entry: everything of `./index.js`, plus files as byte sources, the Wasm core loaded from
 * disk, and atomic image writing.
 *
 * ```ts
 * import { openImage } from 'cryo-img/dist/node.js';
 * const image = await openImage('dump.cryo');
 * try { console.log(image.processes.map((p) => p.comm)); } finally { await image.close(); }
 * ```
 *
 * @module
 */
import { open, readFile, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { checkEncodedSections, engineDecoder, linkImage, type ParentRef, type ParentResolver } from './codec/pages.js';
import { CryoFormatError } from './core/errors.js';
import { fileURLToPath } from 'node:url';
import { checkRange, toByteSource, type ByteSource } from './core/byte-source.js';
import { openImage as openImageWith, type CryoImage, type OpenOptions } from './core/reader.js';
import type { CriuCheckpointImage } from './criu/model.js';
import { isCriuPath, openCriu } from './criu/node.js';
import { verifyImage, type VerifyReport } from './core/verify.js';
import { CryoWasm } from './core/wasm.js';
import { ImageWriter, type ByteSink, type WrittenImage } from './core/writer.js';

export * from './index.js';

/** A ByteSource over an open file: positional reads, no shared file position. */
export class FileSource implements ByteSource {
  private constructor(private readonly handle: FileHandle, readonly size: number, readonly path: string) {}

  /** Open `path` for reading. */
  static async open(path: string): Promise<FileSource> {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      return new FileSource(handle, size, path);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const bytes = new Uint8Array(length);
    await this.readInto(offset, bytes);
    return bytes;
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    const length = target.length;
    checkRange(this.size, offset, length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(target, done, length - done, offset + done);
      if (bytesRead === 0) throw new RangeError(`${this.path}: file ended at ${offset + done}, expected ${offset + length} bytes (was it truncated while open?)`);
      done += bytesRead;
    }
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** A ByteSink appending to an open file. */
export class FileSink implements ByteSink {
  constructor(private readonly handle: FileHandle) {}

  async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done);
      done += bytesWritten;
    }
  }
}

/** Where cryo.wasm is: next to the compiled module (dist/node.js), or in dist/ when run from src/. */
const WASM_CANDIDATES = [new URL('./cryo.wasm', import.meta.url), new URL('../dist/cryo.wasm', import.meta.url)];

let wasmPromise: Promise<CryoWasm> | undefined;

/** The Wasm core, loaded from disk once per process. */
export function loadWasm(): Promise<CryoWasm> {
  wasmPromise ??= (async () => {
    let lastError: unknown;
    for (const url of WASM_CANDIDATES) {
      try {
        return await CryoWasm.instantiate(await readFile(fileURLToPath(url)));
      } catch (error) {
        lastError = error;
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') break;
      }
    }
    wasmPromise = undefined;
    throw new Error(`cannot load cryo.wasm (run \`npm run build:wasm\`): ${(lastError as Error).message}`, { cause: lastError });
  })();
  return wasmPromise;
}

/** What the Node openImage accepts: a path, bytes, a Blob or a ByteSource. */
export type NodeImageInput = string | URL | Uint8Array | Blob | ByteSource;

/**
 * Options of the Node openImage: those of the core reader, plus where the parent of an incremental
 * image comes from (default: the path it records, relative to the image's directory).
 */
export interface NodeOpenOptions extends OpenOptions {
  resolveParent?: ParentResolver;
}

/** What {@link openImage} returns: a `.cryo` image, or a CRIU checkpoint read in place (`format: 'criu'`). */
export type AnyImage = CryoImage | CriuCheckpointImage;

/**
 * Open an image from a path (or bytes, a Blob, a ByteSource). Reads only the footer, index and
 * metadata. A path may also name a CRIU checkpoint: an image directory or a container checkpoint
 * archive (tar, tar.gz, tar.zst), read in place (see src/criu). Call `close()` on the result.
 */
export async function openImage(input: NodeImageInput, options: NodeOpenOptions = {}): Promise<AnyImage> {
  const path = pathOf(input);
  if (path !== null && (await isCriuPath(path))) return openCriu(path);
  return openCryoImage(input, options);
}

/** Open a `.cryo` image only (what rewrite and restore need); a CRIU checkpoint is refused with a hint. */
export async function openCryoImage(input: NodeImageInput, options: NodeOpenOptions = {}): Promise<CryoImage> {
  return openInChain(input, options, []);
}

/** Longest parent chain followed; a longer one (or one that loops) is refused. */
const MAX_PARENT_CHAIN = 64;

async function openInChain(input: NodeImageInput, options: NodeOpenOptions, chain: string[]): Promise<CryoImage> {
  const at = pathOf(input);
  if (at !== null) {
    const real = await realpath(at).catch(() => resolvePath(at));
    if (chain.includes(real)) throw new Error(`the parent chain loops back to ${at} (${[...chain, real].join(' -> ')})`);
    if (chain.length >= MAX_PARENT_CHAIN) throw new Error(`the parent chain is longer than ${MAX_PARENT_CHAIN} images at ${at}`);
    chain = [...chain, real];
  }
  const wasm = await loadWasm();
  const source = await sourceOf(input).catch((error: unknown) => notCryo(input, error));
  let image: CryoImage;
  try {
    image = await openImageWith(source, wasm, { decoder: engineDecoder(wasm), ...options });
  } catch (error) {
    if (typeof input === 'string' || input instanceof URL) await source.close?.();
    return notCryo(input, error);
  }
  // Incremental images (FORMAT §5.4): find the parent next to this image unless a resolver is given.
  const path = pathOf(input);
  const resolveParent = options.resolveParent ??
    (path !== null ? (ref: ParentRef) => openInChain(isAbsolute(ref.path) ? ref.path : resolvePath(dirname(path), ref.path), options, chain) : undefined);
  try {
    await linkImage(image, { resolveParent });
  } catch (error) {
    await image.close();
    throw error;
  }
  return image;
}

function pathOf(input: NodeImageInput): string | null {
  if (typeof input === 'string') return input;
  if (input instanceof URL) return fileURLToPath(input);
  return null;
}

/** Rethrow `error`, or a clearer one when the path is a CRIU checkpoint rather than a `.cryo` image. */
async function notCryo(input: NodeImageInput, error: unknown): Promise<never> {
  const path = pathOf(input);
  if (path !== null && (await isCriuPath(path).catch(() => false))) {
    throw new Error(`a CRIU checkpoint, not a .cryo image: convert it first (cryo-img convert ${path} -o OUT.cryo)`, { cause: error });
  }
  throw error;
}

/** Verify an image file (see verifyImage): every CRC, the index against the sections, the structure. */
export async function verifyFile(input: NodeImageInput): Promise<VerifyReport> {
  const wasm = await loadWasm();
  const source = await sourceOf(input).catch((error: unknown) => notCryo(input, error));
  try {
    let report: VerifyReport;
    try {
      report = await verifyImage(source, wasm, { decoder: engineDecoder(wasm) });
    } catch (error) {
      return await notCryo(input, error);
    }
    // An incremental image is intact only with its parent chain: present, and the images it was made against.
    if (report.ok && pathOf(input) !== null) {
      try {
        const image = await openCryoImage(input);
        try {
          const problems = await checkEncodedSections(image);
          if (problems.length) report = { ...report, ok: false, problems: [...report.problems, ...problems] };
        } finally {
          await image.close();
        }
      } catch (error) {
        if (!(error instanceof CryoFormatError)) throw error;
        report = { ...report, ok: false, problems: [...report.problems, error] };
      }
    }
    // a tar or a directory is not a damaged .cryo image: say what it is
    if (!report.ok && pathOf(input) !== null) {
      const path = pathOf(input)!;
      if (await isCriuPath(path).catch(() => false)) return await notCryo(input, new Error(report.problems[0]?.message ?? 'not a .cryo image'));
    }
    return report;
  } finally {
    if (typeof input === 'string' || input instanceof URL) await source.close?.();
  }
}

async function sourceOf(input: NodeImageInput): Promise<ByteSource> {
  if (typeof input === 'string') return FileSource.open(input);
  if (input instanceof URL) return FileSource.open(fileURLToPath(input));
  return toByteSource(input);
}

/**
 * Write an image file atomically: `build` adds sections to a writer whose output goes to a temporary
 * file (mode 0600) in the same directory; after `finish()` the file is synced and renamed to `path`.
 * On any error the temporary file is removed and `path` is untouched.
 */
export async function writeImageFile(path: string, build: (writer: ImageWriter) => Promise<void>): Promise<WrittenImage> {
  const wasm = await loadWasm();
  // A device or FIFO (/dev/null, /dev/stdout, a named pipe) is written in place: renaming a temporary
  // file over it would replace the device node itself.
  const existing = await stat(path).catch(() => null);
  if (existing && !existing.isFile()) {
    if (existing.isDirectory()) throw new Error(`${path} is a directory`);
    const target = await open(path, 'w');
    try {
      const writer = new ImageWriter(new FileSink(target), wasm);
      await build(writer);
      return await writer.finish();
    } finally {
      await target.close();
    }
  }
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  let closed = false;
  try {
    const writer = new ImageWriter(new FileSink(handle), wasm);
    await build(writer);
    const written = await writer.finish();
    await handle.sync();
    await handle.close();
    closed = true;
    await rename(temp, path);
    return written;
  } catch (error) {
    if (!closed) await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}
