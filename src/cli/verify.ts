// Whole-image verification shared by `verify` and `restore` (which refuses a damaged image before
// any process exists).
import { verifyFile, type VerifyReport } from '../node.js';

export interface VerifySummary {
  ok: boolean;
  sections: number;
  bytes: number;
  /** One line per problem, each naming its offset. */
  problems: string[];
}

export async function verifyImageFile(path: string): Promise<VerifySummary> {
  const report: VerifyReport = await verifyFile(path);
  return {
    ok: report.ok,
    sections: report.sections,
    bytes: report.bytes,
    problems: report.problems.map((p) => p.message),
  };
}
