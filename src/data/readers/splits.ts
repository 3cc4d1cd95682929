/**
 * Class splits of the few-shot benchmarks built from CIFAR-100 and ImageNet, committed as small text files
 * next to this module (`splits/`), one class name per line:
 * - CIFAR-FS (Bertinetto, Henriques, Torr, Vedaldi, "Meta-learning with differentiable closed-form solvers",
 *   ICLR 2019): the 100 CIFAR-100 fine classes split at random into 64 train / 16 val / 20 test classes;
 *   the lists are those of the authors' release (`cifar100/splits/bertinetto/*.txt`).
 * - FC100 (Oreshkin, Rodríguez López, Lacoste, "TADAM", NeurIPS 2018): split by CIFAR-100 superclass,
 *   12 / 4 / 4 superclasses = 60 / 20 / 20 classes, so train and test share no superclass; lines are
 *   `<superclass>/<class>`.
 * - tiered-ImageNet (Ren et al., "Meta-learning for semi-supervised few-shot classification", ICLR 2018):
 *   608 ILSVRC-2012 classes (WordNet ids) grouped into 34 high-level categories, 20 / 6 / 8 categories
 *   = 351 / 97 / 160 classes.
 * `cifar100_superclass_to_classes.json` maps each of the 20 CIFAR-100 superclasses to its 5 fine classes.
 * In every benchmark, the 600 images of a class (the 500 CIFAR-100 train and 100 test images, merged) all
 * belong to the class's split.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../../util/errors.ts';

export type BenchmarkSplit = 'train' | 'val' | 'test';
export const BENCHMARK_SPLITS: readonly BenchmarkSplit[] = ['train', 'val', 'test'];
export type CifarBenchmark = 'cifar-fs' | 'fc100';
export const CIFAR_BENCHMARKS: readonly CifarBenchmark[] = ['cifar-fs', 'fc100'];

export type SplitClasses = Readonly<Record<BenchmarkSplit, readonly string[]>>;

/** Published class counts per split (train, val, test). */
export const PUBLISHED_SPLIT_SIZES = {
  'cifar-fs': { train: 64, val: 16, test: 20 },
  fc100: { train: 60, val: 20, test: 20 },
  'tiered-imagenet': { train: 351, val: 97, test: 160 },
} as const;

const SPLITS_DIR = new URL('./splits/', import.meta.url);

function readLines(relative: string): string[] {
  return readFileSync(new URL(relative, SPLITS_DIR), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

const cache = new Map<string, unknown>();
function cached<T>(key: string, make: () => T): T {
  if (!cache.has(key)) cache.set(key, make());
  return cache.get(key) as T;
}

/** The 20 CIFAR-100 superclasses with their 5 fine classes each. */
export function cifar100Superclasses(): Readonly<Record<string, readonly string[]>> {
  return cached('superclasses', () => JSON.parse(readFileSync(new URL('cifar100_superclass_to_classes.json', SPLITS_DIR), 'utf8')) as Record<string, string[]>);
}

/** Fine class names per split for CIFAR-FS or FC100, in the order of the split files. */
export function cifarBenchmarkClasses(benchmark: CifarBenchmark): SplitClasses {
  return cached(`classes:${benchmark}`, () => {
    const out = {} as Record<BenchmarkSplit, string[]>;
    for (const split of BENCHMARK_SPLITS) {
      const lines = readLines(`${benchmark}/${split}.txt`);
      out[split] = benchmark === 'fc100' ? lines.map((l) => l.slice(l.indexOf('/') + 1)) : lines;
    }
    return out;
  });
}

/** FC100's superclasses per split (from its `<superclass>/<class>` lines), in first-seen order. */
export function fc100Superclasses(): SplitClasses {
  return cached('fc100-super', () => {
    const out = {} as Record<BenchmarkSplit, string[]>;
    for (const split of BENCHMARK_SPLITS) out[split] = [...new Set(readLines(`fc100/${split}.txt`).map((l) => l.slice(0, l.indexOf('/'))))];
    return out;
  });
}

/** tiered-ImageNet WordNet ids per split, sorted as in the split files. */
export function tieredImagenetClasses(): SplitClasses {
  return cached('tiered', () => {
    const out = {} as Record<BenchmarkSplit, string[]>;
    for (const split of BENCHMARK_SPLITS) out[split] = readLines(`tiered-imagenet/${split}.txt`);
    return out;
  });
}

export interface ClassAssignment {
  readonly split: BenchmarkSplit;
  /** Index of the class within its split's list (0..63 for CIFAR-FS train, …). */
  readonly classIndex: number;
  readonly name: string;
}

/**
 * For each CIFAR-100 fine label (index into `fineLabelNames`, as read from an archive), its split and
 * class index in `benchmark`. Every fine name must be in exactly one split and every split class must be
 * among the names; otherwise the archive's names do not match the benchmark and a `UserError` says which.
 */
export function assignCifarClasses(benchmark: CifarBenchmark, fineLabelNames: readonly string[]): ClassAssignment[] {
  const classes = cifarBenchmarkClasses(benchmark);
  const where = new Map<string, { split: BenchmarkSplit; classIndex: number }>();
  for (const split of BENCHMARK_SPLITS) classes[split].forEach((name, classIndex) => where.set(name, { split, classIndex }));
  const fix = 'use the official CIFAR-100 archive (cifar-100-python.tar.gz or cifar-100-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html';
  const given = new Set(fineLabelNames);
  for (const split of BENCHMARK_SPLITS) {
    const absent = classes[split].filter((n) => !given.has(n));
    if (absent.length > 0)
      throw new UserError(`the archive's fine label names lack ${benchmark} ${split} class${absent.length > 1 ? 'es' : ''} ${absent.join(', ')}`, fix);
  }
  return fineLabelNames.map((name) => {
    const w = where.get(name);
    if (!w) throw new UserError(`fine label ${JSON.stringify(name)} in the archive is in no ${benchmark} split`, fix);
    return { ...w, name };
  });
}
