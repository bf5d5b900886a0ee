/**
 * The browser entry: everything of `./index.js`, plus the Wasm core fetched from next to this module
 * (`dist/browser.js` loads `dist/cryo.wasm`). Its only bare import is `@msgpack/msgpack`.
 *
 * @module
 */
import type { ByteSource } from './core/byte-source.js';
import { openImage as openImageWith, type CryoImage, type OpenOptions } from './core/reader.js';
import { verifyImage, type VerifyReport } from './core/verify.js';
import { CryoWasm } from './core/wasm.js';
import { engineDecoder, linkImage, type ParentResolver } from './codec/pages.js';

export * from './index.js';

let wasmPromise: Promise<CryoWasm> | undefined;

/** The Wasm core, fetched once (from `./cryo.wasm` next to this module, or from `url`). */
export function loadWasm(url: URL | string = new URL('./cryo.wasm', import.meta.url)): Promise<CryoWasm> {
  wasmPromise ??= (async () => {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`cannot fetch ${String(url)}: HTTP ${response.status}`);
    return CryoWasm.instantiate(await response.arrayBuffer());
  })().catch((error: unknown) => {
    wasmPromise = undefined;
    throw error;
  });
  return wasmPromise;
}

/** Open an image held in a Blob/File (read lazily with Blob.slice), bytes, or any ByteSource. */
export async function openImage(input: Blob | Uint8Array | ByteSource, options: BrowserOpenOptions = {}): Promise<CryoImage> {
  const wasm = await loadWasm();
  const image = await openImageWith(input, wasm, { decoder: engineDecoder(wasm), ...options });
  try {
    await linkImage(image, { resolveParent: options.resolveParent });
  } catch (error) {
    await image.close();
    throw error;
  }
  return image;
}

/**
 * Options of the browser openImage: those of the core reader (packed images decode by default), plus
 * `resolveParent`, which supplies the parent of an incremental image (e.g. another File the user chose).
 */
export interface BrowserOpenOptions extends OpenOptions {
  resolveParent?: ParentResolver;
}

/** Verify an image (see verifyImage). */
export async function verify(input: Blob | Uint8Array | ByteSource): Promise<VerifyReport> {
  const wasm = await loadWasm();
  return verifyImage(input, wasm, { decoder: engineDecoder(wasm) });
}

// ---- CRIU checkpoints (a dropped folder or container checkpoint archive) ---------------------------
// Loaded on first use, so that this module itself imports nothing but @msgpack/msgpack: the CRIU
// reader needs `fflate` (gzip) too, and a zstd decompressor passed in `options.zstd` for .tar.zst.

export type { ArchiveOptions, CriuDirectory, Decompressor, NamedBlob, RandomAccess } from './criu/source.js';
export type { CriuCheckpointImage, CriuModelOptions } from './criu/model.js';
export { CriuFormatError, CriuSourceError } from './criu/errors.js';

/**
 * A container checkpoint archive (tar, tar.gz; tar.zst with `options.zstd`) or a tar of a CRIU image
 * directory, held in a Blob/File or bytes, as the CRIU directory inside it (read by range for tar).
 */
export async function openCriuArchive(
  input: Blob | Uint8Array | import('./criu/source.js').RandomAccess,
  options: import('./criu/source.js').ArchiveOptions = {},
): Promise<import('./criu/source.js').CriuDirectory> {
  return (await import('./criu/source.js')).openCriuArchive(input, options);
}

/**
 * A CRIU image directory from picked or dropped files (`<input type=file webkitdirectory>`: pass
 * `{ path: file.webkitRelativePath || file.name, data: file }` for each file).
 */
export async function directoryFromFiles(
  files: import('./criu/source.js').NamedBlob[],
  label = 'files',
): Promise<import('./criu/source.js').CriuDirectory> {
  return (await import('./criu/source.js')).directoryFromFiles(files, label);
}

/** Open a CRIU directory (from {@link openCriuArchive} or {@link directoryFromFiles}) as a model image. */
export async function openCriuImage(
  dir: import('./criu/source.js').CriuDirectory,
  options: import('./criu/model.js').CriuModelOptions = {},
): Promise<import('./criu/model.js').CriuCheckpointImage> {
  return (await import('./criu/model.js')).openCriuImage(dir, options);
}
