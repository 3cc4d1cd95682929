import { z } from 'zod';
import { checkPathSegment } from '../../util/names.ts';
import { UserError } from '../../util/errors.ts';
import { Registry } from '../../util/registry.ts';
import type { DatasetProvider } from './contract.ts';

/**
 * Dataset providers by id. Built-ins register themselves in providers/builtin.ts; a plugin module (loaded
 * with `--plugin ./my-dataset.ts`) calls `registerDatasetProvider` at import time, the same way heads,
 * backbones and wrappers are added, so adding a dataset edits no library file.
 */
/** The dataset used when neither a config nor a flag names one (the toolkit's reference benchmark). */
export const DEFAULT_DATASET = 'mini-imagenet';

export const datasetProviders = new Registry<DatasetProvider<any>>({
  kind: 'dataset provider',
  unknownKind: 'dataset',
  registerWith: 'registerDatasetProvider',
  required: {
    optionsSchema: { type: 'zod schema', fix: 'give a strict zod schema of the options, e.g. z.object({}).strict()' },
    sourceHelp: { type: 'string', fix: 'say in one line what the source looks like and how to point at it' },
    name: { type: 'function', fix: "add name(options) returning the dataset's name" },
    locate: { type: 'function', fix: "add locate(options, ctx) returning the source's absolute path" },
    prepare: { type: 'function', fix: 'add prepare(request) writing the cache' },
    normalization: { type: 'function', fix: 'add normalization(options, manifest)' },
  },
});

/** Register a dataset provider; a plugin calls it at import time (id rule, duplicates and apiVersion checked). */
export function registerDatasetProvider<O extends Record<string, unknown>>(provider: DatasetProvider<O>): void {
  datasetProviders.register(provider);
}

/** Every registered dataset provider (built-ins and plugins), in registration order. */
export function listDatasetProviders(): DatasetProvider[] {
  return datasetProviders.list();
}

/** The dataset provider registered as `id`; a UserError naming the known ones when there is none. */
export function getDatasetProvider(id: string): DatasetProvider {
  return datasetProviders.get(id);
}

/** A provider with its options validated (strictly: an unknown option is an error naming it). */
export interface ResolvedDataset {
  provider: DatasetProvider;
  options: Record<string, unknown>;
  name: string;
}

export function resolveDataset(id: string, rawOptions: Record<string, unknown> = {}): ResolvedDataset {
  const provider = getDatasetProvider(id);
  const parsed = provider.optionsSchema.safeParse(rawOptions);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ');
    throw new UserError(
      `invalid options for dataset "${id}": ${issues}`,
      `fix datasetOptions in the config (or the --dataset-option flags); ${id} takes: ${describeOptions(provider.optionsSchema)}`,
    );
  }
  const options = parsed.data as Record<string, unknown>;
  // The dataset's name becomes the cache, episode and results folder names: one safe path segment.
  const name = checkPathSegment(
    provider.name(options),
    `the name of dataset "${id}"`,
    `give it a plain name: --dataset-option name=<name> (letters, digits, \`-\`, \`_\`, \`.\`; not starting with ".")`,
  );
  return { provider, options, name };
}

function describeOptions(schema: z.ZodType): string {
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape).join(', ') || 'no options' : 'see its documentation';
}
