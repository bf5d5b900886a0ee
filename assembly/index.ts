// The cryo-img Wasm core: one module, used unchanged in Node and the browser.
// One file per job; this file only re-exports. Errors are values (see result.ts), never traps.
//
// Room is left for later jobs (page hashing, zero-page detection, SIMD diff, compression, search):
// add a file next to these and re-export it here.

export {
  errorCode, errorOffset, errorExpected, errorFound,
  resultPointer, scratchPointer, scratchSize, slotReserve,
} from './result';
export { crc32cUpdate } from './crc32c';
export {
  parseFileHeader, encodeFileHeader, parseSectionHeader, encodeSectionHeader, parseFooter, encodeFooter,
  parseIndexHeader, indexBegin, indexCheck, indexFinish, decodeIndexEntry, encodeIndexEntry,
} from './framing';
export { pagemapValidate, pagemapFind, pagemapCount, pagestoreCheck, pagestoreFind } from './pagemap';
export { xxh64Blocks, isZeroBlock, pageHashes } from './hash';
export { comparePages, countDiffBytes, diffRanges, diffBytesTotal, xorBytes } from './diff';
export { lz4Compress, lz4Decompress, lzErrorPos, deltaEncode, deltaDecode } from './codec-lz4';
