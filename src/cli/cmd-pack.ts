// `cryo-img pack IN -o OUT [--level N] [--parent BASE]`, `cryo-img unpack IN -o OUT` and
// `cryo-img squash TIP -o OUT`: compressed, deduplicated and incremental images (docs/FORMAT.md §3.1,
// §5.4), and back to a raw self-contained image.
import { packToFile, unpackToFile } from '../pack/node.js';
import { reportFailure } from './errors.js';
import { refuseOverwritingInputs } from '../inputs-guard.js';
import { openAnyImage } from './open.js';
import { progressBar } from './progress.js';
import { humanBytes } from './units.js';

export interface PackCliOptions {
  output?: string;
  level?: number;
  parent?: string;
  workers?: number;
  dedup?: boolean;
  quiet?: boolean;
}

async function checkOutput(input: string, output: string | undefined, others: string[] = []): Promise<string> {
  if (!output) throw new Error('an output is required: -o OUT');
  await refuseOverwritingInputs(output, [input, ...others]);
  return output;
}

export async function packCommand(input: string, options: PackCliOptions, verb: 'pack' | 'squash' = 'pack'): Promise<number> {
  let context = input;
  try {
    const output = await checkOutput(input, options.output, options.parent ? [options.parent] : []);
    const image = await openAnyImage(input);
    try {
      context = options.parent ?? input;
      const parent = options.parent ? await openAnyImage(options.parent) : null;
      context = input;
      try {
        const bar = progressBar(verb, { quiet: options.quiet });
        const { written, stats } = await packToFile(image, output, {
          ...(options.level !== undefined ? { level: options.level } : {}),
          ...(options.workers !== undefined ? { workers: options.workers } : {}),
          dedup: options.dedup !== false,
          parent: parent ? { image: parent, path: options.parent! } : null,
          onProgress: (done, total) => bar.update(done, total),
        });
        bar.finish();
        if (!options.quiet) {
          const from = image.source.size;
          process.stderr.write(
            `cryo-img: wrote ${output}: ${humanBytes(written.fileLength)} from ${humanBytes(from)} (${(from / written.fileLength).toFixed(2)}x); ` +
            `pages: ${stats.stored} stored, ${stats.zero} zero, ${stats.dedup} duplicate` +
            (parent ? `, ${stats.parent} from the parent, ${stats.delta} as deltas` : '') + '\n');
        }
        return 0;
      } finally {
        await parent?.close();
      }
    } finally {
      await image.close();
    }
  } catch (error) {
    return reportFailure(context, error);
  }
}

export async function unpackCommand(input: string, options: { output?: string; quiet?: boolean }): Promise<number> {
  try {
    const output = await checkOutput(input, options.output);
    const image = await openAnyImage(input);
    try {
      const bar = progressBar('unpack', { quiet: options.quiet });
      const written = await unpackToFile(image, output, { path: input, onProgress: (done, total) => bar.update(done, total) });
      bar.finish();
      if (!options.quiet) process.stderr.write(`cryo-img: wrote ${output}: ${humanBytes(written.fileLength)}\n`);
      return 0;
    } finally {
      await image.close();
    }
  } catch (error) {
    return reportFailure(input, error);
  }
}

/** squash: the chain resolved into one self-contained packed image (or raw with --raw). */
export async function squashCommand(input: string, options: PackCliOptions & { raw?: boolean }): Promise<number> {
  if (options.raw) return unpackCommand(input, options);
  return packCommand(input, { ...options, parent: undefined }, 'squash');
}
