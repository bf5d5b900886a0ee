// rewriteImage() for Node: PID checks against this host, and the output written atomically
// (temporary file, mode 0600, renamed into place; the input is only read).
import { existsSync, readFileSync } from 'node:fs';
import { openCryoImage as openImage, writeImageFile, type CryoImage } from '../node.js';
import type { ImageWriter } from '../core/writer.js';
import { autoPidMap, checkPidMap, parsePidMap, type PidMap } from './pid-map.js';
import { planRewrite, type FdRelocation, type RewritePlan } from './plan.js';
import { parseRelocation, RewriteOptionError } from './relocate.js';
import { writeRewrite } from './stream.js';
import { refuseOverwritingInputs } from '../inputs-guard.js';

export interface RewriteOptions {
  /** "OLD:NEW,..." or "auto". */
  pidMap?: string;
  /** "OLD_PREFIX=NEW_PREFIX" each. */
  relocate?: string[];
  /** "N=PATH" or "PID:N=PATH" each. */
  relocateFd?: string[];
}

export function pidInUse(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

function pidMax(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim()) || 32768;
  } catch {
    return 32768;
  }
}

/** Every PID and TID recorded in the image. */
export function imageIds(image: CryoImage): number[] {
  return image.processes.flatMap((p) => [p.pid, ...p.threads.map((t) => t.tid)]);
}

export function resolvePidMap(image: CryoImage, text: string | undefined): PidMap | undefined {
  if (text === undefined) return undefined;
  const ids = [...new Set(imageIds(image))];
  if (text === 'auto') return autoPidMap(ids, pidInUse, pidMax());
  return checkPidMap(parsePidMap(text), ids, pidInUse);
}

export function parseFdRelocation(text: string): FdRelocation {
  const match = /^(?:(\d+):)?(\d+)=(\/.*)$/.exec(text);
  if (!match) throw new RewriteOptionError(`--relocate-fd '${text}': expected [PID:]FD=/absolute/path`);
  return { ...(match[1] ? { pid: Number(match[1]) } : {}), fd: Number(match[2]), path: match[3]! };
}

/** Plans a rewrite of an open image from CLI-style options. */
export async function planFromOptions(image: CryoImage, options: RewriteOptions): Promise<RewritePlan> {
  const pidMap = resolvePidMap(image, options.pidMap);
  return planRewrite(image, {
    ...(pidMap ? { pidMap } : {}),
    relocations: (options.relocate ?? []).map(parseRelocation),
    fdRelocations: (options.relocateFd ?? []).map(parseFdRelocation),
  });
}

/** Rewrites `input` into `output`. Returns the plan that was applied. */
export async function rewriteImage(input: string, output: string, options: RewriteOptions): Promise<RewritePlan> {
  await refuseOverwritingInputs(output, [input]);
  const image = await openImage(input);
  try {
    const plan = await planFromOptions(image, options);
    await writeImageFile(output, (writer: ImageWriter) => writeRewrite(image, plan, writer));
    return plan;
  } finally {
    await image.close();
  }
}
