// `cryo-img diff A B`: what changed between two checkpoints (processes, threads, memory maps, file
// descriptors, environment, and memory per VMA). Human output, or --json (schema cryo-img.diff/1).
import { diffImages, diffToJson, type FieldChange, type ImageDiff } from '../diff/index.js';
import { reportFailure } from './errors.js';
import { isCriuPath, openCriu } from '../criu/node.js';
import { loadWasm } from '../node.js';
import { openAnyImage } from './open.js';
import { progressBar } from './progress.js';
import { humanBytes } from './units.js';

export interface DiffCliOptions {
  json?: boolean;
  bytes?: boolean;
  maxRanges?: number;
  pid: number[];
  env?: boolean;
  quiet?: boolean;
}

const show = (v: unknown): string => {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'bigint') return '0x' + v.toString(16);
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (Array.isArray(v)) return JSON.stringify(v.map((x) => (typeof x === 'bigint' ? '0x' + x.toString(16) : x)));
  if (typeof v === 'object') return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? '0x' + x.toString(16) : x instanceof Uint8Array ? `<${x.length} bytes>` : x));
  return String(v);
};
const field = (c: FieldChange) => `${c.field} ${show(c.from)} -> ${show(c.to)}`;
const addr = (a: bigint) => a.toString(16);

export function formatDiff(diff: ImageDiff, options: { env?: boolean } = {}): string {
  const out: string[] = [];
  const p = diff.processes;
  out.push(`processes: ${p.changed.length} changed, ${p.unchanged.length} unchanged, ${p.added.length} added, ${p.removed.length} removed`);
  for (const x of p.added) out.push(`+ process ${x.pid} (${x.comm ?? '?'}) ${x.cmdline.join(' ')}`);
  for (const x of p.removed) out.push(`- process ${x.pid} (${x.comm ?? '?'}) ${x.cmdline.join(' ')}`);
  const t = diff.totals;
  out.push(`memory: ${t.pagesChanged} pages changed (${t.bytesChanged} bytes) of ${t.pagesCompared} compared, ${t.pagesAdded} added, ${t.pagesRemoved} removed`);
  for (const d of p.changed) {
    out.push('', `process ${d.pid} (${d.comm ?? '?'})`);
    for (const c of d.fields) out.push(`  ${field(c)}`);
    const th = d.threads;
    for (const tid of th.added) out.push(`  + thread ${tid}`);
    for (const tid of th.removed) out.push(`  - thread ${tid}`);
    for (const c of th.changed) {
      const regs = c.registers.map((r) => `${r.name} ${addr(r.from)}->${addr(r.to)}`);
      out.push(`  thread ${c.tid}: ${[...regs, ...c.changes.map(field)].join(', ')}`);
    }
    for (const v of d.vmas.added) out.push(`  + vma ${addr(v.start)}-${addr(v.end)} ${v.prot} ${v.name}`);
    for (const v of d.vmas.removed) out.push(`  - vma ${addr(v.start)}-${addr(v.end)} ${v.prot} ${v.name}`);
    for (const v of d.vmas.changed) out.push(`  ~ vma ${addr(v.to.start)}-${addr(v.to.end)} ${v.to.name}: ${v.kinds.join('+')}: ${v.changes.map(field).join(', ')}`);
    for (const f of d.fds.opened) out.push(`  + fd ${f.fd} ${f.type ?? ''} ${f.path ?? ''}`);
    for (const f of d.fds.closed) out.push(`  - fd ${f.fd} ${f.type ?? ''} ${f.path ?? ''}`);
    for (const f of d.fds.changed) out.push(`  ~ fd ${f.fd} ${f.path ?? ''}: ${f.changes.map(field).join(', ')}`);
    const env = d.environ;
    if (env.added.length + env.removed.length + env.changed.length) {
      if (options.env) {
        for (const n of env.added) out.push(`  + env ${n}`);
        for (const n of env.removed) out.push(`  - env ${n}`);
        for (const c of env.changed) out.push(`  ~ env ${c.name}: ${c.from} -> ${c.to}`);
      } else {
        out.push(`  environment: ${env.added.length} added, ${env.removed.length} removed, ${env.changed.length} changed (values with --env): ${[...env.added, ...env.removed, ...env.changed.map((c) => c.name)].join(' ')}`);
      }
    }
    const m = d.memory;
    for (const mv of m.moved ?? []) out.push(`  moved: ${mv.pages} page(s) ${addr(mv.from)} -> ${addr(mv.to)} (same content)`);
    if (m.regions.length) {
      out.push(`  memory: ${m.pagesChanged} pages changed (${m.bytesChanged} bytes) of ${m.pagesCompared} compared, ${m.pagesAdded} added, ${m.pagesRemoved} removed`);
      for (const r of m.regions) {
        const parts = [];
        if (r.pagesChanged) parts.push(`${r.pagesChanged} changed (${r.bytesChanged} bytes)`);
        if (r.pagesAdded) parts.push(`${r.pagesAdded} added`);
        if (r.pagesRemoved) parts.push(`${r.pagesRemoved} removed`);
        out.push(`    ${addr(r.start).padStart(12)}-${addr(r.end).padEnd(12)} ${r.prot} ${humanBytes(Number(r.end - r.start)).padStart(10)}  ${parts.join(', ')}  ${r.name}${r.presence !== 'both' ? ` [vma ${r.presence}]` : ''}`);
        if (r.changedPages.length && r.changedPages.length <= 8 && !r.ranges.length) out.push(`      pages: ${r.changedPages.map(addr).join(' ')}`);
        for (const g of r.ranges) out.push(`      ${addr(g.address)} +${g.length}: ${g.from} -> ${g.to}${g.length * 2 > g.from.length ? ' …' : ''}`);
      }
    }
  }
  if (diff.truncated) out.push('', 'note: page or byte-range lists were cut at their limits (counts are exact); see --max-ranges');
  return out.join('\n') + '\n';
}

export async function diffCommand(pathA: string, pathB: string, options: DiffCliOptions): Promise<number> {
  let context = pathA;
  try {
    // CRIU checkpoints (directories, archives) are read in place
    const open = async (path: string) => ((await isCriuPath(path)) ? openCriu(path) : openAnyImage(path));
    const a = await open(pathA);
    try {
      context = pathB;
      const b = await open(pathB);
      context = `${pathA} vs ${pathB}`;
      try {
        const bar = progressBar('diff', { quiet: options.quiet });
        const diff = await diffImages(a, b, {
          bytes: options.bytes ?? false,
          ...(options.maxRanges !== undefined ? { maxRanges: options.maxRanges } : {}),
          pids: options.pid,
          onProgress: (done, total) => bar.update(done, total),
          wasm: await loadWasm(),
        });
        bar.finish();
        if (options.json) {
          const json = diffToJson(diff, { a: pathA, b: pathB }) as Record<string, unknown>;
          if (!options.env) redactEnv(json);
          process.stdout.write(JSON.stringify(json, null, 2) + '\n');
        } else {
          process.stdout.write(formatDiff(diff, { env: options.env ?? false }));
        }
        return 0;
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
    }
  } catch (error) {
    return reportFailure(context, error);
  }
}

/** Without --env, environment values are left out of JSON (names only): they often hold secrets. */
function redactEnv(json: Record<string, unknown>): void {
  const processes = json.processes as { changed: { environ: { changed: { from: unknown; to: unknown }[] } }[] };
  for (const p of processes.changed) {
    for (const c of p.environ.changed) {
      c.from = null;
      c.to = null;
    }
  }
}
