/**
 * Errors of the `.cryo` reader and writer. Every refusal of a malformed file is a
 * {@link CryoFormatError} that names the byte offset of the offending structure and what the format
 * expected there (docs/FORMAT.md §10).
 *
 * @module
 */

/** Details of a format error. */
export interface CryoFormatErrorDetails {
  /** Stable machine-readable code, e.g. `PAYLOAD_CRC`, `SECTION_MAGIC`, `TRUNCATED`. */
  code: string;
  /** File offset of the offending structure (section header, index entry, page-map entry, footer). */
  offset: number;
  /** What the structure is: `"section"`, `"footer"`, `"index entry"`, `"page-map entry"`, ... */
  subject: string;
  /** What went wrong, without the subject and offset, e.g. `"payload CRC32C mismatch"`. */
  reason: string;
  /** What the format requires there (human-readable), when there is one value to name. */
  expected?: string | undefined;
  /** What the file holds there (human-readable). */
  found?: string | undefined;
  cause?: unknown;
}

/**
 * A malformed `.cryo` file. The message reads like
 * `section at offset 1234: payload CRC32C mismatch (expected 0x1A2B3C4D, found 0x00000000)`.
 */
export class CryoFormatError extends Error {
  override name = 'CryoFormatError';
  readonly code: string;
  readonly offset: number;
  readonly subject: string;
  readonly reason: string;
  readonly expected: string | undefined;
  readonly found: string | undefined;

  constructor(details: CryoFormatErrorDetails) {
    const values =
      details.expected !== undefined || details.found !== undefined
        ? ` (${[
            details.expected !== undefined ? `expected ${details.expected}` : '',
            details.found !== undefined ? `found ${details.found}` : '',
          ]
            .filter(Boolean)
            .join(', ')})`
        : '';
    super(`${details.subject} at offset ${details.offset}: ${details.reason}${values}`,
      details.cause !== undefined ? { cause: details.cause } : undefined);
    this.code = details.code;
    this.offset = details.offset;
    this.subject = details.subject;
    this.reason = details.reason;
    this.expected = details.expected;
    this.found = details.found;
  }

  /** JSON form (the message included), e.g. for `verify --json`. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name, code: this.code, offset: this.offset, subject: this.subject, reason: this.reason,
      expected: this.expected, found: this.found, message: this.message,
    };
  }
}

/**
 * A well-formed file this reader cannot read: another major version, or a section codec it does not
 * know (the codec id and the section's offset are in the message). A subclass of CryoFormatError, so
 * one `catch` handles every refusal.
 */
export class CryoUnsupportedError extends CryoFormatError {
  override name = 'CryoUnsupportedError';
}

/**
 * The Wasm core failed in a way that is not the file's fault (a trap, a bad argument, no memory).
 * A bug or a resource limit; never a format problem.
 */
export class CryoWasmError extends Error {
  override name = 'CryoWasmError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** `0x` + 8 hex digits, upper case: how CRCs are shown in messages. */
export function hex32(value: number): string {
  return '0x' + (value >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

/** `0x` + hex digits of a bigint or number. */
export function hex(value: bigint | number): string {
  return '0x' + value.toString(16).toUpperCase();
}
