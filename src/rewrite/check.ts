// `rewrite --check`: before a relocated image is restored on this host, does every file it now names
// exist, and is it still the file the image recorded (type, permission bits, size)?
import { statSync } from 'node:fs';
import type { CryoImage } from '../core/reader.js';
import type { RawMap } from '../core/model.js';
import type { RewritePlan } from './plan.js';

const S_IFMT = 0o170000;

export function checkRelocatedFiles(image: CryoImage, plan: RewritePlan): string[] {
  const problems: string[] = [];
  for (const process of image.processes) {
    const raw = plan.processes.get(process.pid);
    if (!raw) continue;
    const fds = (Array.isArray(raw.fds) ? raw.fds : []) as RawMap[];
    process.fds.forEach((before, i) => {
      const after = fds[i];
      if (!after || typeof after.path !== 'string' || after.path === before.path) return;
      const where = `process ${process.pid} fd ${before.fd}: ${after.path}`;
      if (before.deleted) return; // recreated from the image's copy at restore
      let st;
      try {
        st = statSync(after.path);
      } catch (error) {
        problems.push(`${where}: ${(error as NodeJS.ErrnoException).code ?? 'cannot stat'}`);
        return;
      }
      if (before.mode !== null && (st.mode & S_IFMT) !== (before.mode & S_IFMT)) {
        problems.push(`${where}: file type differs (image 0o${(before.mode & S_IFMT).toString(8)}, here 0o${(st.mode & S_IFMT).toString(8)})`);
      } else if (before.mode !== null && (st.mode & 0o7777) !== (before.mode & 0o7777)) {
        problems.push(`${where}: mode differs (image 0o${(before.mode & 0o7777).toString(8)}, here 0o${(st.mode & 0o7777).toString(8)})`);
      }
      if (st.isFile() && before.size !== null && st.size !== before.size) {
        problems.push(`${where}: size differs (image ${before.size} bytes, here ${st.size})`);
      }
      if (st.isFile() && before.pos !== null && before.pos > st.size) {
        problems.push(`${where}: the file offset ${before.pos} is past its end (${st.size} bytes)`);
      }
    });
    const vmas = (Array.isArray(raw.vmas) ? raw.vmas : []) as RawMap[];
    process.vmas.forEach((before, i) => {
      const after = vmas[i];
      if (!after || typeof after.path !== 'string' || after.path === before.path || before.kind === 'deleted') return;
      try {
        if (!statSync(after.path).isFile()) problems.push(`process ${process.pid} mapping 0x${before.start.toString(16)}: ${after.path} is not a regular file`);
      } catch (error) {
        problems.push(`process ${process.pid} mapping 0x${before.start.toString(16)}: ${after.path}: ${(error as NodeJS.ErrnoException).code ?? 'cannot stat'}`);
      }
    });
    for (const key of ['cwd', 'root'] as const) {
      const after = raw[key];
      if (typeof after === 'string' && after !== process[key]) {
        try {
          if (!statSync(after).isDirectory()) problems.push(`process ${process.pid} ${key}: ${after} is not a directory`);
        } catch (error) {
          problems.push(`process ${process.pid} ${key}: ${after}: ${(error as NodeJS.ErrnoException).code ?? 'cannot stat'}`);
        }
      }
    }
  }
  return problems;
}
