// `cryo-img inspect IMG`: reads only metadata (footer, index, IMAGE_META, PROCESS, PAGEMAP sections),
// never page data, so it costs the same for a 1 MiB and a 100 GiB image.
import { stat } from 'node:fs/promises';
import { openImage } from '../node.js';
import { reportFailure } from './errors.js';
import { buildInspectReport } from './inspect-report.js';
import { renderInspectText } from './inspect-text.js';

export interface InspectCliOptions {
  json?: boolean;
  pid: number[];
  threads?: boolean;
  maps?: boolean;
  fds?: boolean;
  env?: boolean;
  pagemap?: boolean;
}

export async function inspectCommand(path: string, options: InspectCliOptions): Promise<number> {
  try {
    const image = await openImage(path);
    try {
      // No section filter given: everything but the environment, which may hold secrets (and the page
      // map runs, which are shown by default for CRIU checkpoints only, as `crit x DIR rss` shows them).
      const any = options.threads || options.maps || options.fds || options.env || options.pagemap;
      const criu = 'format' in image && image.format === 'criu';
      const st = await stat(path);
      const summary = 'sections' in image
        ? { path, bytes: st.size, sections: image.sections.length }
        : { path, bytes: st.isFile() ? st.size : await image.sizeBytes(), sections: null }; // CRIU: archive, or the directory's files
      const report = buildInspectReport(image, summary, {
        pids: options.pid,
        threads: any ? !!options.threads : true,
        maps: any ? !!options.maps : true,
        fds: any ? !!options.fds : true,
        env: !!options.env,
        pagemap: any ? !!options.pagemap : criu,
      });
      process.stdout.write(options.json ? JSON.stringify(report, null, 2) + '\n' : renderInspectText(report));
      return 0;
    } finally {
      await image.close();
    }
  } catch (error) {
    return reportFailure(path, error);
  }
}
