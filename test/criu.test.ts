import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage } from '../src/criu/images.js';
import { toCritJson, stringifyCritJson } from '../src/criu/pretty.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'criu');
const NAMES = ['sleep', 'counter', 'tree', 'threads'];

/** JSON.parse that keeps integers beyond 2^53 exact (as bigint), like Python's json. */
function parseJsonBig(text: string): unknown {
  let i = 0;
  const ws = () => { while (/\s/.test(text[i] ?? '')) i++; };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; const o: Record<string, unknown> = {}; ws();
      if (text[i] === '}') { i++; return o; }
      for (;;) {
        ws(); const k = value() as string; ws(); i++; // ':'
        o[k] = value(); ws();
        if (text[i++] === '}') return o;
      }
    }
    if (c === '[') {
      i++; const a: unknown[] = []; ws();
      if (text[i] === ']') { i++; return a; }
      for (;;) { a.push(value()); ws(); if (text[i++] === ']') return a; }
    }
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const s = JSON.parse(text.slice(i, j + 1)) as string; i = j + 1; return s;
    }
    const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?|^true|^false|^null/.exec(text.slice(i, i + 40))!;
    i += m[0].length;
    if (/^-?\d+$/.test(m[0])) {
      const n = Number(m[0]);
      return Number.isSafeInteger(n) ? n : BigInt(m[0]);
    }
    return JSON.parse(m[0]);
  };
  return value();
}

function imageFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => (f.endsWith('.img') || f === 'stats-dump') && !f.startsWith('pages-')).sort();
}

describe('CRIU image decoding matches crit 4.2', () => {
  for (const name of NAMES) {
    const dir = join(FIXTURES, name);
    for (const file of imageFiles(dir)) {
      it(`${name}/${file}`, () => {
        const image = decodeImage(readFileSync(join(dir, file)), `${name}/${file}`);
        const ours = toCritJson(image);
        const crit = parseJsonBig(readFileSync(join(dir, 'crit-json', `${file}.json`), 'utf8'));
        expect(ours).toEqual(crit);
        expect(image.warnings).toEqual([]);
        expect(JSON.stringify(ours, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).not.toContain('$unknown');
        // the text is what crit show prints
        expect(stringifyCritJson(ours) + '\n').toBe(readFileSync(join(dir, 'crit-json', `${file}.json`), 'utf8'));
      });
    }
  }
});
