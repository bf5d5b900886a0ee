// `cryo-img dump PID`: runs the native helper, which freezes, captures and writes the image itself
// (temporary file, mode 0600, renamed into place on success).
import { runHelper } from './helper.js';
import { reportFailure } from './errors.js';

export interface DumpOptions {
  output?: string;
  tree?: boolean;
  kill?: boolean;
}

export async function dumpCommand(pid: number, options: DumpOptions): Promise<number> {
  const output = options.output ?? `cryo-${pid}.cryo`;
  const args = ['dump', '--pid', String(pid), '-o', output];
  if (options.tree) args.push('--tree');
  if (options.kill) args.push('--kill');
  try {
    const status = await runHelper(args);
    if (status === 0 && output !== '-') process.stderr.write(`cryo-img: wrote ${output}\n`);
    return status;
  } catch (error) {
    return reportFailure(`dump ${pid}`, error);
  }
}
