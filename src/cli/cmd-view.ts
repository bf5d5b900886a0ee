// `cryo-img view IMG [IMG2]`: serve the in-browser viewer (dist/viewer) and the image(s) on 127.0.0.1,
// on a free port, under an unguessable token (every request without it gets 403), with HTTP Range
// requests so the page reads only what it shows. Opens the default browser when there is one.
import { spawn } from 'node:child_process';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { isCriuPath, openCriu } from '../criu/node.js';
import { convertToCryo } from '../convert/index.js';
import { ImageWriter, MemorySink } from '../core/writer.js';
import { loadWasm } from '../node.js';
import { open } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, delimiter, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reportFailure } from './errors.js';

export interface ViewCliOptions {
  port?: number;
  open?: boolean;
}

export interface ViewServerOptions {
  /** Port to listen on; 0 (default) for a free one. */
  port?: number;
  /** Directory of the built viewer (default: dist/viewer next to this file's dist/cli). */
  viewerDir?: string;
  /** Token (default: 32 random bytes, base64url). */
  token?: string;
}

export interface ViewServer {
  /** The page to open: http://127.0.0.1:PORT/TOKEN/?serve=1 */
  url: string;
  port: number;
  token: string;
  /** Image bytes sent so far (bodies of image responses), per image. */
  bytesServed: number[];
  /** Requests refused (403) so far. */
  refused: number;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
};

const SECURITY_HEADERS: Record<string, string> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; " +
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

/** dist/viewer: next to dist/cli when built, or ../../dist/viewer when this file runs from src/cli. */
export function defaultViewerDir(): string {
  const candidates = ['../viewer/', '../../dist/viewer/'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  return candidates.find((dir) => existsSync(join(dir, 'viewer.js'))) ?? candidates[0]!;
}

/** Parse a single `bytes=` range against a size; null if absent, 'bad' if unsatisfiable or unsupported. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'bad' {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'bad';
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'bad';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start > end || start >= size) return 'bad';
  return { start, end };
}

/** Start serving; resolves once listening. */
export async function startViewServer(images: string[], options: ViewServerOptions = {}): Promise<ViewServer> {
  const viewerDir = options.viewerDir ?? defaultViewerDir();
  if (!existsSync(join(viewerDir, 'viewer.js'))) {
    throw new Error(`the viewer is not built (no ${join(viewerDir, 'viewer.js')}); run npm run build:viewer`);
  }
  // Only the files the build wrote are served: no paths from requests ever reach the file system.
  const assets = new Set(readdirSync(viewerDir).filter((name) => TYPES[extname(name)]));
  const files = await Promise.all(images.map(async (path) => {
    const stat = statSync(path);
    // A CRIU image directory has no single file to serve: it is converted to .cryo, in memory.
    if (stat.isDirectory() && (await isCriuPath(path))) return { path, name: `${basename(path)}.cryo`, bytes: await criuDirectoryAsCryo(path) };
    if (!stat.isFile()) throw new Error(`${path} is not a regular file or a CRIU image directory`);
    return { path, name: basename(path), bytes: null };
  }));
  const token = options.token ?? randomBytes(32).toString('base64url');
  const tokenBytes = Buffer.from(token);
  const bytesServed = files.map(() => 0);
  let refused = 0;
  let port = 0;

  const refuse = (res: ServerResponse): void => {
    refused++;
    res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS }).end('forbidden\n');
  };

  const hasToken = (segment: string): boolean => {
    const given = Buffer.from(segment);
    return given.length === tokenBytes.length && timingSafeEqual(given, tokenBytes);
  };

  async function serveImage(req: IncomingMessage, res: ServerResponse, index: number): Promise<void> {
    const file = files[index]!;
    const size = file.bytes ? file.bytes.length : (await open(file.path, 'r').then(async (h) => { try { return (await h.stat()).size; } finally { await h.close(); } }));
    const headers = { ...SECURITY_HEADERS, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    const range = parseRange(req.headers.range, size);
    if (range === 'bad') {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${size}` }).end();
      return;
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : size - 1;
    const length = size === 0 ? 0 : end - start + 1;
    res.writeHead(range ? 206 : 200, {
      ...headers, 'content-length': String(length), ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
    });
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    if (file.bytes) {
      bytesServed[index]! += length;
      res.end(file.bytes.subarray(start, end + 1));
      return;
    }
    const stream = createReadStream(file.path, { start, end });
    stream.on('data', (chunk) => { bytesServed[index]! += chunk.length; });
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }

  const server = createServer((req, res) => {
    void (async () => {
      // Only this host's loopback names (a page of another site rebound to 127.0.0.1 has another Host).
      const host = req.headers.host ?? '';
      if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) return refuse(res);
      const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
      const [, first = '', ...rest] = path.split('/');
      if (!hasToken(first)) return refuse(res);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', ...SECURITY_HEADERS }).end();
        return;
      }
      const tail = rest.join('/');
      if (tail === '' || tail === 'index.html') {
        if (rest.length === 0) { // "/TOKEN" → "/TOKEN/" so relative URLs resolve under the token
          res.writeHead(308, { location: `/${first}/`, ...SECURITY_HEADERS }).end();
          return;
        }
        return sendFile(res, req, join(viewerDir, 'index.html'), TYPES['.html']!);
      }
      if (tail === 'images.json') {
        const body = JSON.stringify(files.map((f, i) => ({ url: `image/${i}`, name: f.name })));
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': TYPES['.json']! }).end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      const image = /^image\/(\d)$/.exec(tail);
      if (image && Number(image[1]) < files.length) return serveImage(req, res, Number(image[1]));
      if (assets.has(tail)) return sendFile(res, req, join(viewerDir, tail), TYPES[extname(tail)]!);
      res.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'text/plain' }).end('not found\n');
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500, SECURITY_HEADERS);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/${token}/?serve=1`,
    port,
    token,
    bytesServed,
    get refused() { return refused; },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function sendFile(res: ServerResponse, req: IncomingMessage, path: string, type: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const body = await handle.readFile();
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
  } finally {
    await handle.close();
  }
}

/** The path of an executable on PATH, or null. */
function which(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Open the URL in the default browser with xdg-open when there is one; never fails. */
function openBrowser(url: string): boolean {
  const opener = which('xdg-open');
  if (!opener) return false;
  try {
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
    return true;
  } catch {
    return false;
  }
}

export async function viewCommand(images: string[], options: ViewCliOptions): Promise<number> {
  let server: ViewServer;
  try {
    server = await startViewServer(images, { port: options.port ?? 0 });
  } catch (error) {
    return reportFailure(images.join(' '), error);
  }
  process.stdout.write(`cryo-img view: ${images.map((p) => basename(p)).join(' and ')} at\n  ${server.url}\n` +
    `Only this machine can connect (127.0.0.1), and only with the token in the URL. Press Ctrl-C to stop.\n`);
  if (options.open !== false && openBrowser(server.url)) process.stdout.write('Opened in the default browser.\n');
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}

async function criuDirectoryAsCryo(path: string): Promise<Uint8Array> {
  const checkpoint = await openCriu(path);
  try {
    const sink = new MemorySink();
    const writer = new ImageWriter(sink, await loadWasm());
    await convertToCryo(checkpoint, writer);
    await writer.finish();
    return sink.bytes();
  } finally {
    await checkpoint.close();
  }
}
