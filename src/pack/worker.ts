// Worker thread of WorkerEncoder (./node.ts): encodes PAGEDATA payloads with its own Wasm engine.
import { parentPort, workerData } from 'node:worker_threads';
import { codecLevel, WasmEngine } from '../codec/engine.js';

const { module, level } = workerData as { module: WebAssembly.Module; level: number };
const engine = await WasmEngine.create(module);
const settings = codecLevel(level);
parentPort!.on('message', (message: { id: number; bytes: Uint8Array }) => {
  try {
    const { codec, payload } = engine.encode(message.bytes, settings);
    const block = message.bytes;
    parentPort!.postMessage({ id: message.id, codec, payload, block }, [payload.buffer as ArrayBuffer, block.buffer as ArrayBuffer]);
  } catch (error) {
    parentPort!.postMessage({ id: message.id, error: (error as Error).message });
  }
});
