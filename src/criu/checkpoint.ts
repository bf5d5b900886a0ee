/**
 * A CRIU checkpoint: the decoded images of one image directory, loaded lazily and cached, the links
 * between them (pstree → core/ids/mm/fs, ids.files_id → fdinfo → files.img, memfd → shmem pagemaps),
 * and memory reads from pagemap + pages images, including shared memory and `parent` chains.
 *
 * @module
 */
import { CriuFormatError, CriuSourceError } from './errors.js';
import { decodeImage, isRawImageName, type CriuImage } from './images.js';
import { toNumber, UNKNOWN_KEY, type DecodedMessage, type UnknownField } from './protobuf.js';
import { fileLabel, type CriuDirectory } from './source.js';

export const PAGE_SIZE = 4096;
export const PE_PARENT = 1;
export const PE_LAZY = 2;
export const PE_PRESENT = 4;

/** VMA status bits (CRIU `VMA_*`). */
export const VMA = {
  AREA_REGULAR: 1 << 0, AREA_STACK: 1 << 1, AREA_VSYSCALL: 1 << 2, AREA_VDSO: 1 << 3, AREA_HEAP: 1 << 5,
  FILE_PRIVATE: 1 << 6, FILE_SHARED: 1 << 7, ANON_SHARED: 1 << 8, ANON_PRIVATE: 1 << 9, AREA_SYSVIPC: 1 << 10,
  AREA_SOCKET: 1 << 11, AREA_VVAR: 1 << 12, AREA_AIORING: 1 << 13, AREA_MEMFD: 1 << 14, AREA_SHSTK: 1 << 15,
  AREA_GUARD: 1 << 16, AREA_UPROBES: 1 << 17, UNSUPP: 2 ** 31,
} as const;

/** One run of a pagemap, normalised (old images: flags from in_parent, count from compat_nr_pages). */
export interface PagemapRun {
  /** Address (per-process pagemap) or object offset (shmem pagemap) of the first page. */
  vaddr: number;
  nrPages: number;
  /** PE_* flags. */
  flags: number;
  /** For PE_PRESENT runs: offset of the first page in the pages file. */
  fileOffset: number;
}

/** A decoded pagemap image, ready for lookups. */
export interface Pagemap {
  file: string;
  pagesId: number;
  /** Sorted by vaddr. */
  runs: PagemapRun[];
  /** Pages of the pages file (sum of PE_PRESENT runs). */
  presentPages: number;
  /**
   * Field numbers of pagemap entries this reader does not know (e.g. the per-block sizes of compressed
   * pages in newer CRIU). Pages are then not read: their layout in the pages file is unknown.
   */
  unknownFields: number[];
}

/** Normalise pagemap entries: CRIU >= 4.2 `nr_pages` (field 5), else `compat_nr_pages` (field 2). */
export function pagemapFromImage(image: CriuImage): Pagemap {
  if (image.magic !== 'PAGEMAP') throw new CriuFormatError(image.file, 0, `expected a PAGEMAP image, found ${image.magic}`);
  const head = image.entries[0];
  if (!head) throw new CriuFormatError(image.file, 8, 'pagemap image has no head entry');
  const runs: PagemapRun[] = [];
  let offset = 0;
  let sorted = true;
  const unknown = new Set<number>();
  for (let i = 1; i < image.entries.length; i++) {
    const e = image.entries[i]!;
    for (const u of (e[UNKNOWN_KEY] as UnknownField[] | undefined) ?? []) unknown.add(u.number);
    const nrPages = e['nr_pages'] !== undefined ? toNumber(e['nr_pages']) : toNumber(e['compat_nr_pages']);
    let flags: number;
    if (e['flags'] !== undefined) flags = toNumber(e['flags']);
    else flags = e['in_parent'] === true ? PE_PARENT : PE_PRESENT;
    const vaddr = toNumber(e['vaddr']);
    if (vaddr % PAGE_SIZE !== 0) {
      throw new CriuFormatError(image.file, image.entryOffsets[i]!, `pagemap entry ${i}: vaddr 0x${vaddr.toString(16)} is not page-aligned`);
    }
    if (runs.length && vaddr < runs[runs.length - 1]!.vaddr) sorted = false;
    runs.push({ vaddr, nrPages, flags, fileOffset: offset });
    if (flags & PE_PRESENT) offset += nrPages * PAGE_SIZE;
  }
  if (!sorted) runs.sort((a, b) => a.vaddr - b.vaddr);
  return {
    file: image.file, pagesId: toNumber(head['pages_id']), runs, presentPages: offset / PAGE_SIZE,
    unknownFields: [...unknown].sort((a, b) => a - b),
  };
}

/** The run holding `addr`, by binary search. */
export function findRun(pm: Pagemap, addr: number): PagemapRun | undefined {
  const runs = pm.runs;
  let lo = 0, hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = runs[mid]!;
    if (addr < r.vaddr) hi = mid - 1;
    else if (addr >= r.vaddr + r.nrPages * PAGE_SIZE) lo = mid + 1;
    else return r;
  }
  return undefined;
}

/** The result of a memory read. */
export interface CriuMemoryRead {
  bytes: Uint8Array;
  /** Page-aligned ranges `[start, end)` that the image does not hold (read as zeros). */
  notStored: { start: bigint; end: bigint }[];
}

/** Where a page of a task's memory lives. */
type Backing =
  | { kind: 'private' }
  | { kind: 'shmem'; shmid: number; objectOffset: number }
  | { kind: 'none' };

export class CriuCheckpoint {
  private readonly images = new Map<string, Promise<CriuImage>>();
  private readonly pagemaps = new Map<string, Promise<Pagemap | null>>();
  private parentCheckpoint: Promise<CriuCheckpoint | null> | null = null;
  private filesById: Promise<Map<number, DecodedMessage>> | null = null;
  private names: Promise<string[]> | null = null;

  private constructor(readonly dir: CriuDirectory, readonly inventory: DecodedMessage, readonly pstree: DecodedMessage[]) {}

  /** Open a checkpoint: decodes inventory.img and pstree.img; everything else on demand. */
  static async open(dir: CriuDirectory): Promise<CriuCheckpoint> {
    const inv = decodeImage(await dir.read('inventory.img'), fileLabel(dir, 'inventory.img'));
    if (inv.magic !== 'INVENTORY' || inv.entries.length === 0) {
      throw new CriuFormatError(inv.file, 0, `expected an INVENTORY image with one entry, found ${inv.magic} with ${inv.entries.length}`);
    }
    const ps = decodeImage(await dir.read('pstree.img'), fileLabel(dir, 'pstree.img'));
    if (ps.magic !== 'PSTREE') throw new CriuFormatError(ps.file, 0, `expected a PSTREE image, found ${ps.magic}`);
    const cp = new CriuCheckpoint(dir, inv.entries[0]!, ps.entries);
    cp.images.set('inventory.img', Promise.resolve(inv));
    cp.images.set('pstree.img', Promise.resolve(ps));
    return cp;
  }

  get label(): string {
    return this.dir.label;
  }

  /** Names of the files of the image directory. */
  list(): Promise<string[]> {
    this.names ??= this.dir.list();
    return this.names;
  }

  async has(name: string): Promise<boolean> {
    return (await this.list()).includes(name);
  }

  /** A decoded image (cached). @throws CriuSourceError if missing, CriuFormatError if malformed. */
  image(name: string): Promise<CriuImage> {
    let p = this.images.get(name);
    if (!p) {
      if (isRawImageName(name)) return Promise.reject(new CriuSourceError(`${fileLabel(this.dir, name)}: raw data image, not decoded`));
      p = this.dir.read(name).then((bytes) => decodeImage(bytes, fileLabel(this.dir, name)));
      this.images.set(name, p);
      p.catch(() => this.images.delete(name));
    }
    return p;
  }

  /** A decoded image, or null when the file does not exist. */
  async maybeImage(name: string): Promise<CriuImage | null> {
    if (!(await this.has(name))) return null;
    return this.image(name);
  }

  /** Every image of the directory that holds entries (not pages), decoded. */
  async decodeAll(): Promise<CriuImage[]> {
    const names = (await this.list()).filter((n) => !isRawImageName(n) && (n.endsWith('.img') || n.startsWith('stats-')));
    return Promise.all(names.map((n) => this.image(n)));
  }

  /** Like decodeAll, but a file that fails to decode gives its error instead of failing the whole call. */
  async decodeAllSettled(): Promise<{ name: string; image?: CriuImage; error?: Error }[]> {
    const names = (await this.list()).filter((n) => !isRawImageName(n) && (n.endsWith('.img') || n.startsWith('stats-')));
    return Promise.all(names.map(async (name) => {
      try {
        return { name, image: await this.image(name) };
      } catch (e) {
        return { name, error: e as Error };
      }
    }));
  }

  /** PIDs in pstree order (parents before children). */
  get pids(): number[] {
    return this.pstree.map((p) => toNumber(p['pid']));
  }

  pstreeEntry(pid: number): DecodedMessage | undefined {
    return this.pstree.find((p) => toNumber(p['pid']) === pid);
  }

  /** Thread ids of a process (the leader first). */
  threads(pid: number): number[] {
    const e = this.pstreeEntry(pid);
    const t = (e?.['threads'] as unknown[] | undefined)?.map(toNumber) ?? [pid];
    return t.length ? t : [pid];
  }

  private async first(name: string): Promise<DecodedMessage> {
    const img = await this.image(name);
    const e = img.entries[0];
    if (!e) throw new CriuFormatError(img.file, 8, `${img.magic} image has no entry`);
    return e;
  }

  core(tid: number): Promise<DecodedMessage> { return this.first(`core-${tid}.img`); }
  ids(pid: number): Promise<DecodedMessage> { return this.first(`ids-${pid}.img`); }
  mm(pid: number): Promise<DecodedMessage> { return this.first(`mm-${pid}.img`); }
  fs(pid: number): Promise<DecodedMessage> { return this.first(`fs-${pid}.img`); }

  /** A task is alive (has images) unless pstree/core say it is a zombie or dead. */
  async taskState(pid: number): Promise<number | null> {
    if (!(await this.has(`core-${pid}.img`))) return null;
    const tc = (await this.core(pid))['tc'] as DecodedMessage | undefined;
    return tc ? toNumber(tc['task_state']) : null;
  }

  /** fdinfo entries of a process (ids.files_id → fdinfo-N.img). */
  async fdinfo(pid: number): Promise<DecodedMessage[]> {
    const ids = await this.ids(pid);
    const name = `fdinfo-${toNumber(ids['files_id'])}.img`;
    const img = await this.maybeImage(name);
    return img?.entries ?? [];
  }

  /**
   * files.img entries by id. Older dumps keep one image per file type (reg-files.img, pipes.img, ...):
   * their entries are folded into the same `file_entry` shape.
   */
  files(): Promise<Map<number, DecodedMessage>> {
    this.filesById ??= (async () => {
      const map = new Map<number, DecodedMessage>();
      const files = await this.maybeImage('files.img');
      for (const e of files?.entries ?? []) map.set(toNumber(e['id']), e);
      const legacy: [string, string, string][] = [
        ['reg-files.img', 'REG', 'reg'], ['pipes.img', 'PIPE', 'pipe'], ['fifo.img', 'FIFO', 'fifo'],
        ['unixsk.img', 'UNIXSK', 'usk'], ['inetsk.img', 'INETSK', 'isk'], ['eventfd.img', 'EVENTFD', 'efd'],
        ['eventpoll.img', 'EVENTPOLL', 'epfd'], ['signalfd.img', 'SIGNALFD', 'sgfd'], ['timerfd.img', 'TIMERFD', 'tfd'],
        ['inotify.img', 'INOTIFY', 'ify'], ['fanotify.img', 'FANOTIFY', 'ffy'], ['tty.img', 'TTY', 'tty'],
        ['packetsk.img', 'PACKETSK', 'psk'], ['netlinksk.img', 'NETLINKSK', 'nlsk'], ['ns-files.img', 'NS', 'nsf'],
        ['tunfile.img', 'TUNF', 'tunf'], ['ext-files.img', 'EXT', 'ext'],
      ];
      const typeNumbers: Record<string, number> = {
        REG: 1, PIPE: 2, FIFO: 3, INETSK: 4, UNIXSK: 5, EVENTFD: 6, EVENTPOLL: 7, INOTIFY: 8, SIGNALFD: 9,
        PACKETSK: 10, TTY: 11, FANOTIFY: 12, NETLINKSK: 13, NS: 14, TUNF: 15, EXT: 16, TIMERFD: 17,
      };
      for (const [img, type, field] of legacy) {
        const li = await this.maybeImage(img);
        for (const e of li?.entries ?? []) {
          const id = toNumber(e['id']);
          if (!map.has(id)) map.set(id, { type: typeNumbers[type], id, [field]: e });
        }
      }
      return map;
    })();
    return this.filesById;
  }

  /** Path of a regular-file id (files.img reg.name), as crit shows it. */
  async filePath(id: number): Promise<string | null> {
    const f = (await this.files()).get(id);
    const reg = f?.['reg'] as DecodedMessage | undefined;
    return reg ? (reg['name'] as string) : null;
  }

  /** Unread pipe/FIFO data by pipe id (pipes-data.img, fifo-data.img). */
  async pipeData(): Promise<Map<number, Uint8Array>> {
    const out = new Map<number, Uint8Array>();
    for (const name of ['pipes-data.img', 'fifo-data.img']) {
      const img = await this.maybeImage(name);
      for (const e of img?.entries ?? []) out.set(toNumber(e['pipe_id']), (e['extra'] as Uint8Array) ?? new Uint8Array(0));
    }
    return out;
  }

  /** memfd inodes (memfd.img) by inode id. */
  async memfdInodes(): Promise<Map<number, DecodedMessage>> {
    const img = await this.maybeImage('memfd.img');
    const m = new Map<number, DecodedMessage>();
    for (const e of img?.entries ?? []) m.set(toNumber(e['inode_id']), e);
    return m;
  }

  /** Close the directory (and the parent dumps opened through it). */
  async close(): Promise<void> {
    const parent = this.parentCheckpoint ? await this.parentCheckpoint.catch(() => null) : null;
    await parent?.close();
    await this.dir.close();
  }

  /** The previous dump (the `parent` link) as a checkpoint, or null. */
  parent(): Promise<CriuCheckpoint | null> {
    this.parentCheckpoint ??= this.dir.parent().then((d) => (d ? CriuCheckpoint.open(d) : null));
    return this.parentCheckpoint;
  }

  /** The per-process pagemap (`pagemap-<pid>.img`), or a shmem one (`pagemap-shmem-<shmid>.img`); null if absent. */
  pagemap(name: string): Promise<Pagemap | null> {
    let p = this.pagemaps.get(name);
    if (!p) {
      p = this.maybeImage(name).then((img) => (img ? pagemapFromImage(img) : null));
      this.pagemaps.set(name, p);
    }
    return p;
  }

  /** How a VMA's memory is backed: private (per-process pagemap), shared memory object, or a file. */
  private async backing(vma: DecodedMessage, addr: number): Promise<Backing> {
    const status = toNumber(vma['status']);
    const start = toNumber(vma['start']);
    const pgoff = toNumber(vma['pgoff']);
    if (status & (VMA.ANON_SHARED | VMA.AREA_SYSVIPC)) {
      return { kind: 'shmem', shmid: toNumber(vma['shmid']), objectOffset: pgoff + (addr - start) };
    }
    if (status & VMA.AREA_MEMFD) {
      // vma.shmid is a file id: files.img MEMFD → memfd.img inode → shmid
      const f = (await this.files()).get(toNumber(vma['shmid']));
      const memfd = f?.['memfd'] as DecodedMessage | undefined;
      const inode = memfd ? (await this.memfdInodes()).get(toNumber(memfd['inode_id'])) : undefined;
      if (inode) return { kind: 'shmem', shmid: toNumber(inode['shmid']), objectOffset: pgoff + (addr - start) };
      return { kind: 'none' };
    }
    if (status & VMA.FILE_SHARED) return { kind: 'none' };
    return { kind: 'private' };
  }

  /**
   * Read up to `maxLen` bytes at `addr` from pagemap `pmName`, following PE_PARENT into parent dumps.
   * Returns how many bytes `n` the answer covers (to the end of the run, or to the next run when the
   * address is not in the pagemap), and the bytes, or null when those pages are not stored.
   */
  private async readFromPagemap(pmName: string, addr: number, maxLen: number): Promise<{ bytes: Uint8Array | null; n: number }> {
    const pm = await this.pagemap(pmName);
    if (!pm) return { bytes: null, n: maxLen };
    const run = findRun(pm, addr);
    if (!run) {
      const next = pm.runs.find((r) => r.vaddr > addr);
      return { bytes: null, n: next ? Math.min(maxLen, next.vaddr - addr) : maxLen };
    }
    const n = Math.min(maxLen, run.vaddr + run.nrPages * PAGE_SIZE - addr);
    if (run.flags & PE_PRESENT) {
      if (pm.unknownFields.length) {
        throw new CriuSourceError(`${pm.file}: pagemap entries have fields this reader does not know ` +
          `(${pm.unknownFields.join(', ')}; compressed pages?): the layout of pages-${pm.pagesId}.img is unknown, pages are not read`);
      }
      const off = run.fileOffset + (addr - run.vaddr);
      const pages = `pages-${pm.pagesId}.img`;
      const bytes = await this.dir.readRange(pages, off, n);
      if (bytes.length < n) {
        const size = (await this.dir.size(pages)) ?? 0;
        throw new CriuFormatError(fileLabel(this.dir, pages), off,
          `pages file too short for ${pm.file}: needs ${n} bytes at offset ${off}, the file has ${size}`);
      }
      return { bytes, n };
    }
    if (run.flags & PE_PARENT) {
      const parent = await this.parent();
      if (!parent) {
        throw new CriuSourceError(`${pm.file}: pages at 0x${addr.toString(16)} are in the parent dump, and there is no parent directory`);
      }
      let got = 0;
      const out = new Uint8Array(n);
      let any = false;
      while (got < n) {
        const r = await parent.readFromPagemap(pmName, addr + got, n - got);
        if (r.bytes) { out.set(r.bytes, got); any = true; }
        got += r.n;
      }
      return { bytes: any ? out : null, n };
    }
    return { bytes: null, n }; // lazy-only pages are not in the image
  }

  /**
   * Read `length` bytes of process `pid`'s memory at `address`. Pages the image does not hold (never
   * touched, file-backed and unchanged, lazy, or outside any VMA) read as zeros and are reported.
   */
  async readMemory(pid: number, address: bigint | number, length: number): Promise<CriuMemoryRead> {
    const out = new Uint8Array(length);
    const notStored: { start: bigint; end: bigint }[] = [];
    const addNotStored = (a: number, b: number) => {
      const s = BigInt(Math.floor(a / PAGE_SIZE) * PAGE_SIZE);
      const e = BigInt(Math.ceil(b / PAGE_SIZE) * PAGE_SIZE);
      const last = notStored[notStored.length - 1];
      if (last && last.end >= s) { if (e > last.end) last.end = e; } else notStored.push({ start: s, end: e });
    };
    const base = typeof address === 'bigint' ? address : BigInt(address);
    if (base < 0n || base + BigInt(length) > BigInt(Number.MAX_SAFE_INTEGER)) {
      // above 2^53 only [vsyscall] lives, which CRIU does not store
      if (length > 0) notStored.push({ start: (base / 4096n) * 4096n, end: ((base + BigInt(length) + 4095n) / 4096n) * 4096n });
      return { bytes: out, notStored };
    }
    const addr0 = Number(base);
    const mm = await this.mm(pid);
    const vmas = (mm['vmas'] as DecodedMessage[] | undefined) ?? [];
    let pos = 0;
    while (pos < length) {
      const addr = addr0 + pos;
      const i = vmaIndex(vmas, addr);
      const vma = i >= 0 ? vmas[i] : undefined;
      let limit: number;
      let r: { bytes: Uint8Array | null; n: number };
      if (vma) {
        limit = Math.min(length - pos, toNumber(vma['end']) - addr);
        const b = await this.backing(vma, addr);
        if (b.kind === 'private') r = await this.readFromPagemap(`pagemap-${pid}.img`, addr, limit);
        else if (b.kind === 'shmem') r = await this.readFromPagemap(`pagemap-shmem-${b.shmid}.img`, b.objectOffset, limit);
        else r = { bytes: null, n: limit };
      } else {
        const next = vmas[-i - 1];
        limit = Math.min(length - pos, next ? toNumber(next['start']) - addr : length - pos);
        r = { bytes: null, n: limit };
      }
      if (r.bytes) out.set(r.bytes.subarray(0, r.n), pos); else addNotStored(addr, addr + r.n);
      pos += r.n;
    }
    return { bytes: out, notStored };
  }
}

/** Index of the VMA holding `addr`, or `-(insertion point) - 1`. */
function vmaIndex(vmas: DecodedMessage[], addr: number): number {
  let lo = 0, hi = vmas.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = vmas[mid]!;
    if (addr < toNumber(v['start'])) hi = mid - 1;
    else if (addr >= toNumber(v['end'])) lo = mid + 1;
    else return mid;
  }
  return -lo - 1;
}


