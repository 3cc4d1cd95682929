/**
 * A dataset plugin in one file, loaded with `--plugin ./examples/named-files-dataset.ts`: one folder of images
 * whose file names start with their class, `<class>_<anything>.<ext>` (the Oxford-IIIT Pets layout:
 * `Abyssinian_1.jpg`, `american_bulldog_10.jpg`). It imports only the public API (`fewshot`, also in an
 * installed package): it lists the items per split and class and hands them to `writeImageCache`, which
 * decodes, checks, fingerprints and writes the cache atomically, as the built-in providers do.
 *
 *   fewshot data prepare --plugin ./examples/named-files-dataset.ts --dataset named-files --data ./pets/images
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { registerDatasetProvider, UserError, writeImageCache, z, type DatasetProvider, type FileClass } from 'fewshot';

const LAYOUT_HELP = 'one folder of images named <class>_<anything>.jpg/.jpeg/.png (e.g. Abyssinian_1.jpg), at least 2 per class';
const IMAGE = /\.(jpe?g|png)$/i;
const fraction = z.number().min(0).max(1);

const optionsSchema = z
  .object({
    /** The image folder (`--data` sets it). */
    root: z.string().min(1),
    /** Classes sorted by name go to train, val and test in these proportions. */
    fractions: z.object({ train: fraction, val: fraction, test: fraction }).strict().default({ train: 0.64, val: 0.16, test: 0.2 }),
  })
  .strict();
type Options = z.infer<typeof optionsSchema>;

/** Classes (sorted by name) with their files (sorted), read from the folder's file names. */
export function listClasses(root: string): FileClass[] {
  const byClass = new Map<string, FileClass>();
  for (const name of readdirSync(root).sort()) {
    if (!IMAGE.test(name)) continue;
    const cut = name.lastIndexOf('_');
    if (cut <= 0) throw new UserError(`${path.join(root, name)} has no <class>_ prefix`, LAYOUT_HELP);
    const label = name.slice(0, cut);
    if (!byClass.has(label)) byClass.set(label, { name: label, items: [] });
    byClass.get(label)!.items.push({ id: name, file: path.join(root, name) });
  }
  return [...byClass.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}

const provider: DatasetProvider<Options> = {
  id: 'named-files',
  description: 'one folder of images named <class>_<n>.jpg (Oxford-IIIT Pets layout); classes split by name order (example plugin)',
  optionsSchema,
  sourceOption: 'root',
  sourceHelp: LAYOUT_HELP,
  name: (o) => path.basename(path.resolve(o.root)),
  locate: (o) => {
    const root = path.resolve(o.root);
    if (!statSync(root, { throwIfNoEntry: false })?.isDirectory())
      throw new UserError(`image folder ${root} does not exist`, `pass it with --data <folder>; ${LAYOUT_HELP}`);
    return root;
  },
  prepare: (r) => {
    const classes = listClasses(r.source);
    const nTrain = Math.round(classes.length * r.options.fractions.train);
    const nVal = Math.round(classes.length * r.options.fractions.val);
    return writeImageCache({
      cacheDir: r.cacheDir,
      imageSize: r.imageSize,
      dataset: r.dataset,
      provider: { id: 'named-files', options: r.options },
      splits: [
        { split: 'train', classes: classes.slice(0, nTrain) },
        { split: 'val', classes: classes.slice(nTrain, nTrain + nVal) },
        { split: 'test', classes: classes.slice(nTrain + nVal) },
      ],
      // Statistics of the cached train images, recorded in the manifest (read back by `normalization`).
      normalization: 'train',
      source: { kind: 'named-files', path: r.source },
      signal: r.signal,
      onProgress: r.onProgress,
    });
  },
  normalization: (_o, manifest) => {
    if (!manifest.normalization) throw new Error('named-files cache without recorded normalisation');
    return manifest.normalization;
  },
  defaultAugment: 'none',
  // No committed episode files: the usual 5-way 1/5-shot sets (no `registerStandardEpisodeSets` call) are made on first use.
  makesMissingEpisodeFiles: true,
};

registerDatasetProvider(provider);
