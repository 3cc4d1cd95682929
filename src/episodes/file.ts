import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.ts';
import { UserError } from '../util/errors.ts';
import { SAMPLER_VERSION, sampleEpisodes } from './sampler.ts';
import { specTag, type EpisodeSpec } from './spec.ts';
import { checkEpisodeSet, EPISODE_FILE_FORMAT, EPISODE_FILE_FORMAT_VERSION, parseEpisodeSet, type EpisodeSet, type EpisodeSetHeader } from './parse.ts';

/**
 * Episode file (JSON, one episode per line so diffs stay readable):
 *   { format, formatVersion, samplerVersion, dataset, split, splitFingerprint, splitClasses,
 *     itemsPerClass, spec, seed, count, encoding, episodes }
 * episodes[i] = [classes, support, query]: `way` class ids of the split (position = label),
 * then way·shot and way·query item indices, label-major. An item index is the item's row in the
 * split's item order (classes grouped in CSV order, CSV order within a class): the same order as
 * the cache's pixel file, so item i is row i of `<split>.u8`.
 */
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

/** Reads and checks a fixed episode file; a UserError naming the file when it is missing or malformed. */
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
  const set = parseEpisodeSet(raw, file);
  return { ...set, path: file, sha256: createHash('sha256').update(bytes).digest('hex') };
}

export async function episodeFileSha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex');
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
    throw new UserError(
      `${name} holds episodes of ${h.dataset} ${h.split}, but the loaded data is ${split.dataset} ${split.split}`,
      `pass the episode file made for ${split.dataset} ${split.split}`,
    );
  }
  if (h.splitFingerprint !== split.splitFingerprint) {
    const sameLayout =
      h.splitClasses.length === split.classes.length && h.splitClasses.every((c, i) => c === split.classes[i] && h.itemsPerClass[i] === split.itemsPerClass[i]);
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
