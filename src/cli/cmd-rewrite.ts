// `cryo-img rewrite IN -o OUT`: give processes new PIDs and point their files at new paths.
// --dry-run prints every change field by field and writes nothing.
import { openCryoImage as openImage, writeImageFile } from '../node.js';
import { checkRelocatedFiles } from '../rewrite/check.js';
import { planFromOptions, type RewriteOptions } from '../rewrite/node.js';
import type { RewritePlan } from '../rewrite/plan.js';
import { writeRewrite } from '../rewrite/stream.js';
import { reportFailure } from './errors.js';
import { refuseOverwritingInputs } from '../inputs-guard.js';

export interface RewriteCliOptions extends RewriteOptions {
  output?: string;
  dryRun?: boolean;
  check?: boolean;
}

export function describePlan(plan: RewritePlan): string {
  const lines = plan.changes.map((c) => `${c.where}: ${c.field}: ${c.from} -> ${c.to}`);
  if (!lines.length) lines.push('no changes');
  for (const warning of plan.warnings) lines.push(`warning: ${warning}`);
  return lines.join('\n') + '\n';
}

export async function rewriteCommand(input: string, options: RewriteCliOptions): Promise<number> {
  try {
    if (!options.dryRun && !options.output) throw new Error('an output is required: -o OUT (or --dry-run)');
    if (options.output) await refuseOverwritingInputs(options.output, [input]);
    const image = await openImage(input);
    try {
      const plan = await planFromOptions(image, options);
      if (options.check) {
        const problems = checkRelocatedFiles(image, plan);
        for (const problem of problems) process.stderr.write(`cryo-img: check: ${problem}\n`);
        if (problems.length) {
          process.stderr.write(`cryo-img: ${input}: ${problems.length} relocated file(s) do not match the image; nothing written\n`);
          return 1;
        }
      }
      if (options.dryRun) {
        process.stdout.write(describePlan(plan));
        return 0;
      }
      for (const warning of plan.warnings) process.stderr.write(`cryo-img: warning: ${warning}\n`);
      await writeImageFile(options.output!, (writer) => writeRewrite(image, plan, writer));
      process.stderr.write(`cryo-img: wrote ${options.output} (${plan.changes.length} changes)\n`);
      return 0;
    } finally {
      await image.close();
    }
  } catch (error) {
    return reportFailure(input, error);
  }
}
