/**
 * Node-only parts of the CRIU reader (the only file of src/criu that imports `node:` modules):
 * image directories on disk, archive files read by random access, and zstd decompression through the
 * `zstd` program.
 *
 * Why the zstd program and not our own decoder: a conforming zstd decoder (frames, raw/RLE/compressed
 * blocks, Huffman literals, FSE-coded sequences, repeat offsets, large windows, checksums) is well over a
 * thousand lines, and we may not add a dependency. The `zstd` CLI is present wherever container
 * checkpoints are made; we stream the archive through it (`zstd -dc`), so nothing is written to disk.
 * In browsers, pass a decompressor in `ArchiveOptions.zstd`.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { open, readdir, readFile, readlink, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CriuSourceError } from './errors.js';
import { decodeImage, type CriuImage } from './images.js';
import { openCriuImage, type CriuCheckpointImage, type CriuModelOptions } from './model.js';
import { detectContainer, fileLabel, openCriuArchive, type ArchiveOptions, type CriuDirectory, type Decompressor, type RandomAccess } from './source.js';

/** A file read by random access. */
export class FileAccess implements RandomAccess {
  private constructor(private readonly fh: FileHandle, readonly size: number) {}
  static async open(path: string): Promise<FileAccess> {
    const fh = await open(path, 'r');
    const st = await fh.stat();
    return new FileAccess(fh, st.size);
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const buf = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await this.fh.read(buf, got, n - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === n ? buf : buf.subarray(0, got);
  }
  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** A CRIU image directory on disk. */
export class NodeDirectory implements CriuDirectory {
  private readonly open = new Map<string, Promise<FileAccess>>();
  constructor(readonly path: string, private readonly auxRoot: string | null = null) {}
  get label(): string {
    return this.path;
  }
  async list(): Promise<string[]> {
    const entries = await readdir(this.path, { withFileTypes: true });
    const out: string[] = [];
    for (const e of entries) {
      if (e.isFile()) out.push(e.name);
      else if (e.isSymbolicLink() && e.name !== 'parent') {
        try { if ((await stat(join(this.path, e.name))).isFile()) out.push(e.name); } catch { /* dangling */ }
      }
    }
    return out.sort();
  }
  async size(name: string): Promise<number | null> {
    try {
      const st = await stat(join(this.path, name));
      return st.isFile() ? st.size : null;
    } catch {
      return null;
    }
  }
  private file(name: string): Promise<FileAccess> {
    let f = this.open.get(name);
    if (!f) {
      f = FileAccess.open(join(this.path, name)).catch((e: NodeJS.ErrnoException) => {
        this.open.delete(name);
        throw new CriuSourceError(`${fileLabel(this, name)}: ${e.code === 'ENOENT' ? 'no such image file' : e.message}`);
      });
      this.open.set(name, f);
    }
    return f;
  }
  /** Whole files (the small metadata images) are read in one go and not kept open. */
  async read(name: string): Promise<Uint8Array> {
    try {
      return new Uint8Array(await readFile(join(this.path, name)));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new CriuSourceError(`${fileLabel(this, name)}: ${err.code === 'ENOENT' ? 'no such image file' : err.message}`);
    }
  }
  /** Ranges (pages files) go through a file handle kept open until close(). */
  async readRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    return (await this.file(name)).read(offset, length);
  }
  async parent(): Promise<CriuDirectory | null> {
    const p = join(this.path, 'parent');
    try {
      const st = await stat(p);
      if (!st.isDirectory()) return null;
    } catch {
      return null;
    }
    let target = p;
    try { target = resolve(this.path, await readlink(p)); } catch { /* a real directory */ }
    return new NodeDirectory(target, null);
  }
  async readAux(name: string): Promise<Uint8Array | null> {
    if (this.auxRoot === null) return null;
    try {
      const f = await FileAccess.open(join(this.auxRoot, name));
      try { return await f.read(0, f.size); } finally { await f.close(); }
    } catch {
      return null;
    }
  }
  async close(): Promise<void> {
    const files = [...this.open.values()];
    this.open.clear();
    for (const f of files) {
      try { await (await f).close(); } catch { /* already reported */ }
    }
  }
}

/**
 * zstd decompression by piping through `zstd -dc` (a stream: nothing touches the disk). Stopping the
 * iteration early kills the process.
 */
export function zstdProgram(label = 'archive', program = 'zstd'): Decompressor {
  return async function* (input) {
    const child = spawn(program, ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const spawned = new Promise<void>((res, rej) => {
      child.once('spawn', () => res());
      child.once('error', (e: NodeJS.ErrnoException) => rej(e.code === 'ENOENT'
        ? new CriuSourceError(`${label}: zstd-compressed archive, and the zstd program was not found in PATH`)
        : e));
    });
    const exited = new Promise<number | null>((res) => child.once('close', (code) => res(code)));
    await spawned;
    let feedError: unknown = null;
    const feed = (async () => {
      try {
        for await (const chunk of input) {
          if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
          if (child.stdin.destroyed) break;
        }
        child.stdin.end();
      } catch (e) {
        feedError = e;
        child.stdin.destroy();
      }
    })();
    child.stdin.on('error', () => { /* EPIPE when we stop early */ });
    let finished = false;
    try {
      for await (const chunk of child.stdout) yield new Uint8Array(chunk as Buffer);
      finished = true;
    } finally {
      if (!finished) child.kill();
      await feed;
      const code = await exited;
      if (finished) {
        if (feedError) throw feedError;
        if (code !== 0) throw new CriuSourceError(`${label}: zstd failed (exit ${code}): ${stderr.trim()}`);
      }
    }
  };
}

export interface OpenPathOptions extends Omit<ArchiveOptions, 'label' | 'zstd'> {
  /** zstd decompressor; default: the `zstd` program. */
  zstd?: Decompressor;
}

/**
 * Open a CRIU checkpoint from a path: an image directory (or a directory holding `checkpoint/`, as an
 * unpacked container checkpoint), or a container checkpoint archive (`.tar`, `.tar.gz`, `.tar.zst`).
 */
export async function openCriuPath(path: string, options: OpenPathOptions = {}): Promise<CriuDirectory> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new CriuSourceError(`${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
  }
  if (st.isDirectory()) {
    if (await exists(join(path, 'inventory.img'))) {
      const up = dirname(resolve(path));
      return new NodeDirectory(path, basename(resolve(path)) === 'checkpoint' ? up : null);
    }
    if (await exists(join(path, 'checkpoint', 'inventory.img'))) return new NodeDirectory(join(path, 'checkpoint'), path);
    throw new CriuSourceError(`${path}: not a CRIU image directory (no inventory.img)`);
  }
  const file = await FileAccess.open(path);
  try {
    return await openCriuArchive(file, { ...options, label: path, zstd: options.zstd ?? zstdProgram(path) });
  } catch (e) {
    await file.close();
    throw e;
  }
}

async function exists(p: string): Promise<boolean> {
  try { await stat(p); return true; } catch { return false; }
}

/**
 * Open a CRIU checkpoint (image directory or container checkpoint archive) as a model image
 * ({@link CriuCheckpointImage}, a `CheckpointImage`). Call `close()` when done.
 */
export async function openCriu(path: string, options: OpenPathOptions & CriuModelOptions = {}): Promise<CriuCheckpointImage> {
  const dir = await openCriuPath(path, options);
  return openCriuImage(dir, options);
}

/** Decode one image file on disk (what `crit decode -i FILE` reads). */
export async function decodeImageFile(path: string): Promise<CriuImage> {
  return decodeImage(new Uint8Array(await readFile(path)), path);
}

/** Whether `path` looks like a CRIU checkpoint: a directory with inventory.img or checkpoint/inventory.img. */
export async function isCriuDirectory(path: string): Promise<boolean> {
  return (await exists(join(path, 'inventory.img'))) || (await exists(join(path, 'checkpoint', 'inventory.img')));
}

/**
 * Whether `openCriu` should handle `path` (for `openImage` dispatch): a CRIU image directory, or a file
 * that starts like a tar, gzip or zstd archive (a `.cryo` file starts with `CRYO-IMG`). Cheap: one stat,
 * at most one 512-byte read.
 */
export async function isCriuPath(path: string): Promise<boolean> {
  let st;
  try { st = await stat(path); } catch { return false; }
  if (st.isDirectory()) return isCriuDirectory(path);
  if (!st.isFile()) return false;
  const f = await FileAccess.open(path);
  try {
    const kind = detectContainer(await f.read(0, 512));
    return kind === 'tar' || kind === 'gzip' || kind === 'zstd';
  } finally {
    await f.close();
  }
}
