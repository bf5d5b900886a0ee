/**
 * Where a CRIU checkpoint's files come from: a {@link CriuDirectory} is a set of named files that can be
 * read whole or by range, with an optional `parent` (the previous dump of an incremental chain).
 *
 * Environment-neutral implementations here:
 * - {@link MemoryDirectory}: files given as ByteSources / bytes / Blobs (e.g. a folder dropped in a browser);
 * - container checkpoint archives ({@link openCriuArchive}): plain tar read by random access (only the
 *   members' headers and the bytes asked for are read); gzip- and zstd-compressed tar read in one
 *   streaming pass that keeps the CRIU image members in memory (never on disk). Gzip is decompressed with
 *   fflate; zstd needs a decompressor passed in {@link ArchiveOptions.zstd} (the Node entry, node.ts,
 *   provides one that pipes through the `zstd` program).
 *
 * The Node directory source is in node.ts, the only file of src/criu that imports `node:` modules.
 *
 * @module
 */
import { Gunzip } from 'fflate';
import { CriuFormatError, CriuSourceError } from './errors.js';
import { indexTar, looksLikeTar, normaliseName, scanTarStream, type RandomAccess, type TarMember } from './tar.js';

export type { RandomAccess } from './tar.js';

/** A CRIU image directory. */
export interface CriuDirectory {
  /** How errors name this directory: a path, or `archive.tar.gz:checkpoint`. */
  readonly label: string;
  /** Names of the regular files in the directory (no subdirectories). */
  list(): Promise<string[]>;
  /** Size of a file, or null when it does not exist. */
  size(name: string): Promise<number | null>;
  /** A whole file. @throws CriuSourceError when it does not exist. */
  read(name: string): Promise<Uint8Array>;
  /** `length` bytes at `offset` of a file (fewer at its end). */
  readRange(name: string, offset: number, length: number): Promise<Uint8Array>;
  /** The previous dump of an incremental chain (the `parent` link), or null. */
  parent(): Promise<CriuDirectory | null>;
  /**
   * Other files next to the image directory in a container checkpoint archive (`config.dump`,
   * `spec.dump`, ...) by name, when the source has them.
   */
  readAux?(name: string): Promise<Uint8Array | null>;
  /** Release open files / processes. */
  close(): Promise<void>;
}

/** A file join for messages. */
export function fileLabel(dir: CriuDirectory, name: string): string {
  return dir.label.endsWith('/') ? dir.label + name : `${dir.label}/${name}`;
}

/** A stream transform: compressed chunks in, decompressed chunks out. */
export type Decompressor = (input: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>;

export interface ArchiveOptions {
  /** Name of the archive in messages. */
  label?: string;
  /** zstd decompressor (node.ts supplies one backed by the `zstd` program). */
  zstd?: Decompressor;
  /** gzip decompressor; default: fflate's streaming Gunzip. */
  gzip?: Decompressor;
  /**
   * Compressed archives only: bytes of `pages-*.img` data kept in memory by the first pass
   * (default 1 GiB). Pages beyond it are read by decompressing the archive again up to them.
   */
  pagesMemoryBudget?: number;
  /** Directory of the images inside the archive; default: the one holding `inventory.img`, `checkpoint/` first. */
  imageDir?: string;
}

// ---------------------------------------------------------------------------------------------------
// in-memory / Blob directory

class BytesAccess implements RandomAccess {
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number { return this.bytes.length; }
  async read(offset: number, length: number): Promise<Uint8Array> { return this.bytes.subarray(offset, offset + length); }
}

class BlobAccess implements RandomAccess {
  constructor(private readonly blob: Blob) {}
  get size(): number { return this.blob.size; }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
  }
}

export function toRandomAccess(input: RandomAccess | Uint8Array | Blob): RandomAccess {
  if (input instanceof Uint8Array) return new BytesAccess(input);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return new BlobAccess(input);
  return input as RandomAccess;
}

/** A directory whose files are given: bytes, Blobs/Files, or any random-access source. */
export class MemoryDirectory implements CriuDirectory {
  private readonly files: Map<string, RandomAccess>;
  constructor(
    files: Map<string, RandomAccess | Uint8Array | Blob> | Record<string, RandomAccess | Uint8Array | Blob>,
    readonly label = 'memory',
    private readonly parentDir: CriuDirectory | null = null,
  ) {
    const entries = files instanceof Map ? [...files.entries()] : Object.entries(files);
    this.files = new Map(entries.map(([k, v]) => [k, toRandomAccess(v)]));
  }
  async list(): Promise<string[]> { return [...this.files.keys()]; }
  async size(name: string): Promise<number | null> { return this.files.get(name)?.size ?? null; }
  async read(name: string): Promise<Uint8Array> {
    const f = this.get(name);
    return f.read(0, f.size);
  }
  async readRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    const f = this.get(name);
    const n = Math.max(0, Math.min(length, f.size - offset));
    return f.read(offset, n);
  }
  async parent(): Promise<CriuDirectory | null> { return this.parentDir; }
  async close(): Promise<void> {
    for (const f of this.files.values()) await f.close?.();
  }
  private get(name: string): RandomAccess {
    const f = this.files.get(name);
    if (!f) throw new CriuSourceError(`${fileLabel(this, name)}: no such image file`);
    return f;
  }
}

/** A file picked in a browser (`<input type=file webkitdirectory>`, drag and drop), or anything like it. */
export interface NamedBlob {
  /** Path relative to the picked folder (`webkitRelativePath`), or the bare name. */
  path: string;
  data: Blob | Uint8Array | RandomAccess;
}

/**
 * A CRIU directory from a set of picked files: the folder holding `inventory.img` (a `checkpoint/` one
 * first), with `parent` resolved to a sibling folder named by the `parent` entry when it was picked too
 * (browsers give no symlinks: a picked `parent/` directory is used as is).
 */
export function directoryFromFiles(files: NamedBlob[], label = 'files'): CriuDirectory {
  const byPath = new Map(files.map((f) => [normaliseName(f.path), f.data]));
  const dir = findImageDir(byPath.keys());
  if (dir === null) throw new CriuSourceError(`${label}: no inventory.img among the files`);
  const make = (d: string, depth: number): MemoryDirectory => {
    const prefix = d === '' ? '' : d + '/';
    const own = new Map<string, RandomAccess | Uint8Array | Blob>();
    for (const [p, data] of byPath) if (p.startsWith(prefix) && !p.slice(prefix.length).includes('/')) own.set(p.slice(prefix.length), data);
    const parentDir = joinPath(d, 'parent');
    const parent = depth < 64 && byPath.has(joinPath(parentDir, 'inventory.img')) ? make(parentDir, depth + 1) : null;
    return new MemoryDirectory(own, d === '' ? label : `${label}/${d}`, parent);
  };
  return make(dir, 0);
}

// ---------------------------------------------------------------------------------------------------
// archives

/** The kind of container a byte source holds, from its first bytes. */
export type ContainerKind = 'gzip' | 'zstd' | 'xz' | 'bzip2' | 'tar' | 'criu-image' | 'unknown';

export function detectContainer(head: Uint8Array): ContainerKind {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a) return 'xz';
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bzip2';
  if (looksLikeTar(head)) return 'tar';
  if (head.length >= 4) {
    const m = (head[0]! | (head[1]! << 8) | (head[2]! << 16) | (head[3]! << 24)) >>> 0;
    if (m === 0x54564319 || m === 0x55105940 || m === 0x58313116) return 'criu-image';
  }
  return 'unknown';
}

/** Read a random-access source as a stream of chunks. */
export async function* chunksOf(src: RandomAccess, chunkSize = 1 << 20): AsyncIterable<Uint8Array> {
  for (let off = 0; off < src.size; off += chunkSize) {
    yield await src.read(off, Math.min(chunkSize, src.size - off));
  }
}

/** gzip stream decompression with fflate (single- and multi-member). */
export function gunzipStream(label: string): Decompressor {
  return async function* (input) {
    const out: Uint8Array[] = [];
    const g = new Gunzip((data) => { out.push(data); });
    let consumed = 0;
    try {
      for await (const chunk of input) {
        g.push(chunk, false);
        consumed += chunk.length;
        while (out.length) yield out.shift()!;
      }
      g.push(new Uint8Array(0), true);
    } catch (e) {
      if (e instanceof CriuFormatError) throw e;
      throw new CriuFormatError(label, consumed, `gzip: ${(e as Error).message}`);
    }
    while (out.length) yield out.shift()!;
  };
}

/** Images of a CRIU directory: the dir (prefix) holding inventory.img, `checkpoint/` preferred. */
function findImageDir(names: Iterable<string>, wanted?: string): string | null {
  if (wanted !== undefined) return normaliseName(wanted);
  const dirs: string[] = [];
  for (const n of names) {
    if (n === 'inventory.img') dirs.push('');
    else if (n.endsWith('/inventory.img')) dirs.push(n.slice(0, -'/inventory.img'.length));
  }
  if (dirs.length === 0) return null;
  if (dirs.includes('checkpoint')) return 'checkpoint';
  dirs.sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
  return dirs[0]!;
}

function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Resolve a symlink target relative to the directory holding the link. */
function resolveLink(linkDir: string, target: string): string {
  const parts = target.startsWith('/') ? [] : linkDir.split('/').filter(Boolean);
  for (const p of target.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop(); else parts.push(p);
  }
  return parts.join('/');
}

/** Members of an archive, with a way to read their bytes. */
interface ArchiveStore {
  label: string;
  members: Map<string, TarMember>;
  readMember(m: TarMember, offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** One directory of a tar archive. */
class TarDirectory implements CriuDirectory {
  readonly label: string;
  constructor(private readonly store: ArchiveStore, private readonly dir: string, private readonly root: string) {
    this.label = `${store.label}:${dir === '' ? '.' : dir}`;
  }

  private member(name: string): TarMember | undefined {
    let m = this.store.members.get(joinPath(this.dir, name));
    for (let hops = 0; m && m.type === 'hardlink' && hops < 8; hops++) m = this.store.members.get(normaliseName(m.linkname));
    for (let hops = 0; m && m.type === 'symlink' && hops < 8; hops++) {
      const at = m.name.includes('/') ? m.name.slice(0, m.name.lastIndexOf('/')) : '';
      m = this.store.members.get(resolveLink(at, m.linkname));
    }
    return m && m.type === 'file' ? m : undefined;
  }

  async list(): Promise<string[]> {
    const prefix = this.dir === '' ? '' : this.dir + '/';
    const out: string[] = [];
    for (const [name, m] of this.store.members) {
      if (!name.startsWith(prefix)) continue;
      const rest = name.slice(prefix.length);
      if (rest === '' || rest.includes('/')) continue;
      if (m.type === 'file' || m.type === 'hardlink' || (m.type === 'symlink' && this.member(rest))) out.push(rest);
    }
    return out.sort();
  }
  async size(name: string): Promise<number | null> {
    return this.member(name)?.size ?? null;
  }
  async read(name: string): Promise<Uint8Array> {
    const m = this.member(name);
    if (!m) throw new CriuSourceError(`${fileLabel(this, name)}: no such image file in the archive`);
    return this.store.readMember(m, 0, m.size);
  }
  async readRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    const m = this.member(name);
    if (!m) throw new CriuSourceError(`${fileLabel(this, name)}: no such image file in the archive`);
    const n = Math.max(0, Math.min(length, m.size - offset));
    return this.store.readMember(m, offset, n);
  }
  async parent(): Promise<CriuDirectory | null> {
    const link = this.store.members.get(joinPath(this.dir, 'parent'));
    if (!link) return null;
    let target: string;
    if (link.type === 'symlink') target = resolveLink(this.dir, link.linkname);
    else if (link.type === 'dir') target = link.name;
    else return null;
    const hasInventory = this.store.members.has(joinPath(target, 'inventory.img'));
    if (!hasInventory) {
      throw new CriuSourceError(`${fileLabel(this, 'parent')}: links to ${target}, which is not in the archive`);
    }
    return new TarDirectory(this.store, target, this.root);
  }
  async readAux(name: string): Promise<Uint8Array | null> {
    const m = this.store.members.get(joinPath(this.root, name));
    if (!m || m.type !== 'file') return null;
    return this.store.readMember(m, 0, m.size);
  }
  async close(): Promise<void> {
    await this.store.close();
  }
}

/** Is this member worth keeping in memory during a streaming pass (CRIU images and small metadata)? */
function isImageLike(name: string): boolean {
  const base = name.slice(name.lastIndexOf('/') + 1);
  return base.endsWith('.img') || base.startsWith('stats-') || base.endsWith('.dump') || base === 'status' ||
    base === 'network.status' || base === 'deleted.files';
}

/**
 * Open a container checkpoint archive (tar, tar.gz, tar.zst) or a tar of a bare CRIU image directory,
 * as the CRIU image directory inside it.
 */
export async function openCriuArchive(input: RandomAccess | Uint8Array | Blob, options: ArchiveOptions = {}): Promise<CriuDirectory> {
  const src = toRandomAccess(input);
  const label = options.label ?? 'archive';
  const head = await src.read(0, Math.min(src.size, 512));
  const kind = detectContainer(head);
  let store: ArchiveStore;
  if (kind === 'tar') {
    const list = await indexTar(src, label);
    const members = new Map(list.map((m) => [m.name, m]));
    store = {
      label, members,
      readMember: (m, offset, length) => src.read(m.dataOffset + offset, length),
      close: async () => { await src.close?.(); },
    };
  } else if (kind === 'gzip' || kind === 'zstd') {
    const decompress = kind === 'gzip' ? options.gzip ?? gunzipStream(label) : options.zstd;
    if (!decompress) {
      throw new CriuSourceError(`${label}: zstd-compressed archive, and no zstd decompressor was given ` +
        '(in Node, open it with openCriuPath from cryo-img/criu/node, which uses the zstd program)');
    }
    store = await scanCompressed(src, label, decompress, options.pagesMemoryBudget ?? 1 << 30);
  } else if (kind === 'xz' || kind === 'bzip2') {
    throw new CriuSourceError(`${label}: ${kind}-compressed archives are not supported (use tar, tar.gz or tar.zst)`);
  } else if (kind === 'criu-image') {
    throw new CriuSourceError(`${label}: this is a single CRIU image file; open its directory instead`);
  } else {
    throw new CriuFormatError(label, 0, 'not a CRIU checkpoint archive (expected tar, gzip or zstd data)');
  }
  const dir = findImageDir(store.members.keys(), options.imageDir);
  if (dir === null || !store.members.has(joinPath(dir, 'inventory.img'))) {
    await store.close();
    throw new CriuSourceError(`${label}: no CRIU image directory (no ${options.imageDir ? joinPath(dir ?? '', 'inventory.img') : 'inventory.img'}) in the archive`);
  }
  const root = dir.includes('/') ? dir.slice(0, dir.lastIndexOf('/')) : '';
  return new TarDirectory(store, dir, root);
}

async function scanCompressed(src: RandomAccess, label: string, decompress: Decompressor, budget: number): Promise<ArchiveStore> {
  let pagesKept = 0;
  const keep = (m: TarMember) => {
    if (!isImageLike(m.name)) return false;
    const base = m.name.slice(m.name.lastIndexOf('/') + 1);
    // metadata images are small; a big non-pages `.img` (say a disk image elsewhere in the archive) is not kept
    if (!base.startsWith('pages-')) return m.size <= 64 << 20;
    if (pagesKept + m.size > budget) return false;
    pagesKept += m.size;
    return true;
  };
  const { members: list, data } = await scanTarStream(decompress(chunksOf(src)), label, keep);
  const members = new Map(list.map((m) => [m.name, m]));
  // a window cache for members not kept: re-decompress up to them
  const WINDOW = 8 << 20;
  const windows = new Map<string, Uint8Array>();
  const readStream = async (offset: number, length: number): Promise<Uint8Array> => {
    const out = new Uint8Array(length);
    let got = 0;
    let pos = 0;
    for await (const chunk of decompress(chunksOf(src))) {
      const end = pos + chunk.length;
      if (end > offset && pos < offset + length) {
        const from = Math.max(0, offset - pos);
        const to = Math.min(chunk.length, offset + length - pos);
        out.set(chunk.subarray(from, to), pos + from - offset);
        got += to - from;
      }
      pos = end;
      if (got >= length) break;
    }
    if (got < length) throw new CriuFormatError(label, pos, `archive ends before offset ${offset + length}`);
    return out;
  };
  return {
    label, members,
    async readMember(m, offset, length) {
      const kept = data.get(m.name);
      if (kept) return kept.subarray(offset, offset + length);
      // not kept: serve from a cached window of the decompressed stream
      const start = m.dataOffset + offset;
      const w0 = Math.max(m.dataOffset, Math.floor(start / WINDOW) * WINDOW);
      const wEnd = Math.min(w0 + WINDOW, m.dataOffset + m.size);
      if (start + length <= wEnd) {
        const key = `${w0}:${wEnd}`;
        let w = windows.get(key);
        if (!w) {
          w = await readStream(w0, wEnd - w0);
          if (windows.size >= 4) windows.delete(windows.keys().next().value!);
          windows.set(key, w);
        }
        return w.subarray(start - w0, start - w0 + length);
      }
      return readStream(start, length);
    },
    close: async () => { await src.close?.(); },
  };
}
