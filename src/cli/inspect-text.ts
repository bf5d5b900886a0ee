// The human rendering of an inspect report: process tree, then per process its threads, memory map
// and descriptors as aligned tables.
import type { InspectReport, ProcessReport } from './inspect-report.js';
import { accessMode } from './names.js';
import { renderTable } from './table.js';
import { humanBytes } from './units.js';

export function renderInspectText(report: InspectReport): string {
  const out: string[] = [];
  const img = report.image;
  const when = img.createdAt ? img.createdAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : 'unknown time';
  const host = img.host ? ` on ${img.host.hostname ?? '?'} (Linux ${img.host.kernel ?? '?'})` : '';
  out.push(`image ${img.path}: ${humanBytes(img.bytes)}${img.sections === null ? '' : `, ${img.sections} sections`}`);
  out.push(`dumped ${when} by ${img.tool ?? 'unknown tool'}${host}`);
  out.push('');
  out.push('process tree:');
  out.push(...renderTree(report.processes));
  for (const p of report.processes) {
    out.push('');
    out.push(...renderProcess(p));
  }
  return out.join('\n') + '\n';
}

function describe(p: ProcessReport): string {
  const args = p.cmdline.length ? p.cmdline.join(' ') : `[${p.comm ?? '?'}]`;
  return `${p.pid} ${p.comm ?? '?'}  ${args}`;
}

function renderTree(processes: ProcessReport[]): string[] {
  const byPid = new Map(processes.map((p) => [p.pid, p]));
  const children = new Map<number, ProcessReport[]>();
  const roots: ProcessReport[] = [];
  for (const p of processes) {
    if (p.ppid !== null && byPid.has(p.ppid)) {
      const list = children.get(p.ppid) ?? [];
      list.push(p);
      children.set(p.ppid, list);
    } else {
      roots.push(p);
    }
  }
  const lines: string[] = [];
  const walk = (p: ProcessReport, prefix: string, branch: string) => {
    lines.push(`  ${prefix}${branch}${describe(p)}`);
    const kids = children.get(p.pid) ?? [];
    const childPrefix = prefix + (branch === '' ? '' : branch === '└─ ' ? '   ' : '│  ');
    kids.forEach((kid, i) => walk(kid, childPrefix, i === kids.length - 1 ? '└─ ' : '├─ '));
  };
  for (const root of roots) walk(root, '', '');
  return lines;
}

function renderProcess(p: ProcessReport): string[] {
  const out: string[] = [];
  out.push(`process ${p.pid} (${p.comm ?? '?'})  ppid ${p.ppid ?? '?'}  pgid ${p.pgid ?? '?'}  sid ${p.sid ?? '?'}  state ${p.state ?? '?'}`);
  out.push(`  command: ${p.cmdline.join(' ')}`);
  out.push(`  exe: ${p.exe ?? '?'}`);
  out.push(`  cwd: ${p.cwd ?? '?'}   root: ${p.root ?? '?'}   umask: ${p.umask === null ? '?' : p.umask.toString(8).padStart(4, '0')}`);
  const m = p.memory;
  out.push(
    `  memory: ${m.vmas} VMAs, ${humanBytes(m.mappedBytes)} mapped, ${humanBytes(m.storedBytes)} stored` +
      (m.zeroBytes ? `, ${humanBytes(m.zeroBytes)} zero` : ''),
  );
  if (p.threads) {
    out.push('', `  threads (${p.threads.length}):`);
    out.push(
      renderTable(
        [{ title: 'TID', align: 'right' }, { title: 'NAME' }, { title: 'STATE' }, { title: 'RIP' }, { title: 'RSP' }, { title: 'FS_BASE' }, { title: 'SYSCALL' }],
        p.threads.map((t) => [
          String(t.tid),
          t.comm ?? '?',
          t.state ?? '?',
          t.registers?.rip ?? '?',
          t.registers?.rsp ?? '?',
          t.fsBase ?? '?',
          t.restart && t.restart !== 'none' ? t.restart : '',
        ]),
        '    ',
      ),
    );
  }
  if (p.maps) {
    out.push('', `  memory map (${p.maps.length} VMAs):`);
    out.push(
      renderTable(
        [{ title: 'START' }, { title: 'END' }, { title: 'SIZE', align: 'right' }, { title: 'PROT' }, { title: 'OFFSET', align: 'right' }, { title: 'KIND' }, { title: 'STORED', align: 'right' }, { title: 'NAME' }],
        p.maps.map((v) => [
          v.start.slice(2).padStart(12, '0'),
          v.end.slice(2).padStart(12, '0'),
          humanBytes(v.size),
          v.prot,
          v.offset && v.offset !== '0x0' ? v.offset : '',
          v.kind ?? '?',
          v.pagesStored || v.zeroPages ? `${v.pagesStored}${v.zeroPages ? `+${v.zeroPages}z` : ''} pg` : '-',
          v.name,
        ]),
        '    ',
      ),
    );
  }
  if (p.pageMap) {
    const pages = p.pageMap.reduce((sum, r) => sum + r.pages, 0);
    out.push('', `  page map (${p.pageMap.length} runs, ${pages} pages):`);
    out.push(
      renderTable(
        [{ title: 'VADDR' }, { title: 'PAGES', align: 'right' }, { title: 'KIND' }, { title: 'STORE', align: 'right' }, { title: 'IN VMA' }],
        p.pageMap.map((r) => [
          r.vaddr.slice(2).padStart(12, '0'),
          String(r.pages),
          r.kind,
          r.storeIndex === null ? '' : String(r.storeIndex),
          r.vmas.map((start) => start.slice(2).padStart(12, '0')).join(' ') || '(none)',
        ]),
        '    ',
      ),
    );
  }
  if (p.fds) {
    out.push('', `  file descriptors (${p.fds.length}):`);
    out.push(
      renderTable(
        [{ title: 'FD', align: 'right' }, { title: 'TYPE' }, { title: 'MODE' }, { title: 'POS', align: 'right' }, { title: 'FLAGS' }, { title: 'PATH' }],
        p.fds.map((f) => [
          String(f.fd),
          f.type ?? '?',
          f.flags === null ? '?' : accessMode(f.flags) + (f.cloexec ? ' cloexec' : ''),
          f.pos === null ? '' : String(f.pos),
          f.flagNames ?? '',
          fdPath(f),
        ]),
        '    ',
      ),
    );
  }
  if (p.environ) {
    out.push('', `  environment (${p.environ.length}):`);
    for (const entry of p.environ) out.push(`    ${entry}`);
  }
  return out;
}

function fdPath(f: NonNullable<ProcessReport['fds']>[number]): string {
  let text = f.path ?? '';
  if (f.deleted) text += ' (deleted)';
  if (f.pipe?.dataLength) text += `  [${f.pipe.dataLength} bytes waiting]`;
  if (f.socket) text += `  [${[f.socket.family, f.socket.type, f.socket.state].filter(Boolean).join(' ')}${f.socket.local ? ` ${f.socket.local}` : ''}${f.socket.peer ? ` -> ${f.socket.peer}` : ''}]`;
  return text;
}
