// Worker thread of WorkerDecoder (./node.ts): reads a section's stored payload from the image file
// (its own descriptor, positional reads), checks its CRC32C against the index, decodes it and computes
// the CRC32C of the decoded bytes (for writing them raw), all in its own Wasm engine.
import { openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { WasmEngine } from '../codec/engine.js';
import { CryoFormatError } from '../core/errors.js';

interface Job {
  id: number;
  section: { codec: number; rawLength: number; storedLength: number; offset: number; payloadOffset: number; payloadCrc: number; typeName: string };
  target: Uint8Array;
}

const { module, path } = workerData as { module: WebAssembly.Module; path: string };
const engine = await WasmEngine.create(module);
const fd = openSync(path, 'r');
const stored = new Uint8Array((1 << 20) + 64);

parentPort!.on('message', ({ id, section, target }: Job) => {
  try {
    const n = section.storedLength;
    let done = 0;
    while (done < n) {
      const got = readSync(fd, stored, done, n - done, section.payloadOffset + done);
      if (got === 0) throw new Error(`${path}: file ended at ${section.payloadOffset + done}`);
      done += got;
    }
    const payload = stored.subarray(0, n);
    engine.io.set(payload);
    const storedCrc = engine.crcIo(n);
    if (storedCrc !== section.payloadCrc >>> 0) {
      throw new CryoFormatError({
        code: 'PAYLOAD_CRC', offset: section.offset, subject: 'section', reason: 'payload CRC32C mismatch',
        expected: '0x' + (section.payloadCrc >>> 0).toString(16).toUpperCase().padStart(8, '0'),
        found: '0x' + storedCrc.toString(16).toUpperCase().padStart(8, '0'),
      });
    }
    const view = engine.decodeIo(section, n);
    const bytes = target.subarray(0, view.length);
    bytes.set(view);
    // The CRC32C of the decoded bytes, as the payload records it (FORMAT §3.1): the unpacked section
    // carries it, so whoever reads the output (verify, the restorer) checks this decode end to end.
    const crc = engine.recordedRawCrc();
    parentPort!.postMessage({ id, target, crc }, [target.buffer as ArrayBuffer]);
  } catch (error) {
    const e = error as CryoFormatError;
    parentPort!.postMessage({ id, target, error: { message: e.message, name: e.name, details: e instanceof CryoFormatError ? e.toJSON() : null } }, [target.buffer as ArrayBuffer]);
  }
});
