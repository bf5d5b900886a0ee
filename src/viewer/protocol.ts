// Messages between the viewer page and its worker. Everything here is structured-clonable
// (bigint, Uint8Array, Blob, plain objects); the image model's `raw` maps and xstate bytes stay in the worker.
import type {
  FdInfo, HostInfo, ProcessInfo, Registers, ThreadInfo, VmaInfo,
} from '../core/model.js';

/** Where an image comes from: a File/Blob (picker, drop) or a URL read with HTTP Range requests. */
export type SourceSpec =
  | { kind: 'blob'; blob: Blob; name: string }
  | { kind: 'url'; url: string; name: string };

export type ViewThread = Omit<ThreadInfo, 'raw' | 'xstate' | 'pending'> & { xstateBytes: number; pendingCount: number; registers: Registers | null };
export type ViewVma = Omit<VmaInfo, 'raw'> & {
  /** DATA pages whose store page is also used at a lower address (stored once, used twice). */
  dedupPages: number;
};
export type ViewFd = Omit<FdInfo, 'raw'>;

/** A process as the page sees it: the model without its raw maps and bulky arrays. */
export type ViewProcess = Omit<ProcessInfo, 'raw' | 'auxv' | 'sigactions' | 'pendingShared' | 'threads' | 'vmas' | 'fds' | 'pageMap'> & {
  threads: ViewThread[];
  vmas: ViewVma[];
  fds: ViewFd[];
  pageMapEntries: number;
};

export interface ImageSummary {
  name: string;
  size: number;
  version: { major: number; minor: number };
  sectionCount: number;
  format: string | null;
  tool: string | null;
  createdAt: number | null;
  host: HostInfo | null;
  rootPid: number | null;
  processes: ViewProcess[];
  /** Bytes read from the image so far (opening included). */
  bytesRead: number;
  reads: number;
  /** Why some pages cannot be read (an incremental image without its parent), or null. */
  note: string | null;
  /** Whether page data is compressed (a packed image). */
  packed: boolean;
}

/** A refusal, as the page shows it. */
export interface ErrorInfo {
  name: string;
  message: string;
  code?: string;
  offset?: number;
  expected?: string;
  found?: string;
}

export interface MemoryResult {
  bytes: Uint8Array;
  /** Per page of the range (from the page holding `address`): CELL_NONE, CELL_ZERO or CELL_DATA. */
  pageStates: Uint8Array;
  firstPage: bigint;
}

/**
 * One cell code of a memory raster: 0 not stored, 1 zero, 2 data, 3 data stored once for several
 * addresses, 4 in the parent image (incremental images); +8 changed. Higher codes win in a cell.
 */
export const CELL_NONE = 0;
export const CELL_ZERO = 1;
export const CELL_PARENT = 2;
export const CELL_DEDUP = 3;
export const CELL_DATA = 4;
export const CELL_CHANGED = 8;

export interface SearchHit {
  address: bigint;
  /** Index of the VMA holding it, -1 if none. */
  vma: number;
}

export interface SearchProgress {
  scanned: number;
  total: number;
  hits: SearchHit[];
}

export type ChangeStatus = 'added' | 'removed' | 'changed';

export interface FieldChange {
  field: string;
  before: string;
  after: string;
}

export interface ProcessDiff {
  pid: number;
  status: ChangeStatus | 'same';
  fields: FieldChange[];
  fds: { fd: number; status: ChangeStatus; changes: FieldChange[] }[];
  vmas: { start: bigint; end: bigint; name: string; status: ChangeStatus; changes: FieldChange[] }[];
  threads: { tid: number; status: ChangeStatus; changes: FieldChange[] }[];
  /** Addresses of pages whose contents (or stored state) differ, ascending; at most `pageLimit`. */
  changedPages: bigint[];
  changedPageCount: number;
  comparedPages: number;
  /** Pages stored only in the second / first image. */
  addedPages: number;
  removedPages: number;
}

export interface DiffResult {
  engine: string;
  processes: ProcessDiff[];
  pageLimit: number;
}

export type Request =
  | { op: 'open'; slot: number; source: SourceSpec }
  | { op: 'close'; slot: number }
  | { op: 'read'; slot: number; pid: number; address: bigint; length: number }
  | { op: 'raster'; slot: number; pid: number; cells: number[]; diff: boolean }
  | { op: 'search'; slot: number; pid: number; pattern: Uint8Array; maxHits: number }
  | { op: 'cancel'; target: number }
  | { op: 'diff' }
  | { op: 'stats'; slot: number }
  | { op: 'summaries' }
  | { op: 'blob'; slot: number; blob: number; max: number };

export type RequestMessage = Request & { id: number };

export type ResponseMessage =
  | { id: number; kind: 'result'; result: unknown; bytesRead: number[] }
  | { id: number; kind: 'error'; error: ErrorInfo; bytesRead: number[] }
  | { id: number; kind: 'progress'; progress: unknown };
