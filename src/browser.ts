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
export async function openImage(input: Blob | Uint8Array | ByteSource, options: OpenOptions = {}): Promise<CryoImage> {
  return openImageWith(input, await loadWasm(), options);
}

/** Verify an image (see verifyImage). */
export async function verify(input: Blob | Uint8Array | ByteSource): Promise<VerifyReport> {
  return verifyImage(input, await loadWasm());
}
