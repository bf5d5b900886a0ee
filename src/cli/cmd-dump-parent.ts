// `cryo-img dump PID --parent BASE`: an incremental, packed image written directly — the helper dumps
// to a pipe (`-o -`) and the stream is packed as it arrives against BASE (no raw temporary file).
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { loadWasm, writeImageFile } from '../node.js';
import { packStream } from '../pack/pack.js';
import { parentPathFor, WorkerEncoder } from '../pack/node.js';
import { reportFailure } from './errors.js';
import { refuseOverwritingInputs } from '../inputs-guard.js';
import { helperPath } from './helper.js';
import { openAnyImage } from './open.js';
import { humanBytes } from './units.js';

export interface DumpParentOptions {
  output?: string;
  tree?: boolean;
  kill?: boolean;
  parent: string;
  level?: number;
  quiet?: boolean;
}

export async function dumpIncrementalCommand(pid: number, options: DumpParentOptions): Promise<number> {
  const output = options.output ?? `cryo-${pid}.cryo`;
  if (output === '-') return reportFailure(`dump ${pid}`, new Error('dump --parent writes a file, not stdout'));
  try {
    const parent = await openAnyImage(options.parent);
    try {
      const wasm = await loadWasm();
      const encoder = await WorkerEncoder.create(options.level ?? 3);
      try {
        await refuseOverwritingInputs(output, [options.parent]);
        const args = ['dump', '--pid', String(pid), '-o', '-'];
        if (options.tree) args.push('--tree');
        if (options.kill) args.push('--kill');
        let stats;
        // The helper starts only once the output file exists, and on any failure it is told to stop
        // (SIGTERM: it releases the target) and its pipe is closed, so a frozen target never waits on us.
        const written = await writeImageFile(output, async (writer) => {
          const child = spawn(helperPath(), args, { stdio: ['ignore', 'pipe', 'inherit'] });
          // Take the helper's output at once: if the helper exits before anyone reads its stdout, Node
          // drains that stream to let it close, and the image's first bytes would be thrown away.
          const image = child.stdout!.pipe(new PassThrough({ highWaterMark: 4 << 20 }));
          const exited = new Promise<number>((resolve, reject) => {
            child.once('error', reject);
            child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
          });
          try {
            stats = await packStream(image, wasm, writer, {
              parent, parentPath: parentPathFor(output, options.parent), encoder, level: options.level ?? 3,
            });
          } catch (error) {
            image.destroy();
            child.stdout!.destroy();
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
            const status = await exited;
            if (status !== 0) throw new Error(`cryo-helper dump failed (exit status ${status})`, { cause: error });
            throw error;
          }
          const status = await exited;
          if (status !== 0) throw new Error(`cryo-helper dump failed (exit status ${status})`);
        });
        if (!options.quiet) {
          const s = stats!;
          process.stderr.write(`cryo-img: wrote ${output} (${humanBytes(written.fileLength)}, incremental on ${options.parent}): ` +
            `${s.parent} pages from the parent, ${s.delta} as deltas, ${s.stored} stored, ${s.zero} zero\n`);
        }
        return 0;
      } finally {
        await encoder.close();
      }
    } finally {
      await parent.close();
    }
  } catch (error) {
    return reportFailure(`dump ${pid}`, error);
  }
}
