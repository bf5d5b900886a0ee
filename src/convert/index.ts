/**
 * Converting a checkpoint image of any source (a CRIU checkpoint read in place, or another `.cryo`
 * image) into a `.cryo` image: {@link convertToCryo} writes the model through an {@link ImageWriter}.
 * Environment-neutral (no `node:` imports); page data is streamed in ≤ 1 MiB pieces, so memory stays
 * bounded whatever the size of the checkpoint.
 *
 * What is kept, and what a `.cryo` image cannot hold, is in docs/CRIU.md.
 *
 * ```ts
 * const image = await openImage('/var/lib/criu/dump');         // node.js: a CRIU directory or archive
 * await writeImageFile('dump.cryo', (w) => convertToCryo(image, w));
 * ```
 *
 * @module
 */
import { PAGE_SIZE } from '../core/format.js';
import { encodeRegisters } from '../core/metadata.js';
import {
  PageKind,
  type CheckpointImage, type Creds, type FdInfo, type MmInfo, type PageMapEntry, type ProcessInfo, type RawMap,
  type ThreadInfo, type VmaInfo,
} from '../core/model.js';
import { u64Bin, type ImageWriter } from '../core/writer.js';
import type { CriuCheckpointImage } from '../criu/model.js';

/** Options of {@link convertToCryo}. */
export interface ConvertOptions {
  /** IMAGE_META `tool`; default `"cryo-img convert"` (the source's tool is kept in `source.tool`). */
  tool?: string;
  /**
   * CRIU sources: keep every file of the image directory except `pages-*.img` verbatim, one blob
   * each, listed in IMAGE_META `criu.files` (name → blob id). Nothing CRIU recorded is then lost,
   * even what the model has no field for (namespaces, mounts, cgroups, seccomp filters, socket
   * queues, ...). Default true.
   */
  keepSourceFiles?: boolean;
  /** Called after each process's pages are written. */
  onProgress?: (done: { pid: number; pages: number }) => void;
}

/** What {@link convertToCryo} wrote. */
export interface ConvertSummary {
  processes: number;
  /** Pages written to the page stores (all processes). */
  pages: number;
  /** Pages held by the source outside the processes' own page maps (CRIU shared memory), now in them. */
  sharedPages: number;
  /** Blobs of the model (pipe data, deleted files). */
  blobs: number;
  /** Source files kept verbatim (CRIU), by name. */
  keptFiles: string[];
  keptBytes: number;
}

/** Pages per read and per PAGEDATA section (1 MiB). */
const CHUNK_PAGES = 256;
const PAGE = BigInt(PAGE_SIZE);

/** A run to copy: `pages` pages from `vaddr` go to store indices `store…`. */
interface CopyRun {
  vaddr: bigint;
  pages: number;
  store: number;
}

interface ProcessPlan {
  pageMap: PageMapEntry[];
  /** In ascending store order, contiguous from 0. */
  copies: CopyRun[];
  storeCount: number;
  sharedPages: number;
}

function isCriu(image: CheckpointImage): image is CriuCheckpointImage {
  return (image as Partial<CriuCheckpointImage>).format === 'criu' && 'checkpoint' in image;
}

/** A 64-bit value as a msgpack integer: a number when exact, else a bigint (uint64 / int64). */
function int64(value: bigint | null): number | bigint | null {
  if (value === null) return null;
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

const bin64 = (value: bigint | null): Uint8Array | null => (value === null ? null : u64Bin(value));

/**
 * Write `image` as a `.cryo` image: IMAGE_META, then per process PROCESS and PAGEMAP, then BLOBs, then
 * PAGEDATA (FORMAT §4 order). Does not call `writer.finish()` (`writeImageFile` does).
 *
 * The page map of each process holds every page the source stores for it: its own page map, and pages
 * the source keeps elsewhere (CRIU shared memory: memfd, shared anonymous, SysV), found by reading the
 * VMAs whose `pagesStored` exceeds their own page-map pages. Store indices are renumbered to `0…N−1`
 * (unchanged when the source's were already so).
 */
export async function convertToCryo(image: CheckpointImage, writer: ImageWriter, options: ConvertOptions = {}): Promise<ConvertSummary> {
  const plans = new Map<number, ProcessPlan>();
  for (const p of image.processes) plans.set(p.pid, await planProcess(image, p));

  // blobs: what descriptors name, and (CRIU) every blob of the source, e.g. deleted mapped files
  const blobIds = new Set<number>();
  for (const p of image.processes) {
    for (const f of p.fds) {
      if (f.contentBlob !== null) blobIds.add(f.contentBlob);
      if (f.pipe?.dataBlob != null) blobIds.add(f.pipe.dataBlob);
    }
  }
  if (isCriu(image)) for (const id of image.blobIds) blobIds.add(id);
  const modelBlobs = [...blobIds].sort((a, b) => a - b);

  const kept: { name: string; id: number }[] = [];
  if (isCriu(image) && options.keepSourceFiles !== false) {
    let next = (modelBlobs[modelBlobs.length - 1] ?? 0) + 1;
    for (const name of await image.checkpoint.list()) {
      if (/^pages-\d+\.img$/.test(name)) continue;
      kept.push({ name, id: next++ });
    }
  }

  const meta = image.meta;
  const metaMap: RawMap = {
    format: 'cryo',
    tool: options.tool ?? 'cryo-img convert',
    createdAt: meta.createdAt,
    host: meta.host,
    rootPid: meta.rootPid,
    pids: image.processes.map((p) => p.pid),
    options: meta.options,
    source: { format: meta.format, tool: meta.tool },
  };
  if (isCriu(image)) {
    const raw = meta.raw;
    metaMap['criu'] = {
      label: image.label,
      inventory: raw['inventory'],
      ...(raw['container'] !== undefined ? { container: raw['container'] } : {}),
      ...(raw['spec'] !== undefined ? { spec: raw['spec'] } : {}),
      ...(raw['containerStatus'] !== undefined ? { containerStatus: raw['containerStatus'] } : {}),
      files: Object.fromEntries(kept.map((k) => [k.name, k.id])),
    };
  }
  await writer.addImageMeta(metaMap);

  for (const p of image.processes) {
    const plan = plans.get(p.pid)!;
    await writer.addProcess(processMap(p));
    if (plan.pageMap.length) await writer.addPageMap(p.pid, plan.pageMap);
  }

  for (const id of modelBlobs) await writer.addBlob(id, await image.readBlob(id));
  let keptBytes = 0;
  if (isCriu(image)) {
    for (const k of kept) {
      const bytes = await image.checkpoint.dir.read(k.name);
      keptBytes += bytes.length;
      await writer.addBlob(k.id, bytes);
    }
  }

  let pages = 0;
  let sharedPages = 0;
  for (const p of image.processes) {
    const plan = plans.get(p.pid)!;
    await copyPages(image, writer, p.pid, plan);
    pages += plan.storeCount;
    sharedPages += plan.sharedPages;
    options.onProgress?.({ pid: p.pid, pages: plan.storeCount });
  }
  return { processes: image.processes.length, pages, sharedPages, blobs: modelBlobs.length, keptFiles: kept.map((k) => k.name), keptBytes };
}

// ---- page maps ----------------------------------------------------------------------------------

/** DATA pages of `entries` (sorted, from index `from`) inside [start, end). */
function dataPagesIn(entries: readonly PageMapEntry[], from: number, start: bigint, end: bigint): number {
  let n = 0;
  for (let i = from; i < entries.length && entries[i]!.vaddr < end; i++) {
    const e = entries[i]!;
    if (e.kind === PageKind.ZERO) continue;
    const s = e.vaddr > start ? e.vaddr : start;
    const eEnd = e.vaddr + BigInt(e.pageCount) * PAGE;
    const t = eEnd < end ? eEnd : end;
    if (t > s) n += Number((t - s) / PAGE);
  }
  return n;
}

/** Page-aligned ranges of [start, end) not covered by `entries` (sorted by vaddr, from index `from`). */
function uncovered(entries: readonly PageMapEntry[], from: number, start: bigint, end: bigint): { start: bigint; end: bigint }[] {
  const out: { start: bigint; end: bigint }[] = [];
  let at = start;
  for (let i = from; i < entries.length; i++) {
    const e = entries[i]!;
    const eEnd = e.vaddr + BigInt(e.pageCount) * PAGE;
    if (eEnd <= at) continue;
    if (e.vaddr >= end) break;
    if (e.vaddr > at) out.push({ start: at, end: e.vaddr });
    at = eEnd;
    if (at >= end) break;
  }
  if (at < end) out.push({ start: at, end });
  return out;
}

/** Stored pages of [start, end) as the source reports them (its reads), as sorted page ranges. */
async function probeStored(image: CheckpointImage, pid: number, start: bigint, end: bigint): Promise<{ start: bigint; end: bigint }[]> {
  const out: { start: bigint; end: bigint }[] = [];
  const add = (s: bigint, e: bigint) => {
    const last = out[out.length - 1];
    if (last && last.end === s) last.end = e; else out.push({ start: s, end: e });
  };
  const step = BigInt(CHUNK_PAGES) * PAGE;
  for (let at = start; at < end; at += step) {
    const stop = at + step < end ? at + step : end;
    const r = await image.readMemoryDetailed(pid, at, Number(stop - at));
    let cur = at;
    for (const gap of r.notStored) {
      const gs = gap.start > cur ? gap.start : cur;
      if (gs > cur) add(cur, gs);
      if (gap.end > cur) cur = gap.end;
    }
    if (cur < stop) add(cur, stop);
  }
  return out;
}

/**
 * The page map a `.cryo` image of `image` would have for process `p`: its own page map, plus the pages
 * the source holds elsewhere (CRIU shared memory), as DATA runs (store indices renumbered). What `diff`
 * compares for a source that is not a `.cryo` image.
 */
export async function storedPageMap(image: CheckpointImage, p: ProcessInfo): Promise<PageMapEntry[]> {
  return (await planProcess(image, p)).pageMap;
}

async function planProcess(image: CheckpointImage, p: ProcessInfo): Promise<ProcessPlan> {
  const own = [...p.pageMap].sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
  // pages the source holds for a VMA beyond its own page map (CRIU: shared memory objects)
  const extra: PageMapEntry[] = [];
  let sharedPages = 0;
  // VMAs and runs are both sorted and do not overlap: one sweep
  const vmas = [...p.vmas].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  let first = 0; // first run not ending before the VMA
  for (const v of vmas) {
    while (first < own.length && own[first]!.vaddr + BigInt(own[first]!.pageCount) * PAGE <= v.start) first++;
    if (v.pagesStored <= dataPagesIn(own, first, v.start, v.end)) continue;
    for (const hole of uncovered(own, first, v.start, v.end)) {
      for (const r of await probeStored(image, p.pid, hole.start, hole.end)) {
        const pages = Number((r.end - r.start) / PAGE);
        extra.push({ vaddr: r.start, pageCount: pages, kind: PageKind.DATA, storeIndex: -1 });
        sharedPages += pages;
      }
    }
  }

  // store indices: the source's order (so they stay the same when they were 0…N−1), extra pages last;
  // runs naming the same source pages share them
  const data = own.filter((e) => e.kind !== PageKind.ZERO).sort((a, b) => a.storeIndex - b.storeIndex || (a.vaddr < b.vaddr ? -1 : 1));
  const renumbered = new Map<PageMapEntry, number>();
  const sameRun = new Map<string, number>();
  const copies: CopyRun[] = [];
  let next = 0;
  for (const e of [...data, ...extra]) {
    const key = e.storeIndex >= 0 ? `${e.storeIndex}/${e.pageCount}` : null;
    const seen = key !== null ? sameRun.get(key) : undefined;
    if (seen !== undefined) { renumbered.set(e, seen); continue; }
    renumbered.set(e, next);
    if (key !== null) sameRun.set(key, next);
    copies.push({ vaddr: e.vaddr, pages: e.pageCount, store: next });
    next += e.pageCount;
  }
  const pageMap = [...own, ...extra]
    .map((e) => (e.kind === PageKind.ZERO
      ? { vaddr: e.vaddr, pageCount: e.pageCount, kind: PageKind.ZERO, storeIndex: 0 }
      : { vaddr: e.vaddr, pageCount: e.pageCount, kind: PageKind.DATA, storeIndex: renumbered.get(e)! }))
    .sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
  return { pageMap, copies, storeCount: next, sharedPages };
}

/**
 * Stream a process's pages, in store order, into PAGEDATA sections of 256 pages (1 MiB; the last one
 * shorter). The next read is in flight while a section is written; a read of a whole section is handed
 * to the writer as it is (no copy). At most three 1 MiB buffers are alive.
 */
async function copyPages(image: CheckpointImage, writer: ImageWriter, pid: number, plan: ProcessPlan): Promise<void> {
  // the reads, cut so that each fills the current section up to its end at most
  const reads: { address: bigint; pages: number }[] = [];
  let fill = 0;
  for (const run of plan.copies) {
    for (let done = 0; done < run.pages;) {
      const n = Math.min(run.pages - done, CHUNK_PAGES - fill);
      reads.push({ address: run.vaddr + BigInt(done) * PAGE, pages: n });
      done += n;
      fill = (fill + n) % CHUNK_PAGES;
    }
  }
  const start = (i: number) => {
    const p = image.readMemoryDetailed(pid, reads[i]!.address, reads[i]!.pages * PAGE_SIZE);
    p.catch(() => undefined); // awaited below; a write failing first must not leave it unhandled
    return p;
  };
  let buffer: Uint8Array | null = null; // a fresh one per section: the writer may keep what it is given
  let filled = 0;
  let first = 0;
  let next = reads.length ? start(0) : null;
  for (let i = 0; i < reads.length; i++) {
    const r = await next!;
    next = i + 1 < reads.length ? start(i + 1) : null;
    if (r.notStored.length) {
      const g = r.notStored[0]!;
      throw new Error(`process ${pid}: the source's page map holds 0x${g.start.toString(16)}-0x${g.end.toString(16)}, but reading it gives no stored page`);
    }
    const n = reads[i]!.pages;
    if (filled === 0 && n === CHUNK_PAGES) {
      await writer.addPageData(pid, first, r.bytes);
      first += n;
      continue;
    }
    buffer ??= new Uint8Array(CHUNK_PAGES * PAGE_SIZE);
    buffer.set(r.bytes, filled * PAGE_SIZE);
    filled += n;
    if (filled === CHUNK_PAGES) {
      await writer.addPageData(pid, first, buffer);
      first += filled;
      filled = 0;
      buffer = null;
    }
  }
  if (filled) await writer.addPageData(pid, first, buffer!.subarray(0, filled * PAGE_SIZE));
}

// ---- metadata maps (FORMAT §6) --------------------------------------------------------------------

function credsMap(c: Creds | null): RawMap | null {
  if (!c) return null;
  return {
    uid: c.uid, gid: c.gid, groups: c.groups,
    capInh: bin64(c.capInh), capPrm: bin64(c.capPrm), capEff: bin64(c.capEff), capBnd: bin64(c.capBnd), capAmb: bin64(c.capAmb),
    noNewPrivs: c.noNewPrivs, seccomp: c.seccomp,
  };
}

function mmMap(mm: MmInfo | null): RawMap | null {
  if (!mm) return null;
  return Object.fromEntries(Object.entries(mm).map(([k, v]) => [k, int64(v as bigint | null)]));
}

function threadMap(t: ThreadInfo): RawMap {
  return {
    tid: t.tid,
    comm: t.comm,
    state: t.state,
    regs: t.registers ? encodeRegisters(t.registers) : null,
    restart: t.restart,
    xstate: t.xstate,
    xfeatures: int64(t.xfeatures),
    fsBase: int64(t.fsBase),
    gsBase: int64(t.gsBase),
    sigmask: bin64(t.sigmask),
    pending: t.pending,
    clearChildTid: int64(t.clearChildTid),
    robustList: t.robustList && { head: int64(t.robustList.head), len: t.robustList.len },
    rseq: t.rseq && { ptr: int64(t.rseq.ptr), size: t.rseq.size, signature: t.rseq.signature },
    sigaltstack: t.sigaltstack && { sp: int64(t.sigaltstack.sp), size: t.sigaltstack.size, flags: t.sigaltstack.flags },
  };
}

function vmaMap(v: VmaInfo): RawMap {
  return {
    start: int64(v.start), end: int64(v.end), prot: v.prot, shared: v.shared, offset: int64(v.offset),
    dev: v.dev ?? undefined, inode: v.inode, name: v.name, path: v.path, kind: v.kind, vmFlags: v.vmFlags,
  };
}

function fdMap(f: FdInfo): RawMap {
  return {
    fd: f.fd, type: f.type, path: f.path, flags: f.flags, cloexec: f.cloexec, pos: f.pos, mntId: f.mntId,
    mode: f.mode, size: f.size, dev: f.dev, rdev: f.rdev, inode: f.inode, nlink: f.nlink, mtime: int64(f.mtime),
    deleted: f.deleted, contentBlob: f.contentBlob,
    pipe: f.pipe && { inode: f.pipe.inode, dataBlob: f.pipe.dataBlob, dataLength: f.pipe.dataLength },
    socket: f.socket && { ...f.socket },
    fdinfo: { ...f.fdinfo },
  };
}

/** The PROCESS map (FORMAT §6.2) of a model process; decoding it gives the same model. */
export function processMap(p: ProcessInfo): RawMap {
  return {
    pid: p.pid, ppid: p.ppid, pgid: p.pgid, sid: p.sid,
    comm: p.comm, state: p.state, cmdline: p.cmdline, environ: p.environ,
    exe: p.exe, cwd: p.cwd, root: p.root, umask: p.umask, personality: p.personality,
    creds: credsMap(p.creds),
    rlimits: p.rlimits.map((r) => [int64(r.soft), int64(r.hard)]),
    mm: mmMap(p.mm),
    auxv: p.auxv,
    sigactions: p.sigactions.map((s) => s && { handler: int64(s.handler), flags: s.flags, restorer: int64(s.restorer), mask: u64Bin(s.mask) }),
    pendingShared: p.pendingShared,
    threads: p.threads.map(threadMap),
    vmas: p.vmas.map(vmaMap),
    fds: p.fds.map(fdMap),
  };
}
