/**
 * Whole-file verification: {@link verifyImage}.
 *
 * @module
 */
import { toByteSource, type ImageInput } from './byte-source.js';
import { readContents, type ImageContents, type SectionDecoder } from './contents.js';
import { CryoFormatError } from './errors.js';
import { SectionType, type SectionInfo } from './format.js';
import { scanSections } from './scanner.js';
import { readTableOfContents, type TableOfContents } from './toc.js';
import type { CryoWasm } from './wasm.js';

/**
 * Blobs named by descriptors (FORMAT §6.5 `pipe.dataBlob` with `dataLength`) must hold that many
 * bytes. Reported at the offset of the PROCESS section naming them.
 */
function blobReferenceProblems(contents: ImageContents): CryoFormatError[] {
  const problems: CryoFormatError[] = [];
  const blobLength = (id: number): number =>
    (contents.blobs.get(BigInt(id)) ?? []).reduce((sum, s) => sum + s.rawLength, 0);
  for (const info of contents.processes) {
    const offset = contents.processSections.get(info.pid)?.offset ?? 0;
    for (const fd of info.fds) {
      const pipe = fd.pipe;
      if (pipe && pipe.dataLength !== null && pipe.dataLength > 0) {
        const length = pipe.dataBlob === null ? 0 : blobLength(pipe.dataBlob);
        if (length !== pipe.dataLength) {
          problems.push(new CryoFormatError({
            code: 'BLOB_REFERENCE', offset, subject: 'section',
            reason: `pid ${info.pid} fd ${fd.fd}: pipe data blob ${pipe.dataBlob ?? '(none)'} does not hold dataLength bytes`,
            expected: String(pipe.dataLength), found: String(length),
          }));
        }
      }
    }
  }
  return problems;
}

/** The result of {@link verifyImage}. */
export interface VerifyReport {
  /** True when no problem was found. */
  ok: boolean;
  /** Every problem found, each naming its offset; in the order found, without duplicates. */
  problems: CryoFormatError[];
  /** Sections checked by the sequential pass (INDEX included). */
  sections: number;
  /** Bytes covered by checked CRCs in the sequential pass. */
  bytes: number;
  /** Whether the footer and index could be read (random access works). */
  indexOk: boolean;
  /** Whether the sequential pass reached the INDEX and the footer. */
  scanComplete: boolean;
}

/**
 * Verify an image: the table of contents by random access (footer, index), then one sequential pass
 * over every section (header, payload CRC, and equality with its index entry), then the structure:
 * metadata decodes, page maps and page stores are valid, blobs named by pipes hold their bytes.
 * Sections with a codec other than raw need `options.decoder` for the structure checks. Never throws for a malformed file; I/O errors
 * and Wasm failures are thrown.
 */
export async function verifyImage(input: ImageInput, wasm: CryoWasm, options: { decoder?: SectionDecoder } = {}): Promise<VerifyReport> {
  const source = toByteSource(input);
  const problems: CryoFormatError[] = [];
  const seen = new Set<string>();
  const report = (problem: CryoFormatError): void => {
    const key = `${problem.code}@${problem.offset}`;
    if (seen.has(key)) return;
    seen.add(key);
    problems.push(problem);
  };
  const attempt = async <T>(fn: () => Promise<T>): Promise<T | null> => {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof CryoFormatError) {
        report(error);
        return null;
      }
      throw error;
    }
  };

  const toc: TableOfContents | null = await attempt(() => readTableOfContents(source, wasm));
  const scanned: SectionInfo[] = [];
  const walk = scanSections(source, wasm, { toc, report });
  let step = await walk.next();
  while (!step.done) {
    scanned.push(step.value);
    step = await walk.next();
  }
  const summary = step.value;

  const sections = toc ? toc.sections : summary.complete ? scanned.filter((s) => s.type !== SectionType.INDEX) : null;
  const indexOffset = toc ? toc.footer.indexOffset : scanned[scanned.length - 1]?.offset ?? 0;
  const contents = sections ? await attempt(() => readContents(source, wasm, sections, indexOffset, options.decoder)) : null;
  if (contents) for (const problem of blobReferenceProblems(contents)) report(problem);

  return {
    ok: problems.length === 0,
    problems,
    sections: summary.sections,
    bytes: summary.bytes,
    indexOk: toc !== null,
    scanComplete: summary.complete,
  };
}
