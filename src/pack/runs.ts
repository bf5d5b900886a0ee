/**
 * Building page maps page by page (FORMAT §5.1) in typed arrays: consecutive pages of the same kind
 * (and, for DATA and DELTA, consecutive store indices) extend one run. Bounded by the PAGEMAP limit
 * (64 MiB = 2.8 million runs), never by the number of pages.
 *
 * @module
 */
import { PAGE_SIZE, PAGEMAP_ENTRY_SIZE } from '../core/format.js';
import { PageKind } from '../core/model.js';

const PAGE = BigInt(PAGE_SIZE);

export class RunBuilder {
  private vaddr = new BigUint64Array(256);
  private count = new Uint32Array(256);
  private kind = new Uint8Array(256);
  private store = new Float64Array(256);
  /** Number of runs. */
  length = 0;

  /** Whether runs were added in ascending address order (else encode() sorts them). */
  private sorted = true;

  /**
   * Append `pages` pages at `vaddr` of `kind`, DATA/DELTA from store index `store`. Ascending addresses
   * extend runs; out-of-order runs are sorted (and coalesced) by encode().
   */
  add(vaddr: bigint, pages: number, kind: number, store: number): void {
    const n = this.length;
    if (n > 0) {
      const last = n - 1;
      const lastEnd = this.vaddr[last]! + BigInt(this.count[last]!) * PAGE;
      if (vaddr < lastEnd) this.sorted = false;
      const stores = kind === PageKind.DATA || kind === PageKind.DELTA;
      if (lastEnd === vaddr && this.kind[last] === kind && this.count[last]! + pages <= 0xffffffff &&
        (!stores || this.store[last]! + this.count[last]! === store)) {
        this.count[last] = this.count[last]! + pages;
        return;
      }
    }
    if (n === this.vaddr.length) this.grow();
    this.vaddr[n] = vaddr;
    this.count[n] = pages;
    this.kind[n] = kind;
    this.store[n] = kind === PageKind.DATA || kind === PageKind.DELTA ? store : 0;
    this.length = n + 1;
  }

  private grow(): void {
    const size = this.vaddr.length * 2;
    const v = new BigUint64Array(size);
    v.set(this.vaddr);
    const c = new Uint32Array(size);
    c.set(this.count);
    const k = new Uint8Array(size);
    k.set(this.kind);
    const s = new Float64Array(size);
    s.set(this.store);
    this.vaddr = v;
    this.count = c;
    this.kind = k;
    this.store = s;
  }

  /** The PAGEMAP payload (runs sorted by address). */
  encode(): Uint8Array {
    if (!this.sorted) {
      const order = Array.from({ length: this.length }, (_, i) => i).sort((a, b) => (this.vaddr[a]! < this.vaddr[b]! ? -1 : 1));
      const sorted = new RunBuilder();
      for (const i of order) sorted.add(this.vaddr[i]!, this.count[i]!, this.kind[i]!, this.store[i]!);
      return sorted.encode();
    }
    const bytes = new Uint8Array(this.length * PAGEMAP_ENTRY_SIZE);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < this.length; i++) {
      const at = i * PAGEMAP_ENTRY_SIZE;
      view.setBigUint64(at, this.vaddr[i]!, true);
      view.setUint32(at + 8, this.count[i]!, true);
      view.setUint16(at + 12, this.kind[i]!, true);
      view.setBigUint64(at + 16, BigInt(this.store[i]!), true);
    }
    return bytes;
  }

  /** Pages of each kind. */
  totals(): number[] {
    const t = [0, 0, 0, 0];
    for (let i = 0; i < this.length; i++) t[this.kind[i]!] = t[this.kind[i]!]! + this.count[i]!;
    return t;
  }
}

/**
 * Dedup table (XXH64 of a page, as two u32 → store index and the page's address), open addressing
 * in typed arrays, at most 70% full of `capacity` (a power of two, at most 2^21: 40 MiB); when full, new
 * pages are simply not remembered. No BigInt on the hot path.
 */
export class DedupTable {
  private lo: Uint32Array;
  private hi: Uint32Array;
  private stores: Float64Array;
  private addresses: Float64Array;
  private used = 0;
  private mask: number;

  constructor(pages = 1024) {
    let size = 1024;
    while (size < Math.min(pages / 0.7, 1 << 21)) size *= 2;
    this.lo = new Uint32Array(size);
    this.hi = new Uint32Array(size);
    this.stores = new Float64Array(size);
    this.addresses = new Float64Array(size);
    this.mask = size - 1;
  }

  clear(): void {
    this.lo.fill(0);
    this.hi.fill(0);
    this.used = 0;
  }

  /** The slot holding the hash (lo, hi) (not both 0), or -1. */
  find(lo: number, hi: number): number {
    let i = (lo ^ (hi >>> 7)) & this.mask;
    for (;;) {
      const a = this.lo[i]!;
      const b = this.hi[i]!;
      if (a === 0 && b === 0) return -1;
      if (a === lo && b === hi) return i;
      i = (i + 1) & this.mask;
    }
  }

  store(i: number): number {
    return this.stores[i]!;
  }

  address(i: number): bigint {
    return BigInt(this.addresses[i]!);
  }

  insert(lo: number, hi: number, store: number, address: bigint): void {
    if ((this.used + 1) * 10 > (this.mask + 1) * 7) return;
    let i = (lo ^ (hi >>> 7)) & this.mask;
    while (this.lo[i] !== 0 || this.hi[i] !== 0) {
      if (this.lo[i] === lo && this.hi[i] === hi) return;
      i = (i + 1) & this.mask;
    }
    this.lo[i] = lo;
    this.hi[i] = hi;
    this.stores[i] = store;
    this.addresses[i] = Number(address);
    this.used++;
  }
}
