/**
 * The result codes of the Wasm core (assembly/result.ts), with what each one means. Turns a failed
 * Wasm call into a {@link CryoFormatError}.
 *
 * @module
 */
import { CryoFormatError, CryoUnsupportedError, hex, hex32 } from './errors.js';

type Show = (value: bigint) => string;
const dec: Show = (v) => v.toString();
const crc: Show = (v) => hex32(Number(v));
const hx: Show = (v) => hex(v);
const ascii: Show = (v) => {
  let text = '';
  for (let x = v; x > 0n; x >>= 8n) {
    const c = Number(x & 0xffn);
    text += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return JSON.stringify(text);
};

interface CodeInfo {
  name: string;
  subject: string;
  reason: string;
  expected?: Show;
  found?: Show;
  /** Expected reads as "at most". */
  atMost?: boolean;
  atLeast?: boolean;
  unsupported?: boolean;
}

/** Indexed by code number; keep in the order of assembly/result.ts `Code`. */
export const WASM_CODES: readonly CodeInfo[] = [
  { name: 'OK', subject: '', reason: 'ok' },
  { name: 'BAD_ARGUMENT', subject: 'wasm call', reason: 'argument outside Wasm memory' },
  { name: 'FILE_MAGIC', subject: 'file header', reason: 'bad magic', expected: ascii, found: ascii },
  { name: 'FILE_HEADER_CRC', subject: 'file header', reason: 'header CRC32C mismatch', expected: crc, found: crc },
  { name: 'UNSUPPORTED_VERSION', subject: 'file header', reason: 'unsupported major version', expected: dec, found: dec, unsupported: true },
  { name: 'SECTION_MAGIC', subject: 'section', reason: 'bad section magic', expected: ascii, found: ascii },
  { name: 'SECTION_HEADER_CRC', subject: 'section', reason: 'header CRC32C mismatch', expected: crc, found: crc },
  { name: 'SECTION_FLAGS', subject: 'section', reason: 'non-zero reserved flags', expected: hx, found: hx },
  { name: 'UNKNOWN_CODEC', subject: 'section', reason: 'unknown codec', expected: dec, found: dec, unsupported: true, atMost: true },
  { name: 'LENGTH_MISMATCH', subject: 'section', reason: 'stored_length differs from raw_length (codec raw), or is 0 or above raw_length (other codecs)', expected: dec, found: dec },
  { name: 'LIMIT_EXCEEDED', subject: 'section', reason: 'raw_length exceeds the limit of its type', expected: dec, found: dec, atMost: true },
  { name: 'PAST_END', subject: 'section', reason: 'section runs past its end bound', expected: dec, found: dec, atMost: true },
  { name: 'FOOTER_MAGIC', subject: 'footer', reason: 'bad footer magic', expected: ascii, found: ascii },
  { name: 'FOOTER_CRC', subject: 'footer', reason: 'footer CRC32C mismatch', expected: crc, found: crc },
  { name: 'FILE_LENGTH', subject: 'footer', reason: 'file_length differs from the file size', expected: dec, found: dec },
  { name: 'INDEX_OFFSET', subject: 'footer', reason: 'index_offset outside the file', expected: dec, found: dec, atMost: true },
  { name: 'INDEX_HEADER', subject: 'index section', reason: 'INDEX section header inconsistent with the footer', expected: dec, found: dec },
  { name: 'INDEX_ORDER', subject: 'index entry', reason: 'section offset out of file order (gap or overlap)', expected: dec, found: dec },
  { name: 'INDEX_ENTRY_TYPE', subject: 'index entry', reason: 'the index lists an INDEX section', expected: () => 'a type other than INDEX (127)', found: dec },
  { name: 'PAGEMAP_LENGTH', subject: 'section', reason: 'page map length not a multiple of 24', expected: dec, found: dec },
  { name: 'PAGEMAP_ALIGN', subject: 'page-map entry', reason: 'vaddr not page-aligned', expected: hx, found: hx },
  { name: 'PAGEMAP_ORDER', subject: 'page-map entry', reason: 'entries unsorted or overlapping', expected: hx, found: hx, atLeast: true },
  { name: 'PAGEMAP_KIND', subject: 'page-map entry', reason: 'unknown page kind', expected: dec, found: dec, atMost: true },
  { name: 'PAGEMAP_COUNT', subject: 'page-map entry', reason: 'page_count is zero', expected: dec, found: dec, atLeast: true },
  { name: 'PAGEMAP_FLAGS', subject: 'page-map entry', reason: 'non-zero reserved flags', expected: dec, found: dec },
  { name: 'PAGEMAP_STORE_RANGE', subject: 'page-map entry', reason: 'store index out of range of the page store', expected: dec, found: dec, atMost: true },
  { name: 'PAGEMAP_ZERO_STORE', subject: 'page-map entry', reason: 'ZERO entry with a non-zero store_index', expected: dec, found: dec },
  { name: 'PAGEMAP_OVERFLOW', subject: 'page-map entry', reason: 'run passes the end of the address space', expected: hx, found: hx, atMost: true },
  { name: 'PAGEDATA_LENGTH', subject: 'section', reason: 'PAGEDATA raw_length not a non-zero multiple of the page size', expected: dec, found: dec },
  { name: 'PAGEDATA_COVERAGE', subject: 'section', reason: 'PAGEDATA store indices have a gap or an overlap (first store index)', expected: dec, found: dec },
  { name: 'PAYLOAD_CRC', subject: 'section', reason: 'payload CRC32C mismatch', expected: crc, found: crc },
  { name: 'SECTION_TYPE', subject: 'section', reason: 'section type not allowed here', expected: dec, found: dec },
  { name: 'TOO_SMALL', subject: 'file', reason: 'file too small for header, INDEX and footer', expected: dec, found: dec, atLeast: true },
  { name: 'INDEX_LENGTH', subject: 'section', reason: 'INDEX length not a multiple of 56', expected: dec, found: dec },
];

/** Build the CryoFormatError for a failed Wasm call. */
export function wasmFormatError(code: number, offset: bigint, expected: bigint, found: bigint): CryoFormatError {
  const info = WASM_CODES[code] ?? { name: `CODE_${code}`, subject: 'file', reason: `error code ${code}` };
  let expectedText = info.expected ? info.expected(expected) : undefined;
  if (expectedText !== undefined && info.atMost) expectedText = `at most ${expectedText}`;
  if (expectedText !== undefined && info.atLeast) expectedText = `at least ${expectedText}`;
  const details = {
    code: info.name,
    offset: Number(offset),
    subject: info.subject,
    reason: info.reason,
    expected: expectedText,
    found: info.found ? info.found(found) : undefined,
  };
  return info.unsupported ? new CryoUnsupportedError(details) : new CryoFormatError(details);
}
