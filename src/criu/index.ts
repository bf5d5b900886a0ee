/**
 * Reading CRIU checkpoints (environment-neutral part). Node users: `./node.js` adds directories on disk,
 * archive files and zstd (`openCriu(path)`).
 *
 * ```ts
 * const dir = await openCriuArchive(bytesOrBlob, { label: 'checkpoint.tar.gz' });
 * const image = await openCriuImage(dir);          // a CheckpointImage of the cryo-img model
 * const bytes = await image.readMemory(pid, 0x7ff25542d000n, 4096);
 * ```
 *
 * @module
 */
export { CriuFormatError, CriuSourceError, type DecodeWarning } from './errors.js';
export {
  decodeMessage, toBigInt, toNumber, UNKNOWN_KEY,
  type DecodedMessage, type FieldDef, type Int64, type MessageDef, type UnknownField,
} from './protobuf.js';
export { messageDef, messageNames } from './schema.js';
export {
  decodeImage, countEntries, IMAGE_TYPES, imageTypeByMagic, imageTypeByName, isRawImageName, readImageHeader,
  type CriuImage, type ImageType,
} from './images.js';
export { toCritJson, stringifyCritJson, prettyMessage, mapFlags, FLAG_TABLES } from './pretty.js';
export { encodeImage, encodeMessage } from './encode.js';
export {
  MemoryDirectory, directoryFromFiles, openCriuArchive, detectContainer, gunzipStream, chunksOf,
  type ArchiveOptions, type NamedBlob, type ContainerKind, type CriuDirectory, type Decompressor, type RandomAccess,
} from './source.js';
export { indexTar, scanTarStream, type TarMember } from './tar.js';
export { CriuCheckpoint, PAGE_SIZE, PE_LAZY, PE_PARENT, PE_PRESENT, VMA, type CriuMemoryRead, type Pagemap, type PagemapRun } from './checkpoint.js';
export { EXPLORERS, explorePs, exploreFds, exploreMems, exploreRss } from './explore.js';
export { CriuCheckpointImage, criuToModel, openCriuImage, xsaveArea, type CriuModelOptions } from './model.js';
