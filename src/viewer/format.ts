// Small formatting helpers for the page: human sizes, addresses, names of flags and states.
import { humanBytes } from '../cli/units.js';
import { openFlagNames, protString, stateName } from '../cli/names.js';
import type { ViewVma } from './protocol.js';

export { humanBytes, openFlagNames, protString, stateName };

export function hexAddr(value: bigint | number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  return '0x' + value.toString(16);
}

export function hex64(value: bigint | null | undefined): string {
  if (value === null || value === undefined) return '—';
  return '0x' + BigInt.asUintN(64, value).toString(16).padStart(16, '0');
}

export function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}

/** The colour class of a VMA: code, data, heap, stack, anon, file, shared, special. */
export function vmaClass(v: Pick<ViewVma, 'kind' | 'prot' | 'shared'>): string {
  switch (v.kind) {
    case 'heap': return 'heap';
    case 'stack': return 'stack';
    case 'vdso': case 'vvar': case 'vsyscall': return 'special';
    case 'shmem': case 'memfd': return 'shared';
    case 'anon': return v.shared ? 'shared' : 'anon';
    case 'file': case 'deleted':
      if (v.shared) return 'shared';
      if (v.prot & 4) return 'code';
      if (v.prot & 2) return 'data';
      return 'file';
    default: return 'anon';
  }
}

export const CLASS_LABELS: Record<string, string> = {
  code: 'code', data: 'data', heap: 'heap', stack: 'stack', anon: 'anonymous', file: 'file-backed',
  shared: 'shared', special: 'vdso/vvar',
};

/** Parse an address typed by a person: 0x…, hex with a-f, or decimal. */
export function parseAddress(text: string): bigint | null {
  const t = text.trim().toLowerCase().replace(/_/g, '');
  if (/^0x[0-9a-f]+$/.test(t)) return BigInt(t);
  if (/^[0-9a-f]*[a-f][0-9a-f]*$/.test(t)) return BigInt('0x' + t);
  if (/^[0-9]+$/.test(t)) return BigInt(t);
  return null;
}

/** Parse hex bytes like "de ad be ef" or "deadbeef" or "0xde 0xad". */
export function parseHexBytes(text: string): Uint8Array | null {
  const t = text.trim().toLowerCase().replace(/0x/g, '').replace(/[\s,:]+/g, '');
  if (t.length === 0 || t.length % 2 || !/^[0-9a-f]+$/.test(t)) return null;
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function formatDate(ms: number | null): string {
  if (ms === null) return '—';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}
