// Locating and running the native helper (cryo-helper) from the CLI.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

/** $CRYO_HELPER, else the helper built in this package's native-helper/. */
export function helperPath(): string {
  const fromEnv = process.env.CRYO_HELPER;
  if (fromEnv) return fromEnv;
  const bundled = fileURLToPath(new URL('../../native-helper/cryo-helper', import.meta.url));
  if (!existsSync(bundled)) {
    throw new Error(`the native helper is not built (${bundled}); run 'npm run build:native'`);
  }
  return bundled;
}

/** Runs the helper with the terminal's stdio; resolves to its exit status (128+signal if killed). */
export function runHelper(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(helperPath(), args, { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}
