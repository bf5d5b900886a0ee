/**
 * crit's explorers (`crit x DIR ps|fds|mems|rss`) as small functions over a {@link CriuCheckpoint},
 * producing the same text crit 4.2 prints.
 *
 * @module
 */
import type { CriuCheckpoint } from './checkpoint.js';
import { toNumber, type DecodedMessage } from './protobuf.js';
import { quotedPrintable } from './pretty.js';

const FD_TYPE_NAMES: Record<number, string> = {
  0: 'UND', 1: 'REG', 2: 'PIPE', 3: 'FIFO', 4: 'INETSK', 5: 'UNIXSK', 6: 'EVENTFD', 7: 'EVENTPOLL', 8: 'INOTIFY',
  9: 'SIGNALFD', 10: 'PACKETSK', 11: 'TTY', 12: 'FANOTIFY', 13: 'NETLINKSK', 14: 'NS', 15: 'TUNF', 16: 'EXT',
  17: 'TIMERFD', 18: 'MEMFD', 19: 'BPFMAP', 20: 'PIDFD', 65534: 'CTL_TTY', 65535: 'AUTOFS_PIPE',
};

export function fdTypeName(type: number): string {
  return FD_TYPE_NAMES[type] ?? String(type);
}

const pad = (s: string, n: number) => s.padStart(n);
const padEnd = (s: string, n: number) => s.padEnd(n);
const hex8 = (v: unknown) => toNumber(v).toString(16).padStart(8, '0');

/** How crit names the object behind a file id. */
export async function fileString(cp: CriuCheckpoint, type: number, id: number): Promise<string> {
  const f = (await cp.files()).get(id);
  switch (type) {
    case 1: {
      const reg = f?.['reg'] as DecodedMessage | undefined;
      return (reg?.['name'] as string | undefined) || 'unknown path';
    }
    case 2: {
      const p = f?.['pipe'] as DecodedMessage | undefined;
      return p ? `pipe[${toNumber(p['pipe_id'])}]` : 'pipe[?]';
    }
    case 5: {
      const u = f?.['usk'] as DecodedMessage | undefined;
      if (!u) return 'unix[?]';
      const name = u['name'] as Uint8Array | undefined;
      const n = name && name.length ? ' ' + quotedPrintable(name) : '';
      return `unix[${toNumber(u['ino'])} (${toNumber(u['peer'])})${n}]`;
    }
    default:
      return `${fdTypeName(type)}.${id}`;
  }
}

/** `crit x DIR ps`. */
export async function explorePs(cp: CriuCheckpoint): Promise<string> {
  interface Node { pid: number; pgid: number; sid: number; ppid: number; comm: string; kids: Node[] }
  const nodes = new Map<number, Node>();
  for (const p of cp.pstree) {
    const pid = toNumber(p['pid']);
    const core = await cp.core(pid);
    const tc = core['tc'] as DecodedMessage;
    nodes.set(pid, { pid, pgid: toNumber(p['pgid']), sid: toNumber(p['sid']), ppid: toNumber(p['ppid']), comm: tc['comm'] as string, kids: [] });
  }
  let root: Node | undefined;
  for (const n of nodes.values()) {
    if (n.ppid === 0) { root = n; continue; }
    nodes.get(n.ppid)?.kids.push(n);
  }
  let out = `${pad('PID', 7)}${pad('PGID', 7)}${pad('SID', 7)}   COMM\n`;
  const show = (n: Node, depth: number) => {
    out += `${pad(String(n.pid), 7)}${pad(String(n.pgid), 7)}${pad(String(n.sid), 7)}   ${' '.repeat(4 * depth)}${n.comm}\n`;
    for (const k of n.kids) show(k, depth + 1);
  };
  if (root) show(root, 0);
  return out;
}

/** `crit x DIR fds`. */
export async function exploreFds(cp: CriuCheckpoint): Promise<string> {
  let out = '';
  for (const pid of cp.pids) {
    out += `${pid}\n`;
    for (const fd of await cp.fdinfo(pid)) {
      out += `\t${pad(String(toNumber(fd['fd'])), 7)}: ${await fileString(cp, toNumber(fd['type']), toNumber(fd['id']))}\n`;
    }
    const fs = await cp.fs(pid);
    out += `\t${pad('cwd', 7)}: ${await fileString(cp, 1, toNumber(fs['cwd_id']))}\n`;
    out += `\t${pad('root', 7)}: ${await fileString(cp, 1, toNumber(fs['root_id']))}\n`;
  }
  return out;
}

/** `crit x DIR mems`. */
export async function exploreMems(cp: CriuCheckpoint): Promise<string> {
  let out = '';
  const ids = new Map<number, number>();
  const vid = (id: number) => {
    let v = ids.get(id);
    if (v === undefined) { v = ids.size + 1; ids.set(id, v); }
    return v;
  };
  for (const pid of cp.pids) {
    const mm = await cp.mm(pid);
    out += `${pid}\n`;
    out += `\t${padEnd('exe', 36)}    ${await fileString(cp, 1, toNumber(mm['exe_file_id']))}\n`;
    for (const vma of (mm['vmas'] as DecodedMessage[] | undefined) ?? []) {
      const st = toNumber(vma['status']);
      const shmid = toNumber(vma['shmid']);
      const pgoff = toNumber(vma['pgoff']);
      let fn: string;
      if (st & (1 << 10)) fn = ` ips[${vid(shmid).toString(16)}]`;
      else if (st & (1 << 8)) fn = ` shmem[${vid(shmid).toString(16)}]`;
      else if (st & (1 << 11)) fn = ` packet[${vid(shmid).toString(16)}]`;
      else if (st & ((1 << 6) | (1 << 7))) {
        fn = ' ' + (await fileString(cp, 1, shmid));
        if (pgoff) fn += ` + 0x${pgoff.toString(16)}`;
        if (st & (1 << 7)) fn += ' (s)';
      } else if (st & (1 << 1)) fn = ' [stack]';
      else if (st & (1 << 2)) fn = ' [vsyscall]';
      else if (st & (1 << 3)) fn = ' [vdso]';
      else if (toNumber(vma['flags']) & 0x100) fn = ' [stack?]';
      else fn = '';
      if (!(st & 1)) fn += ' *';
      const prot = toNumber(vma['prot']);
      const p = (prot & 1 ? 'r' : '-') + (prot & 2 ? 'w' : '-') + (prot & 4 ? 'x' : '-');
      const astr = `${hex8(vma['start'])}-${hex8(vma['end'])}`;
      out += `\t${padEnd(astr, 36)}${p}${fn}\n`;
    }
  }
  return out;
}

/** `crit x DIR rss`. */
export async function exploreRss(cp: CriuCheckpoint): Promise<string> {
  let out = '';
  for (const pid of cp.pids) {
    const vmas = ((await cp.mm(pid))['vmas'] as DecodedMessage[] | undefined) ?? [];
    const pms = (await cp.image(`pagemap-${pid}.img`)).entries;
    out += `${pid}\n`;
    let vmi = 0;
    let pvmi = -1;
    for (const pm of pms.slice(1)) {
      const vaddr = toNumber(pm['vaddr']);
      const nr = toNumber(pm['nr_pages'] ?? pm['compat_nr_pages']);
      const pstr = `\t${vaddr.toString(16)} / ${padEnd(String(nr), 8)}`;
      while (vmi < vmas.length && toNumber(vmas[vmi]!['end']) <= vaddr) vmi++;
      const pme = vaddr + nr * 4096;
      let vstr = '';
      while (vmi < vmas.length && toNumber(vmas[vmi]!['start']) < pme) {
        const vma = vmas[vmi]!;
        if (vmi === pvmi) vstr += ' ~';
        else {
          const start = toNumber(vma['start']);
          vstr += ` ${hex8(start)} / ${padEnd(String((toNumber(vma['end']) - start) / 4096), 8)}`;
          if (toNumber(vma['status']) & ((1 << 6) | (1 << 7))) vstr += ' ' + (await fileString(cp, 1, toNumber(vma['shmid'])));
          pvmi = vmi;
        }
        vstr += '\n\t' + ' '.repeat(23);
        vmi++;
      }
      vmi = Math.max(0, vmi - 1);
      out += `${padEnd(pstr, 24)}${vstr}\n`;
    }
  }
  return out;
}

export const EXPLORERS = { ps: explorePs, fds: exploreFds, mems: exploreMems, rss: exploreRss } as const;
