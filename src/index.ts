/**
 * cryo-img: read and write `.cryo` checkpoint images. The environment-neutral API (no `node:`
 * imports). Entry points that also load the Wasm core: `./node.js` (Node) and `./browser.js`.
 *
 * @module
 */
export * from './core/model.js';
export * from './core/errors.js';
export * from './core/format.js';
export { BytesSource, BlobSource, CountingSource, toByteSource, type ByteSource, type ImageInput } from './core/byte-source.js';
export { CryoWasm, type PageCounts } from './core/wasm.js';
export { openImage, CryoImage, MAX_MEMORY_READ, type OpenOptions } from './core/reader.js';
export { scanSections, type WalkOptions, type WalkSummary } from './core/scanner.js';
export { verifyImage, type VerifyReport } from './core/verify.js';
export { decodePayload, type SectionDecoder } from './core/contents.js';
export { readTableOfContents, type TableOfContents } from './core/toc.js';
export {
  ImageWriter, MemorySink, encodeMetadata, u64Bin,
  type ByteSink, type SectionSpec, type WrittenImage,
} from './core/writer.js';
export { bytesOf, decodeMetadataMap, decodeRegisters, encodeRegisters, text as lenientText } from './core/metadata.js';
export { decodePageMap, encodePageMap } from './core/page-store.js';
export { diffImages, diffToJson, type DiffOptions, type ImageDiff, type ProcessDiff, type RegionDiff, type ByteRange } from './diff/index.js';
export {
  engineDecoder, linkImage, pagesOf, imageDigest, parentRef, readMemoryInto, isPlainImage,
  type ParentRef, type ParentResolver,
} from './codec/pages.js';
export { WasmEngine, codecLevel } from './codec/engine.js';
export { packImage, packStream, type PackOptions, type PackStats } from './pack/pack.js';
export { unpackImage, type UnpackOptions } from './pack/unpack.js';
