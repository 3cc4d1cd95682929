import { z } from 'zod';
import { UserError } from '../util/errors.ts';
import type { SampledEpisode } from './sampler.ts';
import { episodeSpecSchema, validateSpec, type EpisodeSpec } from './spec.ts';

/**
 * Episode files (format in episodes/README.md) as data: the schema, the invariants and the parse of a file's
 * JSON, with no Node built-ins, so the browser page reads the committed episode files with the very checks
 * `fewshot eval` applies (file.ts reads them from disk through this).
 */
export const EPISODE_FILE_FORMAT = 'fewshot-episodes';
export const EPISODE_FILE_FORMAT_VERSION = 1;

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

/** A fixed episode file in memory: its header (spec, seed, split fingerprint) and its episodes. */
export interface EpisodeSet {
  header: EpisodeSetHeader;
  episodes: SampledEpisode[];
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
  spec: episodeSpecSchema,
  seed: z.number().int().nonnegative(),
  count,
});
const indexList = z.array(z.number().int().nonnegative());
const fileSchema = headerSchema.extend({
  encoding: z.string().optional(),
  episodes: z.array(z.tuple([indexList, indexList, indexList])),
});

/** Check every invariant of an episode set; `problem` gets the first violation. */
export function checkEpisodeSet(set: EpisodeSet, where: string): void {
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
      bad(
        `episode ${i} has ${ep.classes.length} classes / ${ep.support.length} support / ${ep.query.length} query items, expected ${way} / ${way * shot} / ${way * query}`,
      );
    }
    if (new Set(ep.classes).size !== way) bad(`episode ${i} repeats a class`);
    const items = new Set<number>();
    const checkItem = (item: number, label: number, kind: string): void => {
      const c = ep.classes[label];
      if (!(c >= 0 && c < h.itemsPerClass.length)) bad(`episode ${i} has class id ${c}, the split has ${h.itemsPerClass.length} classes`);
      if (!(item >= offsets[c] && item < offsets[c] + h.itemsPerClass[c]))
        bad(`episode ${i} ${kind} item ${item} (label ${label}) is not an item of class ${c}`);
      if (items.has(item)) bad(`episode ${i} uses item ${item} twice (support and query must be disjoint)`);
      items.add(item);
    };
    ep.support.forEach((item, k) => checkItem(item, Math.floor(k / shot), 'support'));
    ep.query.forEach((item, k) => checkItem(item, Math.floor(k / query), 'query'));
  });
}

/** An episode set from a file's parsed JSON; `where` names the file in messages. */
export function parseEpisodeSet(raw: unknown, where: string): EpisodeSet {
  const head = z.object({ format: z.string(), formatVersion: z.number() }).safeParse(raw);
  if (!head.success || head.data.format !== EPISODE_FILE_FORMAT) {
    throw new UserError(
      `${where} is not a fewshot episode file (no "format": "${EPISODE_FILE_FORMAT}")`,
      'pass an episode file made by `fewshot episodes make`',
    );
  }
  if (head.data.formatVersion !== EPISODE_FILE_FORMAT_VERSION) {
    throw new UserError(
      `${where} has episode-file format version ${head.data.formatVersion}, this fewshot reads version ${EPISODE_FILE_FORMAT_VERSION}`,
      'regenerate it with this version: `fewshot episodes make`',
    );
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new UserError(
      `${where} is not a valid episode file: ${first.path.join('.')}: ${first.message}`,
      'regenerate it with `fewshot episodes make` instead of editing it by hand',
    );
  }
  const { episodes, encoding: _encoding, ...header } = parsed.data;
  const spec = header.spec;
  const set: EpisodeSet = {
    header: header as EpisodeSetHeader,
    episodes: episodes.map(([classes, support, query]) => ({ spec, classes, support: Int32Array.from(support), query: Int32Array.from(query) })),
  };
  checkEpisodeSet(set, where);
  return set;
}
