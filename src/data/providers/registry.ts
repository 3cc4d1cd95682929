import { z } from 'zod';
import { checkPathSegment } from '../../util/names.ts';
import { UserError } from '../../util/errors.ts';
import { didYouMean } from '../../util/suggest.ts';
import type { DatasetProvider } from './contract.ts';

/**
 * Dataset providers by id. Built-ins register themselves in providers/builtin.ts; a plugin module (loaded
 * with `--plugin ./my-dataset.ts`) calls `registerDatasetProvider` at import time, the same way heads,
 * backbones and wrappers are added, so adding a dataset edits no library file.
 */
/** The dataset used when neither a config nor a flag names one (the toolkit's reference benchmark). */
export const DEFAULT_DATASET = 'mini-imagenet';

const providers = new Map<string, DatasetProvider<any>>();

export function registerDatasetProvider<O extends Record<string, unknown>>(provider: DatasetProvider<O>): void {
  if (!/^[a-z][a-z0-9-]*$/.test(provider.id)) {
    throw new UserError(`dataset provider id "${provider.id}" is not a valid name`, 'use lowercase letters, digits and dashes, starting with a letter');
  }
  if (providers.has(provider.id)) throw new UserError(`dataset provider "${provider.id}" is registered twice`, 'give your plugin provider a different id');
  providers.set(provider.id, provider);
}

export function listDatasetProviders(): DatasetProvider[] {
  return [...providers.values()];
}

export function getDatasetProvider(id: string): DatasetProvider {
  const p = providers.get(id);
  if (!p) {
    throw new UserError(
      `unknown dataset "${id}"${didYouMean(id, [...providers.keys()])}`,
      `use one of: ${[...providers.keys()].join(', ')} (\`fewshot list\` shows them), or load a plugin that registers it with --plugin`,
    );
  }
  return p;
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
  const name = checkPathSegment(provider.name(options), `the name of dataset "${id}"`, `give it a plain name: --dataset-option name=<name> (letters, digits, \`-\`, \`_\`, \`.\`; not starting with ".")`);
  return { provider, options, name };
}

function describeOptions(schema: z.ZodType): string {
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape).join(', ') || 'no options' : 'see its documentation';
}
