// `cryo-img read IMG --pid P --addr A --len N`: memory from the image, as a hexdump or raw bytes.
import { openImage } from '../node.js';
import { reportFailure } from './errors.js';
import { hexdump } from './hexdump.js';

export interface ReadCliOptions {
  pid: number;
  addr: number;
  len: number;
  raw?: boolean;
}

/** Reads larger than this are refused for the hexdump (use --raw and a pipe). */
const MAX_HEXDUMP = 16 << 20;

export async function readCommand(path: string, options: ReadCliOptions): Promise<number> {
  try {
    if (!options.raw && options.len > MAX_HEXDUMP) throw new Error(`--len ${options.len} is too long for a hexdump; use --raw`);
    const image = await openImage(path);
    try {
      if (!image.process(options.pid)) {
        throw new Error(`no process ${options.pid} in this image (it holds ${image.processes.map((p) => p.pid).join(', ')})`);
      }
      const result = await image.readMemoryDetailed(options.pid, BigInt(options.addr), options.len);
      if (options.raw) {
        await new Promise<void>((resolve, reject) => process.stdout.write(result.bytes, (e) => (e ? reject(e) : resolve())));
      } else {
        process.stdout.write(hexdump(result.bytes, options.addr) + '\n');
        for (const gap of result.notStored) {
          process.stderr.write(`note: 0x${gap.start.toString(16)}-0x${gap.end.toString(16)} is not stored in the image (shown as zeros)\n`);
        }
      }
      return 0;
    } finally {
      await image.close();
    }
  } catch (error) {
    return reportFailure(path, error);
  }
}
