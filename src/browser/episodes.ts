import { normalizePixels } from '../data/normalize.ts';
import { isSplitName, parseSplitCsv } from '../data/split-csv.ts';
import { parseEpisodeSet } from '../episodes/parse.ts';
import type { EpisodeIndices } from '../episodes/images.ts';
import { evaluate, type EpisodeList } from '../eval/evaluator.ts';
import { meanCI, type MeanCI } from '../eval/stats.ts';
import { UserError } from '../util/errors.ts';
import { prepareImage } from './image.ts';
import type { EpisodicMethod } from '../methods/contract.ts';
import type { LoadedExport } from './model.ts';

/**
 * An episode evaluation in the page: a fixed episode file (the committed ones, or any `fewshot episodes make`
 * wrote), its split's CSV (item index → image file, the cache's item order) and the images, evaluated by the
 * same `evaluate` (eval/evaluator.ts) as `fewshot eval`, so the page's per-episode accuracies are `fewshot
 * eval`'s. The split fingerprint (a hash of every image of the split) is not checked: only the episodes'
 * images are given; the CSV must list the episode file's classes and class sizes.
 */
export interface PageEvaluation {
  modes: string[];
  perEpisode: Record<string, number[]>;
  summary: Record<string, MeanCI>;
  episodes: number;
  images: number;
  decodeMs: number;
  evalMs: number;
}

/** Episodes evaluated between two yields to the page (progress shows, the page stays responsive). */
const CHUNK = 5;

export async function evaluateEpisodesInPage(args: {
  model: LoadedExport;
  /** The model's method for `way` classes on the current backend, weights assigned. */
  methodFor: (way: number) => EpisodicMethod;
  episodeFile: File;
  csvFile: File;
  images: File[];
  limit: number;
  onProgress?: (done: number, total: number, phase: string) => void;
}): Promise<PageEvaluation> {
  let raw: unknown;
  try {
    raw = JSON.parse(await args.episodeFile.text());
  } catch (err) {
    throw new UserError(
      `${args.episodeFile.name} is not valid JSON (${(err as Error).message})`,
      'choose an episode file (episodes/mini-imagenet/*.json, or one `fewshot episodes make` wrote)',
    );
  }
  const set = parseEpisodeSet(raw, args.episodeFile.name);
  const h = set.header;
  if (!isSplitName(h.split))
    throw new UserError(`${args.episodeFile.name} is of split "${h.split}", not train, val or test`, 'choose an episode file of a standard split');
  const csv = parseSplitCsv(await args.csvFile.text(), h.split, args.csvFile.name);
  if (csv.classes.join() !== h.splitClasses.join() || csv.itemsPerClass.join() !== h.itemsPerClass.join()) {
    throw new UserError(
      `${args.csvFile.name} does not list the ${h.dataset} ${h.split} classes and class sizes that ${args.episodeFile.name} was made for`,
      `choose the ${h.split}.csv of the dataset the episodes were made for`,
    );
  }
  const total = Math.min(Math.max(1, Math.floor(args.limit)), h.count);
  const needed = new Set<number>();
  for (const ep of set.episodes.slice(0, total)) for (const item of [...ep.support, ...ep.query]) needed.add(item);
  const byName = new Map(args.images.map((f) => [f.name, f]));
  const missing = [...needed].filter((item) => !byName.has(csv.filenames[item]));
  if (missing.length) {
    throw new UserError(
      `${missing.length} of the ${needed.size} images of the first ${total} episodes were not given (e.g. ${csv.filenames[missing[0]]})`,
      `choose the images of the ${h.split} split (the files ${args.csvFile.name} names), or the folder holding them`,
    );
  }

  const { size, grayscale, normalization } = args.model.manifest.image;
  const pixels = new Map<number, Uint8Array>();
  const t0 = performance.now();
  let done = 0;
  for (const item of needed) {
    const name = csv.filenames[item];
    pixels.set(item, (await prepareImage(byName.get(name)!, name, size, grayscale)).pixels);
    if (++done % 50 === 0) args.onProgress?.(done, needed.size, 'decoding');
  }
  const decodeMs = performance.now() - t0;
  const per = size * size * 3;
  const source = {
    imageSize: size,
    gather(items: ArrayLike<number>): Float32Array {
      const out = new Uint8Array(items.length * per);
      for (let i = 0; i < items.length; i++) out.set(pixels.get(items[i])!, i * per);
      return normalizePixels(out, normalization);
    },
  };

  const method = args.methodFor(h.spec.way);
  const t1 = performance.now();
  const perEpisode: Record<string, number[]> = Object.fromEntries(method.inferenceModes.map((m) => [m, []]));
  for (let from = 0; from < total; from += CHUNK) {
    const n = Math.min(CHUNK, total - from);
    const chunk: EpisodeList = { count: n, spec: h.spec, get: (i): EpisodeIndices => set.episodes[from + i] };
    const result = evaluate(method, source, chunk);
    for (const m of result.modes) perEpisode[m].push(...result.perEpisode[m]);
    args.onProgress?.(from + n, total, 'evaluating');
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const modes = [...method.inferenceModes];
  return {
    modes,
    perEpisode,
    summary: Object.fromEntries(modes.map((m) => [m, meanCI(perEpisode[m])])),
    episodes: total,
    images: needed.size,
    decodeMs,
    evalMs: performance.now() - t1,
  };
}
