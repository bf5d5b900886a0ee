// `cryo-img restore IMG`: validate the whole image first (so a corrupt image is refused before any
// process exists), then stream it to the helper's stdin. Streaming, not a path, so that later packed or
// rewritten images can be decoded on the fly without a temporary raw file.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { verifyImageFile } from './verify.js';
import { helperPath } from './helper.js';
import { reportFailure } from './errors.js';

export interface RestoreCliOptions {
  detach?: boolean;
  skipFd: string[];
}

export async function restoreCommand(path: string, options: RestoreCliOptions): Promise<number> {
  try {
    const report = await verifyImageFile(path);
    if (!report.ok) {
      for (const problem of report.problems) process.stderr.write(`cryo-img: ${path}: ${problem}\n`);
      process.stderr.write(`cryo-img: ${path}: refusing to restore a damaged image\n`);
      return 1;
    }
    const args = ['restore', '-i', '-'];
    if (options.detach) args.push('--detach');
    for (const fd of options.skipFd) args.push('--skip-fd', fd);
    const child = spawn(helperPath(), args, { stdio: ['pipe', 'inherit', 'inherit'] });
    const exited = new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    // The helper may stop reading early (it refused the image): that is its verdict, not ours.
    await pipeline(createReadStream(path), child.stdin).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_PREMATURE_CLOSE') throw error;
    });
    return await exited;
  } catch (error) {
    return reportFailure(path, error);
  }
}
