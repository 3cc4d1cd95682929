// Pure readers for dataset distributions (no cache, no tensors): the CIFAR-100 archives, the benchmark
// class splits built on them and on ImageNet, and the tiered-ImageNet class folders.
export {
  CIFAR100_ARCHIVES,
  CIFAR100_BINARY_RECORD_BYTES,
  CIFAR100_COARSE_CLASSES,
  CIFAR100_FINE_CLASSES,
  CIFAR100_IMAGE_BYTES,
  CIFAR100_IMAGE_SIZE,
  CIFAR100_PUBLISHED_COUNTS,
  CIFAR100_URL,
  planarToNhwc,
  readCifar100,
  type Cifar100,
  type Cifar100Kind,
  type Cifar100Part,
  type Cifar100PartName,
} from './cifar100.ts';
export {
  BENCHMARK_SPLITS,
  CIFAR_BENCHMARKS,
  PUBLISHED_SPLIT_SIZES,
  assignCifarClasses,
  cifar100Superclasses,
  cifarBenchmarkClasses,
  fc100Superclasses,
  tieredImagenetClasses,
  type BenchmarkSplit,
  type CifarBenchmark,
  type ClassAssignment,
  type SplitClasses,
} from './splits.ts';
export { TIERED_IMAGE_EXTENSIONS, listTieredImagenet, type TieredClass, type TieredImagenetListing, type TieredLayout } from './tiered-imagenet.ts';
export { PickleFormatError, unpickle, type NdArray, type PickleValue } from './pickle.ts';
