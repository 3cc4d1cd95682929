import { z } from 'zod';
import type { ResolvedDataset } from '../data/providers/registry.ts';
import type { TrainConfig } from '../train/config.ts';
import { checkRelativeName } from '../util/names.ts';
import { DEFAULT_RESULTS } from '../util/result-folders.ts';
import type { ExperimentReporter } from './reporter.ts';
import { parseWithUserError } from './validate.ts';
import type { WorkspaceOptions } from './workspace.ts';

/**
 * The options of an experiment call: where things are (data, cache, runs, results, episode files), how to run
 * (backend, names, logging) and the reuse policy's switches. The config (train/config.ts) says what is trained.
 */
export const experimentOptionsSchema = z
  .object({
    /** Compute backend (`auto`, `wasm`, `cpu`, `node`, ...; see backend/select.ts). */
    backend: z.string().default('auto'),
    /** Source location for the dataset provider (`--data`). */
    data: z.string().optional(),
    /** Explicit cache folder; default `<$FEWSHOT_CACHE or .cache>/<dataset>-<size>`. */
    cache: z.string().optional(),
    /** Where checkpoints go: `<runs>/<name>/{best,last}`. */
    runs: z.string().default('runs'),
    /** Where results go: `<results>/<dataset>/<name>/`. Not the committed `results/` of a checkout (see DEFAULT_RESULTS). */
    results: z.string().default(DEFAULT_RESULTS),
    /** Folder of episode files (`<episodesDir>/<dataset>/…`); default: the package's committed files for
     *  datasets that have them, else ./episodes (see `defaultEpisodeFile`). */
    episodesDir: z.string().optional(),
    valFile: z.string().optional(),
    testFile: z.string().optional(),
    /** Evaluate only the first n test episodes. */
    testEpisodes: z.number().int().positive().optional(),
    /** Run name (default: derived from the config, see `runName`). */
    name: z.string().min(1).optional(),
    /** Recorded in the result as `command` when given (the CLI passes its command line). */
    command: z.string().optional(),
    /** Prepare the cache when missing (default true). */
    autoPrepare: z.boolean().default(true),
    /** Keep an existing result of the same config, checkpoint and episodes instead of re-evaluating. */
    reuseResult: z.boolean().default(false),
    /** Report the training loss (progress) every n episodes (default 100). */
    logEvery: z.number().int().positive().optional(),
    /** Replace a result whose files are tracked by git (a committed reference result); refused otherwise. */
    replaceCommitted: z.boolean().default(false),
  })
  .strict();

/**
 * The options every experiment-layer call shares, with the same meaning and defaults: the backend, the data's
 * source and cache, the results root, the run name, the command line to record, preparing a missing cache. The
 * classification, OOD and pre-trained few-shot calls take these plus their own.
 */
export const sharedOptionsSchema = experimentOptionsSchema.pick({
  backend: true,
  data: true,
  cache: true,
  results: true,
  name: true,
  command: true,
  autoPrepare: true,
});

/** `ExperimentOptions` as a caller writes them (defaults not yet filled in). */
export type ExperimentOptionsInput = z.input<typeof experimentOptionsSchema>;
/** Where an experiment reads and writes (data, cache, runs, results, episodes), its backend and run name, as validated. */
export type ExperimentOptions = z.output<typeof experimentOptionsSchema>;

/** Things that are not data: the reporter and an abort signal (e.g. Ctrl-C). */
export interface ExperimentHooks {
  reporter?: ExperimentReporter;
  signal?: AbortSignal;
}

export function validateOptions(raw: ExperimentOptionsInput): ExperimentOptions {
  const options = parseWithUserError(experimentOptionsSchema, raw, 'experiment options', 'fix the option');
  // The name is joined to --runs and --results: it must stay inside them.
  if (options.name !== undefined)
    checkRelativeName(options.name, '--name', 'give a plain name of letters, digits, `-`, `_` and `.` (not starting with "."), e.g. --name protonet_lr0.01');
  return options;
}

/** Where an experiment's data lives: the config's dataset and the options' source and folders. */
export function workspaceOf(config: Pick<TrainConfig, 'dataset' | 'datasetOptions'>, o: ExperimentOptions, resolved: ResolvedDataset): WorkspaceOptions {
  return { dataset: config.dataset, datasetOptions: config.datasetOptions, data: o.data, cache: o.cache, episodesDir: o.episodesDir, resolved };
}
