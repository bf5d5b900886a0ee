// `cryo-img verify IMG`: every section header and payload checksum, the index against the sections
// actually in the file, the footer, and the structure of metadata and page maps. Exit 0 only if intact.
import { verifyImageFile } from './verify.js';
import { reportFailure } from './errors.js';

export async function verifyCommand(path: string, options: { json?: boolean }): Promise<number> {
  try {
    const report = await verifyImageFile(path);
    if (options.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    } else if (report.ok) {
      process.stdout.write(`${path}: ok (${report.sections} sections, ${report.bytes} bytes checked)\n`);
    } else {
      for (const problem of report.problems) process.stdout.write(`${path}: ${problem}\n`);
    }
    return report.ok ? 0 : 1;
  } catch (error) {
    return reportFailure(path, error);
  }
}
