import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic.ts';
import { UserError } from '../util/errors.ts';
import { SAMPLER_VERSION, sampleEpisodes, type SampledEpisode } from './sampler.ts';
import { specTag, validateSpec, type EpisodeSpec } from './spec.ts';

/**
 * Episode file (JSON, one episode per line so diffs stay readable):
 *   { format, formatVersion, samplerVersion, dataset, split, splitFingerprint, splitClasses,
 *     itemsPerClass, spec, seed, count, encoding, episodes }
 * episodes[i] = [classes, support, query]: `way` class ids of the split (position = label),
 * then way·shot and way·query item indices, label-major. An item index is the item's row in the
 * split's item order (classes grouped in CSV order, CSV order within a class): the same order as
 * the cache's pixel file, so item i is row i of `<split>.u8`.
 */
export const EPISODE_FILE_FORMAT = 'fewshot-episodes';
export const EPISODE_FILE_FORMAT_VERSION = 1;
const ENCODING_NOTE =
  'episodes[i] = [classes, support, query]; classes = class ids of the split, position = label; ' +
  'support/query = item indices (row in the split item order), label-major: support[label*shot+k], query[label*query+k]';

/** What an episode set is drawn from: `LoadedSplit` satisfies it. */
export interface SplitDescriptor {
  dataset: string;
  split: string;
  classes: string[];
  itemsPerClass: number[];
  classOffsets: number[];
  splitFingerprint: string;
}

export interface EpisodeSetHeader {
  format: typeof EPISODE_FILE_FORMAT;
  formatVersion: number;
  samplerVersion: number;
  dataset: string;
  split: string;
  splitFingerprint: string;
  /** Class labels (wnids) of the split, in split order: class id c is splitClasses[c]. */
  splitClasses: string[];
  itemsPerClass: number[];
  spec: EpisodeSpec;
  seed: number;
  count: number;
}

export interface EpisodeSet {
  header: EpisodeSetHeader;
  episodes: SampledEpisode[];
}

/** An episode set read from disk, with what results should record about the file. */
export interface LoadedEpisodeFile extends EpisodeSet {
  path: string;
  /** sha256 of the file's bytes. */
  sha256: string;
}

/** Draw `count` episodes for `split` and wrap them with the header an episode file needs. */
export function makeEpisodes(options: {
  split: SplitDescriptor;
  spec: EpisodeSpec;
  seed: number;
  count: number;
  onProgress?: (done: number, total: number) => void;
}): EpisodeSet {
  const { split, spec, seed, count, onProgress } = options;
  const episodes = sampleEpisodes(split, spec, { seed, splitName: split.split, count, onProgress });
  return {
    header: {
      format: EPISODE_FILE_FORMAT,
      formatVersion: EPISODE_FILE_FORMAT_VERSION,
      samplerVersion: SAMPLER_VERSION,
      dataset: split.dataset,
      split: split.split,
      splitFingerprint: split.splitFingerprint,
      splitClasses: [...split.classes],
      itemsPerClass: [...split.itemsPerClass],
      spec: { way: spec.way, shot: spec.shot, query: spec.query },
      seed,
      count,
    },
    episodes,
  };
}

/** `<dataset>/<split>_<way>w<shot>s<query>q_seed<seed>_<count>.json`, e.g. `mini-imagenet/test_5w1s15q_seed0_2000.json`. */
export function episodeFileName(h: Pick<EpisodeSetHeader, 'dataset' | 'split' | 'spec' | 'seed' | 'count'>): string {
  return path.join(h.dataset, `${h.split}_${specTag(h.spec)}_seed${h.seed}_${h.count}.json`);
}

const count = z.number().int().positive();
const headerSchema = z.object({
  format: z.literal(EPISODE_FILE_FORMAT),
  formatVersion: z.literal(EPISODE_FILE_FORMAT_VERSION),
  samplerVersion: z.number().int().positive(),
  dataset: z.string().min(1),
  split: z.string().min(1),
  splitFingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  splitClasses: z.array(z.string().min(1)).min(1),
  itemsPerClass: z.array(count).min(1),
  spec: z.object({ way: count, shot: count, query: count }),
  seed: z.number().int().nonnegative(),
  count,
});
const indexList = z.array(z.number().int().nonnegative());
const fileSchema = headerSchema.extend({
  encoding: z.string().optional(),
  episodes: z.array(z.tuple([indexList, indexList, indexList])),
});

/** Check every invariant of an episode set; `problem` gets the first violation. */
function checkEpisodeSet(set: EpisodeSet, where: string): void {
  const h = set.header;
  const bad = (what: string): never => {
    throw new UserError(`${where} is not a valid episode file: ${what}`, 'regenerate it (e.g. with `fewshot episodes make`) instead of editing it by hand');
  };
  if (h.splitClasses.length !== h.itemsPerClass.length) bad(`${h.splitClasses.length} class names but ${h.itemsPerClass.length} class sizes`);
  if (new Set(h.splitClasses).size !== h.splitClasses.length) bad('splitClasses lists a class twice');
  if (set.episodes.length !== h.count) bad(`header says ${h.count} episodes, the file holds ${set.episodes.length}`);
  const offsets: number[] = [];
  h.itemsPerClass.reduce((acc, n) => (offsets.push(acc), acc + n), 0);
  try {
    validateSpec({ classOffsets: offsets, itemsPerClass: h.itemsPerClass }, h.spec, `split "${h.split}"`);
  } catch (err) {
    bad((err as UserError).problem ?? String(err));
  }
  const { way, shot, query } = h.spec;
  set.episodes.forEach((ep, i) => {
    if (ep.classes.length !== way || ep.support.length !== way * shot || ep.query.length !== way * query) {
      bad(`episode ${i} has ${ep.classes.length} classes / ${ep.support.length} support / ${ep.query.length} query items, expected ${way} / ${way * shot} / ${way * query}`);
    }
    if (new Set(ep.classes).size !== way) bad(`episode ${i} repeats a class`);
    const items = new Set<number>();
    const checkItem = (item: number, label: number, kind: string): void => {
      const c = ep.classes[label];
      if (!(c >= 0 && c < h.itemsPerClass.length)) bad(`episode ${i} has class id ${c}, the split has ${h.itemsPerClass.length} classes`);
      if (!(item >= offsets[c] && item < offsets[c] + h.itemsPerClass[c])) bad(`episode ${i} ${kind} item ${item} (label ${label}) is not an item of class ${c}`);
      if (items.has(item)) bad(`episode ${i} uses item ${item} twice (support and query must be disjoint)`);
      items.add(item);
    };
    ep.support.forEach((item, k) => checkItem(item, Math.floor(k / shot), 'support'));
    ep.query.forEach((item, k) => checkItem(item, Math.floor(k / query), 'query'));
  });
}

/** Serialise: one header field per line, then one episode per line (readable, diff-friendly, compact). */
export function serializeEpisodeSet(set: EpisodeSet): string {
  const header = Object.entries({ ...set.header, encoding: ENCODING_NOTE }).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  const lines = set.episodes.map((ep) => `[${JSON.stringify(ep.classes)},${JSON.stringify(Array.from(ep.support))},${JSON.stringify(Array.from(ep.query))}]`);
  return `{\n${header.join(',\n')},\n  "episodes": [\n${lines.join(',\n')}\n  ]\n}\n`;
}

/** Validate and write atomically; returns the file's sha256. */
export async function writeEpisodeFile(file: string, set: EpisodeSet): Promise<string> {
  checkEpisodeSet(set, 'the episode set to write');
  const text = serializeEpisodeSet(set);
  await writeFileAtomic(file, text);
  return createHash('sha256').update(text).digest('hex');
}

export async function readEpisodeFile(file: string): Promise<LoadedEpisodeFile> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch {
    throw new UserError(`episode file ${file} is missing or unreadable`, 'check the path, or make the file with `fewshot episodes make`');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new UserError(`episode file ${file} is not valid JSON (${(err as Error).message})`, 'regenerate it with `fewshot episodes make`');
  }
  const head = z.object({ format: z.string(), formatVersion: z.number() }).safeParse(raw);
  if (!head.success || head.data.format !== EPISODE_FILE_FORMAT) {
    throw new UserError(`${file} is not a fewshot episode file (no "format": "${EPISODE_FILE_FORMAT}")`, 'pass an episode file made by `fewshot episodes make`');
  }
  if (head.data.formatVersion !== EPISODE_FILE_FORMAT_VERSION) {
    throw new UserError(`${file} has episode-file format version ${head.data.formatVersion}, this fewshot reads version ${EPISODE_FILE_FORMAT_VERSION}`, 'regenerate it with this version: `fewshot episodes make`');
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new UserError(`${file} is not a valid episode file: ${first.path.join('.')}: ${first.message}`, 'regenerate it with `fewshot episodes make` instead of editing it by hand');
  }
  const { episodes, encoding: _encoding, ...header } = parsed.data;
  const set: EpisodeSet = {
    header: header as EpisodeSetHeader,
    episodes: episodes.map(([classes, support, query]) => ({ classes, support: Int32Array.from(support), query: Int32Array.from(query) })),
  };
  checkEpisodeSet(set, file);
  return { ...set, path: file, sha256: createHash('sha256').update(bytes).digest('hex') };
}

export async function episodeFileSha256(file: string): Promise<string> {
  return createHash('sha256').update(await fs.readFile(file)).digest('hex');
}

function shortFp(fp: string): string {
  return fp.slice(0, 12);
}

/**
 * The episode file's item indices only mean the right images for the data it was made for:
 * compare its split fingerprint (item list + source image content) with the loaded split's.
 */
export function checkEpisodesMatchSplit(set: EpisodeSet & { path?: string }, split: SplitDescriptor): void {
  const h = set.header;
  const name = set.path ?? 'the episode file';
  if (h.dataset !== split.dataset || h.split !== split.split) {
    throw new UserError(`${name} holds episodes of ${h.dataset} ${h.split}, but the loaded data is ${split.dataset} ${split.split}`, `pass the episode file made for ${split.dataset} ${split.split}`);
  }
  if (h.splitFingerprint !== split.splitFingerprint) {
    const sameLayout =
      h.splitClasses.length === split.classes.length &&
      h.splitClasses.every((c, i) => c === split.classes[i] && h.itemsPerClass[i] === split.itemsPerClass[i]);
    throw new UserError(
      `${name} was made for ${h.dataset} ${h.split} data with split fingerprint ${shortFp(h.splitFingerprint)}… ` +
        `(${h.splitClasses.length} classes, ${h.itemsPerClass.reduce((a, b) => a + b, 0)} items), but the loaded cache has ${shortFp(split.splitFingerprint)}… ` +
        `(${split.classes.length} classes, ${split.itemsPerClass.reduce((a, b) => a + b, 0)} items)` +
        (sameLayout ? '; the classes and counts agree, so the image files differ (another copy of mini-ImageNet?)' : '; the split CSVs differ'),
      'prepare the cache from the dataset copy the episodes were made for, or make new episodes for this data with `fewshot episodes make` (results are then not comparable with the committed episode sets)',
    );
  }
  // The header's class layout says which items are of which class (the file's own checks use it); with the
  // same fingerprint it must be the loaded split's, or an edited header moves class boundaries unnoticed.
  const c = h.splitClasses.findIndex((name, i) => name !== split.classes[i] || h.itemsPerClass[i] !== split.itemsPerClass[i]);
  if (c >= 0 || h.splitClasses.length !== split.classes.length) {
    const at = c >= 0 ? c : Math.min(h.splitClasses.length, split.classes.length);
    throw new UserError(
      `${name}: its class layout (splitClasses/itemsPerClass) disagrees with the loaded ${split.dataset} ${split.split} split although the split fingerprints agree ` +
        `(class ${at}: ${JSON.stringify(h.splitClasses[at])} with ${h.itemsPerClass[at]} items in the file, ${JSON.stringify(split.classes[at])} with ${split.itemsPerClass[at]} in the split): the file was edited`,
      'restore the episode file (e.g. `git checkout` it) or make it again with `fewshot episodes make`',
    );
  }
}

/**
 * True when the file's episodes are exactly what this sampler draws for its (seed, split, spec):
 * a check that the file was not edited and that sampling is reproducible.
 */
export function episodesRegenerate(set: EpisodeSet): boolean {
  const h = set.header;
  if (h.samplerVersion !== SAMPLER_VERSION) return false;
  const offsets: number[] = [];
  h.itemsPerClass.reduce((acc, n) => (offsets.push(acc), acc + n), 0);
  const again = sampleEpisodes({ classOffsets: offsets, itemsPerClass: h.itemsPerClass }, h.spec, { seed: h.seed, splitName: h.split, count: h.count });
  return again.every((ep, i) => {
    const got = set.episodes[i];
    return (
      ep.classes.length === got.classes.length &&
      ep.classes.every((c, k) => c === got.classes[k]) &&
      ep.support.every((v, k) => v === got.support[k]) &&
      ep.query.every((v, k) => v === got.query[k])
    );
  });
}
