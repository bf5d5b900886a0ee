// A synthetic multi-process .cryo image built with ImageWriter, and the expected memory contents, for
// the format and corruption tests. Covers: unknown keys and an unknown section type, bin (non-UTF-8)
// strings, DATA / ZERO runs, a store page referenced twice, PAGEDATA split at 1 MiB, blobs over 1 MiB.
import { ImageWriter, MemorySink, PageKind, REGISTER_NAMES, u64Bin, type CryoWasm, type PageMapEntry } from '../../src/index.js';

export const PAGE = 4096;
export const ROOT_PID = 100;
export const CHILD_PID = 101;
export const HEAP = 0x5555_0000_0000n;
export const HEAP_PAGES = 300; // store 0..299: crosses the 1 MiB (256-page) section boundary
export const ZERO_RUN = HEAP + BigInt(HEAP_PAGES * PAGE); // right after the heap run: 10 ZERO pages
export const ZERO_PAGES = 10;
export const ALIAS = 0x7f00_0000_0000n; // 2 pages -> store 5, 6 (also used by the heap run)
export const LONE = 0x7ff0_0000_0000n; // 1 page -> store 300
export const CHILD_TEXT = 0x40_0000n; // child: 3 pages -> store 0..2
export const VSYSCALL = 0xffff_ffff_ff60_0000n;
export const BIG_BLOB_LENGTH = (5 << 20) / 2; // 2.5 MiB: three BLOB sections
export const NON_UTF8_EXE = new Uint8Array([0x2f, 0x74, 0x6d, 0x70, 0x2f, 0xff, 0xfe, 0x78]); // "/tmp/\xff\xfex"

/** The byte at `offset` of store page `store` of `pid`. */
export function pageByte(pid: number, store: number, offset: number): number {
  return (store * 7 + offset * 13 + pid + (offset >> 8)) & 0xff;
}

export function storePage(pid: number, store: number): Uint8Array {
  const page = new Uint8Array(PAGE);
  for (let i = 0; i < PAGE; i++) page[i] = pageByte(pid, store, i);
  new DataView(page.buffer).setUint32(0, store, true);
  new DataView(page.buffer).setUint32(4, pid, true);
  return page;
}

export function storePages(pid: number, first: number, count: number): Uint8Array {
  const out = new Uint8Array(count * PAGE);
  for (let i = 0; i < count; i++) out.set(storePage(pid, first + i), i * PAGE);
  return out;
}

export const PAGE_MAPS: Record<number, PageMapEntry[]> = {
  [ROOT_PID]: [
    { vaddr: HEAP, pageCount: HEAP_PAGES, kind: PageKind.DATA, storeIndex: 0 },
    { vaddr: ZERO_RUN, pageCount: ZERO_PAGES, kind: PageKind.ZERO, storeIndex: 0 },
    { vaddr: ALIAS, pageCount: 2, kind: PageKind.DATA, storeIndex: 5 },
    { vaddr: LONE, pageCount: 1, kind: PageKind.DATA, storeIndex: 300 },
  ],
  [CHILD_PID]: [{ vaddr: CHILD_TEXT, pageCount: 3, kind: PageKind.DATA, storeIndex: 0 }],
};
export const STORE_COUNTS: Record<number, number> = { [ROOT_PID]: 301, [CHILD_PID]: 3 };

/** Expected contents of a process's memory at `address` (0 where not stored or ZERO). */
export function expectedMemory(pid: number, address: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (const e of PAGE_MAPS[pid]!) {
    if (e.kind !== PageKind.DATA) continue;
    for (let p = 0; p < e.pageCount; p++) {
      const pageStart = e.vaddr + BigInt(p * PAGE);
      const lo = pageStart > address ? pageStart : address;
      const hiPage = pageStart + BigInt(PAGE);
      const hiReq = address + BigInt(length);
      const hi = hiPage < hiReq ? hiPage : hiReq;
      if (lo >= hi) continue;
      const page = storePage(pid, e.storeIndex + p);
      out.set(page.subarray(Number(lo - pageStart), Number(hi - pageStart)), Number(lo - address));
    }
  }
  return out;
}

export function bigBlob(): Uint8Array {
  const out = new Uint8Array(BIG_BLOB_LENGTH);
  for (let i = 0; i < out.length; i++) out[i] = (i * 31 + (i >> 12)) & 0xff;
  return out;
}

function regs(seed: bigint): Uint8Array {
  const bytes = new Uint8Array(216);
  const view = new DataView(bytes.buffer);
  REGISTER_NAMES.forEach((_, i) => view.setBigUint64(i * 8, (seed << 32n) | BigInt(i) | (i === 16 ? 0xffff_0000_0000_0000n : 0n), true));
  return bytes;
}

export const ROOT_PROCESS = {
  pid: ROOT_PID, ppid: 1, pgid: ROOT_PID, sid: 1, comm: 'root-proc', state: 'S',
  cmdline: ['/bin/root', '--flag', new Uint8Array([0x61, 0xff, 0x62])], // a bin argv entry
  environ: ['HOME=/root', 'LANG=C'],
  exe: NON_UTF8_EXE, cwd: '/tmp', root: '/',
  umask: 0o22, personality: 0,
  creds: {
    uid: [0, 0, 0, 0], gid: [0, 0, 0, 0], groups: [0, 10],
    capInh: u64Bin(0n), capPrm: u64Bin(0x1ff_ffff_ffffn), capEff: u64Bin(0x1ff_ffff_ffffn),
    capBnd: u64Bin(0xffff_ffff_ffff_ffffn), capAmb: u64Bin(0n), noNewPrivs: false, seccomp: 0,
  },
  rlimits: Array.from({ length: 16 }, (_, i) => (i === 7 ? [1024, 4096] : [null, null])),
  mm: { startCode: 0x40_0000, endCode: 0x40_1000, startBrk: Number(HEAP), brk: Number(HEAP) + HEAP_PAGES * PAGE },
  auxv: new Uint8Array(16),
  sigactions: Array.from({ length: 64 }, (_, i) =>
    i === 8 || i === 18 ? null : { handler: i === 1 ? 0x40_1234 : 0, flags: 0x0400_0000, restorer: 0x40_5678, mask: u64Bin(1n << BigInt(i)) }),
  pendingShared: [],
  threads: [
    {
      tid: ROOT_PID, comm: 'root-proc', state: 'S', regs: regs(1n), restart: 'restart',
      xstate: new Uint8Array(832).fill(7), xfeatures: 0x2e7, fsBase: 0x7f12_3456_7000, gsBase: 0,
      sigmask: u64Bin(0x8000_0000_0000_0001n), pending: [new Uint8Array(128)], clearChildTid: 0x7f12_3456_7a10,
      robustList: { head: 0x7f12_3456_7a20, len: 24 }, rseq: null, sigaltstack: { sp: 0, size: 0, flags: 2 },
      futureThreadKey: 'kept',
    },
    { tid: ROOT_PID + 1000, comm: 'worker', state: 'S', regs: regs(2n), restart: 'none', fsBase: 0, gsBase: 0, sigmask: u64Bin(0n) },
  ],
  vmas: [
    { start: 0x40_0000, end: 0x40_1000, prot: 5, shared: false, offset: 0, dev: [8, 1], inode: 1234, name: '/bin/root', path: '/bin/root', kind: 'file', vmFlags: ['rd', 'ex'] },
    { start: Number(HEAP), end: Number(HEAP) + (HEAP_PAGES + ZERO_PAGES + 6) * PAGE, prot: 3, shared: false, offset: 0, dev: [0, 0], inode: 0, name: '[heap]', path: null, kind: 'heap', vmFlags: ['rd', 'wr'] },
    { start: Number(ALIAS), end: Number(ALIAS) + 4 * PAGE, prot: 3, shared: false, offset: 0, dev: [0, 0], inode: 0, name: '', path: null, kind: 'anon', vmFlags: [] },
    { start: Number(LONE), end: Number(LONE) + PAGE, prot: 3, shared: false, offset: 0, dev: [0, 0], inode: 0, name: '[stack]', path: null, kind: 'stack', vmFlags: [] },
    { start: VSYSCALL, end: VSYSCALL + 0x1000n, prot: 4, shared: false, offset: 0, dev: [0, 0], inode: 0, name: '[vsyscall]', path: null, kind: 'vsyscall', vmFlags: [] },
  ],
  fds: [
    { fd: 0, type: 'pipe', path: 'pipe:[555]', flags: 0, cloexec: false, pos: 0, pipe: { inode: 555, dataBlob: 1, dataLength: 100 } },
    { fd: 3, type: 'file', path: '/tmp/gone', flags: 2, cloexec: true, pos: 10, deleted: true, contentBlob: 2, mtime: 1_700_000_000_123_456_789n, fdinfo: { mnt_id: '25' } },
    { fd: 4, type: 'socket', path: 'socket:[77]', socket: { family: 'unix', type: 'stream', protocol: 0, state: 'listen', local: '/tmp/s', peer: '', inode: 77 } },
  ],
  futureProcessKey: { nested: [1, 2, 3] },
};

export const CHILD_PROCESS = {
  pid: CHILD_PID, ppid: ROOT_PID, pgid: ROOT_PID, sid: 1, comm: new Uint8Array([0x63, 0x68, 0xc3]), state: 'R',
  cmdline: ['/bin/child'], environ: [], exe: '/bin/child', cwd: '/', root: '/',
  threads: [{ tid: CHILD_PID, comm: 'child', regs: regs(3n) }],
  vmas: [{ start: Number(CHILD_TEXT), end: Number(CHILD_TEXT) + 3 * PAGE, prot: 5, shared: false, kind: 'anon', name: '' }],
  fds: [{ fd: 0, type: 'pipe', pipe: { inode: 555, dataBlob: 1, dataLength: 100 } }],
};

export const IMAGE_META = {
  format: 'cryo', tool: 'synthetic-test 1.0', createdAt: 1_700_000_000_000,
  host: { hostname: 'testhost', kernel: '6.8.0', machine: 'x86_64', pageSize: 4096 },
  rootPid: ROOT_PID, pids: [ROOT_PID, CHILD_PID], options: { tree: true, kill: false },
  futureMetaKey: 'keep me',
};

export const UNKNOWN_SECTION_TYPE = 42;
export const PIPE_BLOB = new Uint8Array(100).map((_, i) => i);

/** Build the synthetic image in memory, in the writer order of FORMAT §4. */
export async function buildSyntheticImage(wasm: CryoWasm): Promise<Uint8Array> {
  const sink = new MemorySink();
  const w = new ImageWriter(sink, wasm);
  await w.addImageMeta(IMAGE_META);
  await w.addProcess(ROOT_PROCESS);
  await w.addPageMap(ROOT_PID, PAGE_MAPS[ROOT_PID]!);
  await w.addProcess(CHILD_PROCESS);
  await w.addPageMap(CHILD_PID, PAGE_MAPS[CHILD_PID]!);
  await w.addSection({ type: UNKNOWN_SECTION_TYPE, owner: 0, key: 9 }, new TextEncoder().encode('from the future'));
  await w.addBlob(1, PIPE_BLOB);
  await w.addBlob(2, bigBlob());
  await w.addBlob(3, new Uint8Array(0)); // empty: no sections
  await w.addPageData(ROOT_PID, 0, storePages(ROOT_PID, 0, STORE_COUNTS[ROOT_PID]!));
  await w.addPageData(CHILD_PID, 0, storePages(CHILD_PID, 0, STORE_COUNTS[CHILD_PID]!));
  await w.finish();
  return sink.bytes();
}

/** A minimal valid image: meta + one process with one stored page. */
export async function buildTinyImage(wasm: CryoWasm): Promise<Uint8Array> {
  const sink = new MemorySink();
  const w = new ImageWriter(sink, wasm);
  await w.addImageMeta({ format: 'cryo', pids: [7], rootPid: 7 });
  await w.addProcess({ pid: 7, comm: 'tiny', vmas: [{ start: 0x1000, end: 0x3000 }] });
  await w.addPageMap(7, [{ vaddr: 0x1000n, pageCount: 1, kind: PageKind.DATA, storeIndex: 0 }, { vaddr: 0x2000n, pageCount: 1, kind: PageKind.ZERO, storeIndex: 0 }]);
  await w.addBlob(5, new Uint8Array([1, 2, 3]));
  await w.addPageData(7, 0, storePage(7, 0));
  await w.finish();
  return sink.bytes();
}
