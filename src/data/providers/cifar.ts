import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../../util/errors.ts';
import { sha256Hex } from '../checksums.ts';
import { SPLIT_NAMES } from '../split-csv.ts';
import { CIFAR_FS_NORMALIZATION } from '../normalize.ts';
import { writeImageCache, type FileClass, type FileSplit } from '../cache-writer.ts';
import { CIFAR100_ARCHIVES, CIFAR100_IMAGE_BYTES, CIFAR100_IMAGE_SIZE, CIFAR100_URL, readCifar100, type Cifar100Part } from '../readers/cifar100.ts';
import { assignCifarClasses, cifarBenchmarkClasses, PUBLISHED_SPLIT_SIZES, type CifarBenchmark } from '../readers/splits.ts';
import type { DatasetProvider } from './contract.ts';

/** Where the CIFAR-100 archive is looked for when `--data` is not given. */
export const CIFAR100_ENV_VAR = 'FEWSHOT_CIFAR100';

const SOURCE_HELP = `the official CIFAR-100 archive as downloaded from ${CIFAR100_URL}: ${CIFAR100_ARCHIVES.python} (python version) or ${CIFAR100_ARCHIVES.binary} (binary version); pass its path with --data <file.tar.gz> or $${CIFAR100_ENV_VAR}`;

/** `--data`, else $FEWSHOT_CIFAR100, else data/cifar-100-python.tar.gz or data/cifar-100-binary.tar.gz. */
export function locateCifar100(flag: string | undefined, env: NodeJS.ProcessEnv, cwd: string): string {
  const given = flag ?? env[CIFAR100_ENV_VAR];
  const candidates = given !== undefined ? [path.resolve(cwd, given)] : Object.values(CIFAR100_ARCHIVES).map((f) => path.resolve(cwd, 'data', f));
  const found = candidates.find((f) => existsSync(f));
  if (!found) throw new UserError(`no CIFAR-100 archive at ${candidates.join(' or ')}`, `download ${SOURCE_HELP}`);
  if (statSync(found).isDirectory())
    throw new UserError(`${found} is a folder, not the CIFAR-100 .tar.gz archive`, `give the path of ${SOURCE_HELP} (do not unpack it)`);
  return found;
}

/**
 * The items of one split: per benchmark class (in split-list order), that class's images of the archive's
 * train part then its test part, in archive order (the benchmarks merge both parts: 600 images a class).
 * Item ids name the part and the image's index in it (`train/123`), so the split fingerprint identifies
 * exactly which archive images are where.
 */
function benchmarkClasses(
  benchmark: CifarBenchmark,
  archive: { train: Cifar100Part; test: Cifar100Part; fineLabelNames: readonly string[] },
  file: string,
): Record<(typeof SPLIT_NAMES)[number], FileClass[]> {
  const assignment = assignCifarClasses(benchmark, archive.fineLabelNames);
  const lists = cifarBenchmarkClasses(benchmark);
  const byClass = new Map<string, FileClass>();
  const out = {} as Record<(typeof SPLIT_NAMES)[number], FileClass[]>;
  for (const split of SPLIT_NAMES) {
    out[split] = lists[split].map((name) => {
      const c: FileClass = { name, items: [] };
      byClass.set(name, c);
      return c;
    });
  }
  for (const part of ['train', 'test'] as const) {
    const p = archive[part];
    for (let i = 0; i < p.count; i++) {
      const { name } = assignment[p.fineLabels[i]];
      const pixels = p.pixels.subarray(i * CIFAR100_IMAGE_BYTES, (i + 1) * CIFAR100_IMAGE_BYTES);
      byClass.get(name)!.items.push({
        file: `${file}#${part}/${i}`,
        id: `${part}/${i}`,
        raw: async () => ({ pixels, width: CIFAR100_IMAGE_SIZE, height: CIFAR100_IMAGE_SIZE, sha256: sha256Hex(pixels) }),
      });
    }
  }
  return out;
}

const optionsSchema = z.object({}).strict();

function cifarProvider(benchmark: CifarBenchmark, description: string): DatasetProvider<z.infer<typeof optionsSchema>> {
  return {
    id: benchmark,
    description,
    optionsSchema,
    sourceHelp: SOURCE_HELP,
    name: () => benchmark,
    locate: (_o, ctx) => locateCifar100(ctx.flag, ctx.env, ctx.cwd),
    prepare: async (r) => {
      const archive = await readCifar100(r.source);
      const splits = benchmarkClasses(benchmark, archive, r.source);
      const fileSplits: FileSplit[] = SPLIT_NAMES.map((s) => ({ split: s, classes: splits[s] }));
      return writeImageCache({
        cacheDir: r.cacheDir,
        imageSize: r.imageSize,
        dataset: r.dataset,
        provider: { id: benchmark, options: r.options },
        splits: fileSplits,
        normalization: { ...CIFAR_FS_NORMALIZATION, origin: 'CIFAR-100 constants of the MetaOptNet CIFAR-FS/FC100 loaders' },
        source: { kind: `cifar-100-${archive.kind}`, path: r.source, files: { [path.basename(r.source)]: archive.sha256 } },
        signal: r.signal,
        onProgress: r.onProgress,
      });
    },
    normalization: () => CIFAR_FS_NORMALIZATION,
    defaultAugment: 'metaoptnet',
    nativeImageSize: CIFAR100_IMAGE_SIZE,
    makesMissingEpisodeFiles: true,
  };
}

const sizes = (b: CifarBenchmark) => `${PUBLISHED_SPLIT_SIZES[b].train}/${PUBLISHED_SPLIT_SIZES[b].val}/${PUBLISHED_SPLIT_SIZES[b].test}`;

/** CIFAR-FS (Bertinetto et al., ICLR 2019): the 100 CIFAR-100 classes split at random, 64/16/20. */
export const cifarFsProvider = cifarProvider(
  'cifar-fs',
  `CIFAR-FS from the CIFAR-100 archive (python or binary): ${sizes('cifar-fs')} classes × 600 images, 32 px`,
);
/** FC100 (Oreshkin et al., NeurIPS 2018): split by superclass, 60/20/20 classes. */
export const fc100Provider = cifarProvider(
  'fc100',
  `FC100 from the CIFAR-100 archive (python or binary): ${sizes('fc100')} classes by superclass × 600 images, 32 px`,
);
