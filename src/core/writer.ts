/**
 * The streaming `.cryo` writer: sections are appended in one pass to a sink; the index and footer are
 * written by {@link ImageWriter.finish}. Header, index-entry and footer bytes come from the Wasm core.
 *
 * @module
 */
import { Encoder } from '@msgpack/msgpack';
import {
  Codec, DATA_SECTION_LIMIT, PAGE_SIZE, SECTION_HEADER_SIZE, SectionType, sectionLimit,
  sectionTypeName, INDEX_ENTRY_SIZE, META_SECTION_LIMIT, type SectionInfo,
} from './format.js';
import type { PageMapEntry, RawMap } from './model.js';
import { encodePageMap } from './page-store.js';
import type { CryoWasm } from './wasm.js';

/** Where a writer puts its bytes, in order. `write` may keep the array: the writer never reuses it. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
}

/** A sink that collects everything in memory; `bytes()` returns the file. */
export class MemorySink implements ByteSink {
  private readonly parts: Uint8Array[] = [];
  length = 0;

  async write(bytes: Uint8Array): Promise<void> {
    this.parts.push(bytes);
    this.length += bytes.length;
  }

  /** Everything written, as one array. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

/** What {@link ImageWriter.finish} returns. */
export interface WrittenImage {
  /** Total file length, footer included. */
  fileLength: number;
  /** Sections written, INDEX excluded. */
  sectionCount: number;
  indexOffset: number;
  /** Every section written, INDEX excluded, in file order. */
  sections: SectionInfo[];
}

/** A section to append: header fields other than lengths and CRCs. */
export interface SectionSpec {
  type: number;
  /** PID, or 0 for image-wide sections. */
  owner?: number;
  /** Type-specific key (store index, blob id), default 0. */
  key?: bigint | number;
  /**
   * Codec of an already encoded payload (FORMAT §3.1), default 0 (raw). With another codec, give
   * `rawLength`, the decoded length; the writer does not encode, it writes the payload as given.
   */
  codec?: number;
  /** Decoded length, for a codec other than raw. */
  rawLength?: number;
}

/** msgpack encoding for metadata: 64-bit integers as int64/uint64, maps with string keys. */
const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });

/** Encode a metadata map as msgpack. */
export function encodeMetadata(map: RawMap): Uint8Array {
  return encoder.encode(map);
}

/** A u64 as the 8-byte little-endian `bin` used for 64-bit values in metadata (FORMAT §6). */
export function u64Bin(value: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
  return bytes;
}

/**
 * Writes a `.cryo` image in one sequential pass.
 *
 * ```ts
 * const sink = new MemorySink();
 * const writer = new ImageWriter(sink, wasm);
 * await writer.addImageMeta({ format: 'cryo', pids: [42], ... });
 * await writer.addProcess({ pid: 42, ... });
 * await writer.addPageMap(42, entries);
 * await writer.addPageData(42, 0, pages);
 * await writer.finish();
 * ```
 *
 * Calls must not overlap (await each). Writers put IMAGE_META first, then per process PROCESS and
 * PAGEMAP, then BLOBs, then PAGEDATA in ascending store index (FORMAT §4); the writer does not enforce
 * the order, only the rules every reader checks (limits, lengths).
 */
export class ImageWriter {
  private offset = 0;
  private readonly entries: Uint8Array[] = [];
  private readonly written: SectionInfo[] = [];
  private finished = false;

  constructor(private readonly sink: ByteSink, private readonly wasm: CryoWasm) {}

  /** Bytes written so far (the offset of the next section). */
  get position(): number {
    return this.offset;
  }

  private async emit(bytes: Uint8Array): Promise<void> {
    await this.sink.write(bytes);
    this.offset += bytes.length;
  }

  private async start(): Promise<void> {
    if (this.finished) throw new Error('ImageWriter: finish() was already called');
    if (this.offset === 0) await this.emit(this.wasm.encodeFileHeader());
  }

  /**
   * Append one section with codec raw. Throws RangeError if the payload exceeds the limit of its type
   * (1 MiB for PAGEDATA and BLOB, 64 MiB otherwise) or breaks a length rule of its type.
   * `options.payloadCrc`, when given, is trusted as the payload's CRC32C (saves computing it again
   * when copying a payload whose CRC was just checked, see {@link copySection}).
   */
  async addSection(spec: SectionSpec, payload: Uint8Array, options: { payloadCrc?: number } = {}): Promise<SectionInfo> {
    await this.start();
    const type = spec.type;
    const codec = spec.codec ?? Codec.RAW;
    const rawLength = codec === Codec.RAW ? payload.length : spec.rawLength;
    if (type === SectionType.INDEX) throw new RangeError('ImageWriter: the INDEX section is written by finish()');
    if (rawLength === undefined || !Number.isSafeInteger(rawLength) || (codec !== Codec.RAW && (payload.length === 0 || payload.length > rawLength))) {
      throw new RangeError(`ImageWriter: codec ${codec} payload of ${payload.length} bytes needs a rawLength of at least that`);
    }
    if (rawLength > sectionLimit(type)) {
      throw new RangeError(`ImageWriter: ${sectionTypeName(type)} payload of ${rawLength} bytes exceeds ${sectionLimit(type)}`);
    }
    if (type === SectionType.PAGEDATA && (rawLength === 0 || rawLength % PAGE_SIZE !== 0)) {
      throw new RangeError(`ImageWriter: PAGEDATA payload of ${rawLength} bytes is not whole pages`);
    }
    const header = {
      type,
      codec,
      owner: spec.owner ?? 0,
      flags: 0,
      key: BigInt(spec.key ?? 0),
      storedLength: payload.length,
      rawLength,
      payloadCrc: options.payloadCrc !== undefined ? options.payloadCrc >>> 0 : this.wasm.crc32c(payload),
    };
    const headerBytes = this.wasm.encodeSectionHeader(header);
    const offset = this.offset;
    this.entries.push(this.wasm.encodeIndexEntry(offset, headerBytes));
    const info: SectionInfo = {
      ...header,
      headerCrc: new DataView(headerBytes.buffer, headerBytes.byteOffset).getUint32(44, true),
      index: this.written.length,
      offset,
      payloadOffset: offset + SECTION_HEADER_SIZE,
      typeName: sectionTypeName(type),
    };
    await this.emit(headerBytes);
    if (payload.length > 0) await this.emit(payload);
    this.written.push(info);
    return info;
  }

  /**
   * Copy a section of another image unchanged (type, codec, owner, key, stored payload), e.g. one of
   * an unknown type. `stored` must be what `CryoImage.readStoredSection(section)` returned (for codec
   * raw, readSection gives the same bytes): its CRC is reused, not recomputed.
   */
  copySection(section: SectionInfo, stored: Uint8Array): Promise<SectionInfo> {
    if (stored.length !== section.storedLength) {
      throw new RangeError(`ImageWriter: payload of ${stored.length} bytes for a section of ${section.storedLength}`);
    }
    return this.addSection(
      { type: section.type, owner: section.owner, key: section.key, codec: section.codec, rawLength: section.rawLength },
      stored, { payloadCrc: section.payloadCrc });
  }

  /** IMAGE_META (FORMAT §6.1), msgpack-encoded. */
  addImageMeta(meta: RawMap): Promise<SectionInfo> {
    return this.addSection({ type: SectionType.IMAGE_META }, encodeMetadata(meta));
  }

  /** PROCESS (FORMAT §6.2), msgpack-encoded; the owner is `map.pid`. */
  addProcess(map: RawMap): Promise<SectionInfo> {
    const pid = map.pid;
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) throw new RangeError('ImageWriter: PROCESS map needs an integer pid');
    return this.addSection({ type: SectionType.PROCESS, owner: pid }, encodeMetadata(map));
  }

  /** PAGEMAP (FORMAT §5.1) of a process; entries must be sorted and valid (the reader checks). */
  addPageMap(pid: number, entries: readonly PageMapEntry[]): Promise<SectionInfo> {
    return this.addSection({ type: SectionType.PAGEMAP, owner: pid }, encodePageMap(entries));
  }

  /**
   * Pages of a process's page store starting at store index `firstStoreIndex`: whole pages, split into
   * PAGEDATA sections of at most 1 MiB (256 pages).
   */
  async addPageData(pid: number, firstStoreIndex: number, pages: Uint8Array): Promise<SectionInfo[]> {
    if (pages.length === 0 || pages.length % PAGE_SIZE !== 0) {
      throw new RangeError(`ImageWriter: page data of ${pages.length} bytes is not whole pages`);
    }
    const out: SectionInfo[] = [];
    for (let at = 0; at < pages.length; at += DATA_SECTION_LIMIT) {
      const chunk = pages.subarray(at, Math.min(pages.length, at + DATA_SECTION_LIMIT));
      out.push(await this.addSection({ type: SectionType.PAGEDATA, owner: pid, key: firstStoreIndex + at / PAGE_SIZE }, chunk));
    }
    return out;
  }

  /** A blob (FORMAT §7), split into BLOB sections of at most 1 MiB; an empty blob writes nothing. */
  async addBlob(id: number | bigint, bytes: Uint8Array, owner = 0): Promise<SectionInfo[]> {
    const out: SectionInfo[] = [];
    for (let at = 0; at < bytes.length; at += DATA_SECTION_LIMIT) {
      out.push(await this.addSection({ type: SectionType.BLOB, owner, key: id },
        bytes.subarray(at, Math.min(bytes.length, at + DATA_SECTION_LIMIT))));
    }
    return out;
  }

  /** Write the INDEX section and the footer. The writer cannot be used afterwards. */
  async finish(): Promise<WrittenImage> {
    await this.start();
    const count = this.entries.length;
    if (count * INDEX_ENTRY_SIZE > META_SECTION_LIMIT) {
      throw new RangeError(`ImageWriter: ${count} sections exceed the INDEX limit`);
    }
    const payload = new Uint8Array(count * INDEX_ENTRY_SIZE);
    this.entries.forEach((entry, i) => payload.set(entry, i * INDEX_ENTRY_SIZE));
    const indexOffset = this.offset;
    const header = this.wasm.encodeSectionHeader({
      type: SectionType.INDEX, codec: Codec.RAW, owner: 0, flags: 0, key: 0n,
      storedLength: payload.length, rawLength: payload.length, payloadCrc: this.wasm.crc32c(payload),
    });
    await this.emit(header);
    if (payload.length > 0) await this.emit(payload);
    const fileLength = this.offset + 32;
    await this.emit(this.wasm.encodeFooter(indexOffset, fileLength, count));
    this.finished = true;
    return { fileLength, sectionCount: count, indexOffset, sections: [...this.written] };
  }
}
