// `cryo-img inspect`: one report built from the image model, printed as JSON (--json) or as text.
// The JSON shape is the stable schema documented in docs/CLI.md; the text is rendered from the same
// report so the two never disagree.
import type { CheckpointImage, ProcessInfo, ThreadInfo, VmaInfo, FdInfo } from '../core/model.js';
import { PageKind, REGISTER_NAMES } from '../core/model.js';
import { openFlagNames, protString } from './names.js';

export const INSPECT_SCHEMA = 'cryo-img.inspect/1';
const PAGE_SIZE = 4096;

export interface InspectOptions {
  /** Only these processes (all when empty). */
  pids: number[];
  threads: boolean;
  maps: boolean;
  fds: boolean;
  env: boolean;
  /** The page map runs and the VMAs they fall in (what `crit x DIR rss` shows). Default false. */
  pagemap?: boolean;
}

export interface ImageSummary {
  path: string;
  bytes: number;
  sections: number | null;
}

const hex = (value: bigint | number | null | undefined): string | null =>
  value === null || value === undefined ? null : `0x${value.toString(16)}`;

export function buildInspectReport(image: CheckpointImage, summary: ImageSummary, options: InspectOptions) {
  const meta = image.meta;
  const chosen = options.pids.length ? image.processes.filter((p) => options.pids.includes(p.pid)) : image.processes;
  const missing = options.pids.filter((pid) => !image.process(pid));
  if (missing.length) throw new Error(`no process ${missing.join(', ')} in this image (it holds ${image.processes.map((p) => p.pid).join(', ')})`);
  return {
    schema: INSPECT_SCHEMA,
    image: {
      path: summary.path,
      bytes: summary.bytes,
      sections: summary.sections,
      format: meta.format,
      tool: meta.tool,
      createdAt: meta.createdAt === null ? null : new Date(meta.createdAt).toISOString(),
      host: meta.host,
      rootPid: meta.rootPid,
      pids: image.processes.map((p) => p.pid),
    },
    processes: chosen.map((process) => processReport(process, options)),
  };
}

export type InspectReport = ReturnType<typeof buildInspectReport>;
export type ProcessReport = ReturnType<typeof processReport>;

function processReport(p: ProcessInfo, options: InspectOptions) {
  const mapped = p.vmas.reduce((sum, v) => sum + Number(v.end - v.start), 0);
  const stored = p.vmas.reduce((sum, v) => sum + v.pagesStored, 0);
  const zero = p.vmas.reduce((sum, v) => sum + v.zeroPages, 0);
  return {
    pid: p.pid,
    ppid: p.ppid,
    pgid: p.pgid,
    sid: p.sid,
    comm: p.comm,
    state: p.state,
    cmdline: p.cmdline,
    exe: p.exe,
    cwd: p.cwd,
    root: p.root,
    umask: p.umask,
    threadCount: p.threads.length,
    memory: {
      vmas: p.vmas.length,
      mappedBytes: mapped,
      storedBytes: stored * PAGE_SIZE,
      zeroBytes: zero * PAGE_SIZE,
    },
    fdCount: p.fds.length,
    ...(options.threads ? { threads: p.threads.map(threadReport) } : {}),
    ...(options.maps ? { maps: p.vmas.map(vmaReport) } : {}),
    ...(options.fds ? { fds: p.fds.map(fdReport) } : {}),
    ...(options.pagemap ? { pageMap: pageMapReport(p) } : {}),
    ...(options.env ? { environ: p.environ } : {}),
  };
}

function threadReport(t: ThreadInfo) {
  const registers = t.registers
    ? Object.fromEntries(REGISTER_NAMES.map((name) => [name, hex(t.registers![name])]))
    : null;
  return {
    tid: t.tid,
    comm: t.comm,
    state: t.state,
    restart: t.restart,
    registers,
    fsBase: hex(t.fsBase),
    gsBase: hex(t.gsBase),
    sigmask: hex(t.sigmask),
    xstateBytes: t.xstate ? t.xstate.length : null,
  };
}

function vmaReport(v: VmaInfo) {
  return {
    start: hex(v.start)!,
    end: hex(v.end)!,
    size: Number(v.end - v.start),
    prot: protString(v.prot, v.shared),
    offset: hex(v.offset),
    kind: v.kind,
    name: v.name,
    path: v.path,
    pagesStored: v.pagesStored,
    zeroPages: v.zeroPages,
  };
}

/** Each run of the page map, with the VMAs it falls in (both are sorted by address). */
function pageMapReport(p: ProcessInfo) {
  let v = 0;
  return p.pageMap.map((run) => {
    const end = run.vaddr + BigInt(run.pageCount * PAGE_SIZE);
    while (v < p.vmas.length && p.vmas[v]!.end <= run.vaddr) v++;
    const vmas: string[] = [];
    for (let i = v; i < p.vmas.length && p.vmas[i]!.start < end; i++) vmas.push(hex(p.vmas[i]!.start)!);
    return {
      vaddr: hex(run.vaddr)!,
      pages: run.pageCount,
      kind: run.kind === PageKind.ZERO ? 'zero' : 'data',
      storeIndex: run.kind === PageKind.ZERO ? null : run.storeIndex,
      vmas,
    };
  });
}

function fdReport(f: FdInfo) {
  return {
    fd: f.fd,
    type: f.type,
    path: f.path,
    flags: f.flags,
    flagNames: f.flags === null ? null : openFlagNames(f.flags),
    cloexec: f.cloexec,
    pos: f.pos,
    size: f.size,
    deleted: f.deleted,
    ...(f.pipe ? { pipe: f.pipe } : {}),
    ...(f.socket ? { socket: f.socket } : {}),
  };
}
