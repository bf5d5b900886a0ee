// The page's side of the worker protocol: one request, one promise; progress through a callback.
import type { ErrorInfo, Request, RequestMessage, ResponseMessage } from './protocol.js';

declare const __WORKER_SOURCE__: string;

export class WorkerError extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
    this.name = info.name;
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  progress?: ((p: unknown) => void) | undefined;
}

export class WorkerClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Bytes read from each open image so far, as the worker last reported. */
  bytesRead: number[] = [0, 0];
  onStats: (() => void) | undefined;

  constructor() {
    this.worker = createWorker();
    this.worker.onmessage = (event: MessageEvent<ResponseMessage>) => {
      const m = event.data;
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.kind === 'progress') {
        p.progress?.(m.progress);
        return;
      }
      this.pending.delete(m.id);
      this.bytesRead = m.bytesRead;
      this.onStats?.();
      if (m.kind === 'result') p.resolve(m.result);
      else p.reject(new WorkerError(m.error));
    };
    this.worker.onerror = (event) => {
      const error = new WorkerError({ name: 'WorkerError', message: `the viewer's worker failed: ${event.message}` });
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
    };
  }

  /** Send a request; `id` is given to `started` so it can be cancelled. */
  call<T>(request: Request, progress?: (p: unknown) => void, started?: (id: number) => void): Promise<T> {
    const id = this.nextId++;
    started?.(id);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, progress });
      const message: RequestMessage = { ...request, id };
      this.worker.postMessage(message);
    });
  }

  cancel(target: number): void {
    void this.call({ op: 'cancel', target });
  }
}

/** worker.js next to the page; from file:// (no workers from files) the same code from a blob: URL. */
function createWorker(): Worker {
  if (location.protocol === 'http:' || location.protocol === 'https:') {
    try {
      return new Worker(new URL('worker.js', document.baseURI));
    } catch {
      // fall through
    }
  }
  const url = URL.createObjectURL(new Blob([__WORKER_SOURCE__], { type: 'text/javascript' }));
  return new Worker(url);
}
