// `cryo-img convert CRIU_DIR_OR_ARCHIVE -o OUT.cryo`: a CRIU checkpoint (image directory, or container
// checkpoint archive read in place) as one `.cryo` file, written atomically (temporary file, mode
// 0600, renamed into place). Page data is streamed; docs/CRIU.md says what is kept.
import { resolve } from 'node:path';
import { convertToCryo } from '../convert/index.js';
import { openImage, writeImageFile } from '../node.js';
import { reportFailure } from './errors.js';
import { humanBytes } from './units.js';

export interface ConvertCliOptions {
  output?: string;
  /** commander's --no-source-files */
  sourceFiles?: boolean;
}

export async function convertCommand(input: string, options: ConvertCliOptions): Promise<number> {
  try {
    if (!options.output) throw new Error('an output is required: -o OUT.cryo');
    if (options.output === '-') throw new Error('convert writes a file (the image is renamed into place when complete); "-" is not supported');
    if (resolve(options.output) === resolve(input)) throw new Error('the output must not be the input');
    const image = await openImage(input);
    try {
      // re-encoding a .cryo image would drop what the model does not hold (unknown keys, other blobs)
      if (!('format' in image && image.format === 'criu')) throw new Error('already a .cryo image, not a CRIU checkpoint (pack and unpack change how a .cryo image is stored)');
      let summary: Awaited<ReturnType<typeof convertToCryo>> | undefined;
      const written = await writeImageFile(options.output, async (writer) => {
        summary = await convertToCryo(image, writer, { keepSourceFiles: options.sourceFiles !== false });
      });
      const s = summary!;
      process.stderr.write(
        `cryo-img: wrote ${options.output} (${humanBytes(written.fileLength)}, ${written.sectionCount} sections): ` +
          `${s.processes} process${s.processes === 1 ? '' : 'es'}, ${s.pages} pages` +
          (s.sharedPages ? ` (${s.sharedPages} of shared memory)` : '') +
          `, ${s.blobs} blob${s.blobs === 1 ? '' : 's'}` +
          (s.keptFiles.length ? `, ${s.keptFiles.length} source files kept (${humanBytes(s.keptBytes)})` : '') + '\n',
      );
      return 0;
    } finally {
      await image.close();
    }
  } catch (error) {
    return reportFailure(input, error);
  }
}
