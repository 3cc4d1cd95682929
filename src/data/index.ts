// Public surface of the data layer: the one cache writer every dataset provider feeds (cache-writer.ts), mini-ImageNet's
// source reader, loading cached splits and gathering normalised images. Other providers live in providers/.
export { DATA_ENV_VAR, DEFAULT_DATA_DIR, DATASET_LAYOUT_HELP, inspectDatasetFolder, locateDataset, type DatasetFolderInfo } from './locate.ts';
export { SPLIT_NAMES, isSplitName, parseSplitCsv, type SplitItems, type SplitName } from './split-csv.ts';
export { readSplitCsv } from './csv.ts';
export { prepareDataset, type PrepareOptions } from './prepare.ts';
export {
  writeImageCache,
  checkImageSize,
  channelStatistics,
  rotateSquareRgb,
  type CacheStream,
  type FileClass,
  type FileItem,
  type FileSplit,
  type ItemSink,
  type PrepareProgress,
  type PrepareResult,
  type QuarterTurns,
  type RawImage,
  type WriteImageCacheOptions,
} from './cache-writer.ts';
export {
  CACHE_FORMAT,
  CACHE_FORMAT_VERSION,
  DEFAULT_CACHE_ROOT,
  cacheDirFor,
  cacheFingerprint,
  describeSplit,
  loadSplit,
  loadSplitFilenames,
  readCacheManifest,
  splitFingerprint,
  type CacheManifest,
  type LoadedSplit,
  type SplitInfo,
  type LoadSplitOptions,
} from './cache.ts';
export {
  CIFAR_FS_NORMALIZATION,
  MINI_IMAGENET_NORMALIZATION,
  gatherImages,
  gatherPixels,
  normalizationTable,
  normalizePixels,
  type Normalization,
  type PixelStore,
} from './normalize.ts';
export { RESIZE_METHOD, decodeImage, resizeAreaRgb } from './decode.ts';
export { parseSha256Sums, sha256File } from './checksums.ts';
