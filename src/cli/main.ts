#!/usr/bin/env node
// The cryo-img command line. Each command is a small function over the library; errors about images
// are printed as one line naming the file, offset and what was expected, with exit status 1.
import { Command, InvalidArgumentError } from 'commander';
import { diffCommand } from './cmd-diff.js';
import { convertCommand } from './cmd-convert.js';
import { dumpCommand } from './cmd-dump.js';
import { dumpIncrementalCommand } from './cmd-dump-parent.js';
import { packCommand, squashCommand, unpackCommand } from './cmd-pack.js';
import { inspectCommand } from './cmd-inspect.js';
import { readCommand } from './cmd-read.js';
import { restoreCommand } from './cmd-restore.js';
import { rewriteCommand } from './cmd-rewrite.js';
import { verifyCommand } from './cmd-verify.js';
import { viewCommand } from './cmd-view.js';
import { parseAddress } from './units.js';

const program = new Command();

function integer(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return value;
}

function address(text: string): number {
  try {
    return parseAddress(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function repeat(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function collect(value: string, previous: number[]): number[] {
  return [...previous, integer(value)];
}

program
  .name('cryo-img')
  .description('Look inside, verify, dump and restore Linux process checkpoint images')
  .showHelpAfterError();

program
  .command('dump')
  .description('freeze a running process (and with --tree its descendants), write it to an image, let it run on')
  .argument('<pid>', 'process to dump', integer)
  .option('-o, --output <file>', 'image to write ("-" for stdout); default cryo-PID.cryo')
  .option('--tree', 'include every descendant process')
  .option('--kill', 'kill the dumped processes once the image is safely written')
  .option('--parent <base>', 'write an incremental, packed image against this earlier image (packed as the dump streams in)')
  .option('--level <n>', 'with --parent: codec level 1 to 9 (default 3)', integer)
  .option('-q, --quiet', 'with --parent: no summary')
  .action(async (pid: number, opts) => exit(opts.parent ? await dumpIncrementalCommand(pid, opts) : await dumpCommand(pid, opts)));

program
  .command('inspect')
  .description('summarise an image: process tree, threads, memory map, file descriptors')
  .argument('<image>', 'a .cryo image, a CRIU image directory or a container checkpoint archive')
  .option('--json', 'print the report as JSON (schema cryo-img.inspect/1, docs/CLI.md)')
  .option('--pid <pid>', 'only this process (repeatable)', collect, [])
  .option('--threads', 'show threads and registers')
  .option('--maps', 'show the memory map')
  .option('--fds', 'show file descriptors')
  .option('--pagemap', 'show the page map runs and their VMAs (default for CRIU checkpoints, like crit x rss)')
  .option('--env', 'show the environment (may hold secrets; never shown unless asked)')
  .action(async (image: string, opts) => exit(await inspectCommand(image, opts)));

program
  .command('read')
  .description("print a process's memory from the image (hexdump, or raw bytes with --raw)")
  .argument('<image>', 'a .cryo image, a CRIU image directory or a container checkpoint archive')
  .requiredOption('--pid <pid>', 'process', integer)
  .requiredOption('--addr <address>', 'start address (hex with 0x, or decimal)', address)
  .requiredOption('--len <bytes>', 'number of bytes', integer)
  .option('--raw', 'write the bytes themselves to stdout')
  .action(async (image: string, opts) => exit(await readCommand(image, opts)));

program
  .command('verify')
  .description('check every section and checksum; exit status 0 only for an intact image')
  .argument('<image>', 'a .cryo image')
  .option('--json', 'print the result as JSON')
  .action(async (image: string, opts) => exit(await verifyCommand(image, opts)));

program
  .command('restore')
  .description('bring a dumped process tree back to life with its original PIDs (the image is verified first)')
  .argument('<image>', 'a .cryo image')
  .option('--detach', 'return at once and leave the restored tree running')
  .option('--skip-fd <[pid:]fd>', 'replace a descriptor that cannot be restored with /dev/null (repeatable)', repeat, [])
  .option('--pid-map <map>', 'restore with new PIDs: OLD:NEW[,OLD:NEW...] or "auto" (rewrites on the fly)')
  .option('--relocate <old=new>', 'restore with files moved from OLD_PREFIX to NEW_PREFIX (repeatable)', repeat, [])
  .option('--relocate-fd <[pid:]fd=path>', 'restore one descriptor from another path (repeatable)', repeat, [])
  .action(async (image: string, opts) => exit(await restoreCommand(image, opts)));

program
  .command('rewrite')
  .description('change an image before restoring it: new PIDs, files at new paths (the input is never modified)')
  .argument('<input>', 'a .cryo image')
  .option('-o, --output <file>', 'the rewritten image')
  .option('--pid-map <map>', 'OLD:NEW[,OLD:NEW...], or "auto" for PIDs free on this host')
  .option('--relocate <old=new>', 'move paths under OLD_PREFIX to NEW_PREFIX (repeatable; longest prefix wins)', repeat, [])
  .option('--relocate-fd <[pid:]fd=path>', 'give one descriptor a new path (repeatable)', repeat, [])
  .option('--dry-run', 'print every change, field by field, and write nothing')
  .option('--check', 'check that relocated files exist here and match what the image recorded')
  .action(async (input: string, opts) => exit(await rewriteCommand(input, opts)));

program
  .command('view')
  .description('look inside an image (or compare two) in the browser: serves the viewer on 127.0.0.1 at a private URL')
  .argument('<image>', 'a .cryo image')
  .argument('[image2]', 'a second image, compared with the first')
  .option('--port <port>', 'port to listen on (default: a free one)', integer)
  .option('--no-open', 'only print the URL; do not open a browser')
  .action(async (image: string, image2: string | undefined, opts) => exit(await viewCommand(image2 ? [image, image2] : [image], opts)));

program
  .command('diff')
  .description('what changed between two images: processes, threads, memory maps, descriptors, environment, memory pages')
  .argument('<a>', 'the earlier image')
  .argument('<b>', 'the later image')
  .option('--json', 'print the diff as JSON (schema cryo-img.diff/1, docs/CLI.md)')
  .option('--bytes', 'list the changed byte ranges with their old and new bytes')
  .option('--max-ranges <n>', 'at most N byte ranges in all (default 1000; counts stay exact)', integer)
  .option('--pid <pid>', 'only this process (repeatable)', collect, [])
  .option('--env', 'show environment values (names only otherwise: they may hold secrets)')
  .option('-q, --quiet', 'no progress bar')
  .action(async (a: string, b: string, opts) => exit(await diffCommand(a, b, opts)));

program
  .command('convert')
  .description('write a CRIU checkpoint (image directory or container checkpoint archive) as one .cryo image')
  .argument('<input>', 'a CRIU image directory, or a .tar / .tar.gz / .tar.zst container checkpoint')
  .requiredOption('-o, --output <file>', 'the .cryo image to write (mode 0600, through a temporary file)')
  .option('--no-source-files', 'do not keep the CRIU image files verbatim in blobs (docs/CRIU.md)')
  .action(async (input: string, opts) => exit(await convertCommand(input, opts)));

program
  .command('pack')
  .description('compress an image: zero pages and duplicates stored once, page data compressed section by section; with --parent, an incremental image')
  .argument('<input>', 'the image to pack')
  .requiredOption('-o, --output <file>', 'the packed image ("-": stdout)')
  .option('--level <n>', 'codec level 1 (fastest) to 9 (default 3)', integer)
  .option('--parent <base>', 'store only what differs from this earlier image of the same processes')
  .option('--workers <n>', 'encoder threads (default: one per core; 0: none)', integer)
  .option('--no-dedup', 'do not look for identical pages')
  .option('-q, --quiet', 'no progress bar and no summary')
  .action(async (input: string, opts) => exit(await packCommand(input, opts)));

program
  .command('unpack')
  .description('write any image (packed, incremental) as a raw self-contained image')
  .argument('<input>', 'a packed or incremental image')
  .requiredOption('-o, --output <file>', 'the raw image ("-": stdout, e.g. into cryo-helper restore -i -)')
  .option('-q, --quiet', 'no progress bar and no summary')
  .action(async (input: string, opts) => exit(await unpackCommand(input, opts)));

program
  .command('squash')
  .description('resolve an incremental chain into one self-contained (packed) image')
  .argument('<tip>', 'the last image of the chain')
  .requiredOption('-o, --output <file>', 'the self-contained image')
  .option('--level <n>', 'codec level 1 to 9 (default 3)', integer)
  .option('--raw', 'write it unpacked')
  .option('--workers <n>', 'encoder threads (default: one per core)', integer)
  .option('-q, --quiet', 'no progress bar and no summary')
  .action(async (input: string, opts) => exit(await squashCommand(input, opts)));

function exit(status: number): void {
  process.exitCode = status;
}

await program.parseAsync(process.argv);
