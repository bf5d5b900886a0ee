/**
 * Whole-file verification: {@link verifyImage}.
 *
 * @module
 */
import { toByteSource, type ImageInput } from './byte-source.js';
import { readContents } from './contents.js';
import { CryoFormatError } from './errors.js';
import { SectionType, type SectionInfo } from './format.js';
import { scanSections } from './scanner.js';
import { readTableOfContents, type TableOfContents } from './toc.js';
import type { CryoWasm } from './wasm.js';

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
 * metadata decodes, page maps and page stores are valid. Never throws for a malformed file; I/O errors
 * and Wasm failures are thrown.
 */
export async function verifyImage(input: ImageInput, wasm: CryoWasm): Promise<VerifyReport> {
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
  if (sections) await attempt(() => readContents(source, wasm, sections, indexOffset));

  return {
    ok: problems.length === 0,
    problems,
    sections: summary.sections,
    bytes: summary.bytes,
    indexOk: toc !== null,
    scanComplete: summary.complete,
  };
}
