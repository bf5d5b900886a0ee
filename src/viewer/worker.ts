// The viewer's Web Worker: owns the open images and does every read, search and diff, so the page
// never freezes. The Wasm core is bundled in (the same dist/cryo.wasm the library uses).
import { CryoWasm } from '../core/wasm.js';
import wasmBytes from 'cryo-wasm-bytes';
import { Engine, errorInfo } from './engine.js';
import type { RequestMessage, ResponseMessage } from './protocol.js';

interface WorkerScope {
  postMessage(message: unknown): void;
  onmessage: ((event: MessageEvent<RequestMessage>) => void) | null;
}
const scope = self as unknown as WorkerScope;

let wasm: Promise<CryoWasm> | undefined;
const engine = new Engine(() => (wasm ??= CryoWasm.instantiate(wasmBytes)));
const cancelled = new Set<number>();

function post(message: ResponseMessage): void {
  scope.postMessage(message);
}

async function handle(m: RequestMessage): Promise<unknown> {
  const isCancelled = () => cancelled.has(m.id);
  switch (m.op) {
    case 'open': return engine.open(m.slot, m.source);
    case 'close': return engine.close(m.slot);
    case 'read': return engine.read(m.slot, m.pid, m.address, m.length);
    case 'raster': return engine.raster(m.slot, m.pid, m.cells, m.diff);
    case 'search':
      return engine.search(m.slot, m.pid, m.pattern, m.maxHits,
        (progress) => post({ id: m.id, kind: 'progress', progress }), isCancelled);
    case 'diff':
      return engine.diff((done, total) => post({ id: m.id, kind: 'progress', progress: { done, total } }), isCancelled);
    case 'cancel':
      cancelled.add(m.target);
      return null;
    case 'stats': return engine.bytesRead();
    case 'summaries': return engine.summaries();
    case 'blob': return engine.blob(m.slot, m.blob, m.max);
  }
}

scope.onmessage = (event) => {
  const m = event.data;
  handle(m).then(
    (result) => post({ id: m.id, kind: 'result', result, bytesRead: engine.bytesRead() }),
    (error: unknown) => post({ id: m.id, kind: 'error', error: errorInfo(error), bytesRead: engine.bytesRead() }),
  ).finally(() => cancelled.delete(m.id));
};
