// Opening images for the CLI commands: packed images decode through the Wasm engine, incremental
// images find their parent chain (paths recorded relative to each image).
import { dirname, isAbsolute, resolve } from 'node:path';
import { loadWasm, openCryoImage, type CryoImage } from '../node.js';
import { engineDecoder, linkImage } from '../codec/pages.js';

/** Open any image (raw, packed, incremental with its parents). Closing it closes its parents. */
export async function openAnyImage(path: string): Promise<CryoImage> {
  const wasm = await loadWasm();
  const image = await openCryoImage(path, { decoder: engineDecoder(wasm) });
  try {
    const parent = await linkImage(image, {
      resolveParent: (ref) => openAnyImage(isAbsolute(ref.path) ? ref.path : resolve(dirname(path), ref.path)),
    });
    if (parent) {
      const close = image.close.bind(image);
      image.close = async () => {
        await close();
        await parent.close();
      };
    }
    return image;
  } catch (error) {
    await image.close();
    throw error;
  }
}
