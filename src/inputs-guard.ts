// Inputs are never modified: an output must not be an input, nor any image in an input's parent chain
// (an incremental image needs its parents intact). Paths are compared after resolving links.
import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { FileSource, loadWasm } from './node.js';
import { openImage as openWithoutParents } from './core/reader.js';
import { engineDecoder, parentRef } from './codec/pages.js';

const MAX_CHAIN = 64;

async function canonical(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    // Not there yet (an output): its directory's real path and its name.
    const dir = await realpath(dirname(resolve(path))).catch(() => dirname(resolve(path)));
    return join(dir, basename(path));
  }
}

/** The image at `path` and its parents, as canonical paths (stops at the first unreadable one). */
async function chainOf(path: string): Promise<string[]> {
  const wasm = await loadWasm();
  const chain: string[] = [];
  let current: string | null = path;
  while (current !== null && chain.length < MAX_CHAIN) {
    const real = await canonical(current);
    if (chain.includes(real)) break;
    chain.push(real);
    let next: string | null = null;
    try {
      const source = await FileSource.open(current);
      try {
        const image = await openWithoutParents(source, wasm, { decoder: engineDecoder(wasm) });
        const ref = parentRef(image);
        if (ref) next = isAbsolute(ref.path) ? ref.path : resolve(dirname(current), ref.path);
      } finally {
        await source.close();
      }
    } catch {
      next = null; // not a .cryo image (a CRIU checkpoint, a missing file): nothing further to protect
    }
    current = next;
  }
  return chain;
}

/** Throws when writing `output` would overwrite one of `inputs` or an image they depend on. */
export async function refuseOverwritingInputs(output: string, inputs: string[]): Promise<void> {
  if (output === '-') return;
  const target = await canonical(output);
  for (const input of inputs) {
    const chain = await chainOf(input);
    const hit = chain.indexOf(target);
    if (hit === 0) throw new Error(`the output ${output} is the input ${input} (inputs are never modified)`);
    if (hit > 0) throw new Error(`the output ${output} is ${input}'s parent image (an incremental image needs its parents intact)`);
  }
}
