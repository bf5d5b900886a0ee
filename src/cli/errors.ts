// One place that turns any failure into a one-line message and an exit status.
import { CryoFormatError } from '../core/errors.js';
import { CriuFormatError, CriuSourceError } from '../criu/errors.js';

/** Exit status 1: the image is bad or the operation failed; 2: usage (handled by commander). */
export function reportFailure(context: string, error: unknown): number {
  // CRIU errors name the image file (and offset) themselves: `DIR/mm-42.img: offset 12: ...`
  if (error instanceof CryoFormatError || error instanceof CriuFormatError || error instanceof CriuSourceError) {
    process.stderr.write(`cryo-img: ${context}: ${error.message}\n`);
    return 1;
  }
  const err = error as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && err.syscall) {
    process.stderr.write(`cryo-img: ${context}: ${err.syscall} ${err.path ?? ''}: ${err.code}\n`);
    return 1;
  }
  process.stderr.write(`cryo-img: ${context}: ${err?.message ?? String(error)}\n`);
  return 1;
}
