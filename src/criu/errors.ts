/**
 * Errors of the CRIU image reader. Every error names the file (as the source names it, e.g.
 * `checkpoint/mm-42.img` or `/path/mm-42.img`) and the byte offset in that file where decoding failed.
 *
 * @module
 */

/** A CRIU image file is malformed: truncated, corrupted, or not what its name says. */
export class CriuFormatError extends Error {
  override readonly name = 'CriuFormatError';
  /** The file the error is about. */
  readonly file: string;
  /** Byte offset in `file` where the problem was found. */
  readonly offset: number;
  /** What was wrong, without file and offset. */
  readonly reason: string;

  constructor(file: string, offset: number, reason: string) {
    super(`${file}: offset ${offset}: ${reason}`);
    this.file = file;
    this.offset = offset;
    this.reason = reason;
  }
}

/** A checkpoint (directory or archive) cannot be used: a missing image, an unsupported compression. */
export class CriuSourceError extends Error {
  override readonly name = 'CriuSourceError';
}

/** A protobuf wire-format error at an offset of the buffer being decoded (wrapped into CriuFormatError). */
export class WireError extends Error {
  override readonly name = 'WireError';
  readonly offset: number;
  readonly reason: string;
  constructor(offset: number, reason: string) {
    super(`offset ${offset}: ${reason}`);
    this.offset = offset;
    this.reason = reason;
  }
}

/** Something odd that decoding survived (a missing required field, a field of an unexpected wire type). */
export interface DecodeWarning {
  /** Byte offset in the file. */
  offset: number;
  message: string;
}
