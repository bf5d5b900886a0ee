// `cryo-img restore IMG`: validate the whole image first (so a corrupt image is refused before any
// process exists), then stream it to the helper's stdin. Streaming, not a path, so that rewritten (and
// later packed) images are produced on the fly without a temporary file: with --pid-map or
// --relocate the rewrite happens while the bytes flow to the helper.
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { loadWasm, openCryoImage as openImage } from '../node.js';
import { ImageWriter, type ByteSink } from '../core/writer.js';
import { planFromOptions, type RewriteOptions } from '../rewrite/node.js';
import { writeRewrite } from '../rewrite/stream.js';
import { isPlainImage } from '../codec/pages.js';
import { unpackImage } from '../pack/unpack.js';
import { verifyImageFile } from './verify.js';
import { helperPath } from './helper.js';
import { reportFailure } from './errors.js';

export interface RestoreCliOptions extends RewriteOptions {
  detach?: boolean;
  skipFd: string[];
}

/** A sink into a child's stdin that respects backpressure. */
class StdinSink implements ByteSink {
  constructor(private readonly stream: Writable) {}

  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.stream.once('error', onError);
      const flushed = this.stream.write(bytes, (error) => {
        this.stream.off('error', onError);
        if (error) reject(error);
        else if (flushed) resolve();
      });
      if (!flushed) this.stream.once('drain', () => resolve());
    });
  }
}

const isBrokenPipe = (error: NodeJS.ErrnoException) =>
  error.code === 'EPIPE' || error.code === 'ERR_STREAM_PREMATURE_CLOSE' || error.code === 'ERR_STREAM_DESTROYED';

export async function restoreCommand(path: string, options: RestoreCliOptions): Promise<number> {
  try {
    const report = await verifyImageFile(path);
    if (!report.ok) {
      for (const problem of report.problems) process.stderr.write(`cryo-img: ${path}: ${problem}\n`);
      process.stderr.write(`cryo-img: ${path}: refusing to restore a damaged image\n`);
      return 1;
    }
    const rewriting = options.pidMap !== undefined || (options.relocate?.length ?? 0) > 0 || (options.relocateFd?.length ?? 0) > 0;
    // Packed and incremental images are unpacked on the fly into the helper's stdin (it reads codec 0).
    let image: Awaited<ReturnType<typeof openImage>> | undefined = await openImage(path);
    const packed = !isPlainImage(image);
    if (!rewriting && !packed) {
      await image.close();
      image = undefined;
    }
    try {
      if (rewriting && packed) throw new Error('restore with --pid-map or --relocate needs a raw image: unpack it first (cryo-img unpack)');
      // Plan before starting the helper: a bad map is refused before anything is created.
      const plan = image && rewriting ? await planFromOptions(image, options) : undefined;
      for (const warning of plan?.warnings ?? []) process.stderr.write(`cryo-img: warning: ${warning}\n`);
      const moved = image && plan ? image.processes.filter((p) => plan!.ownerMap(p.pid) !== p.pid) : [];
      if (moved.length) {
        process.stderr.write(`cryo-img: restoring with new PIDs: ${moved.map((p) => `${p.pid}->${plan!.ownerMap(p.pid)}`).join(' ')}\n`);
      }
      const args = ['restore', '-i', '-'];
      if (options.detach) args.push('--detach');
      for (const fd of options.skipFd) args.push('--skip-fd', fd);
      const child = spawn(helperPath(), args, { stdio: ['pipe', 'inherit', 'inherit'] });
      const exited = exitStatus(child);
      child.stdin!.on('error', () => undefined); // EPIPE when the helper refuses early: reported by the writes, and by its exit status
      // The helper may stop reading early (it refused the image): that is its verdict, not ours.
      const feed = image && plan
        ? (async () => {
            const writer = new ImageWriter(new StdinSink(child.stdin!), await loadWasm());
            await writeRewrite(image, plan, writer);
            await writer.finish();
            child.stdin!.end();
          })()
        : image && packed
          ? (async () => {
              const writer = new ImageWriter(new StdinSink(child.stdin!), await loadWasm());
              await unpackImage(image, writer);
              await writer.finish();
              child.stdin!.end();
            })()
          : pipeline(createReadStream(path), child.stdin!);
      await feed.catch((error: NodeJS.ErrnoException) => {
        if (!isBrokenPipe(error)) {
          child.kill('SIGKILL');
          throw error;
        }
      });
      return await exited;
    } finally {
      await image?.close();
    }
  } catch (error) {
    return reportFailure(path, error);
  }
}

function exitStatus(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
