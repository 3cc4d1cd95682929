import { promises as fs } from 'node:fs';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { createHash } from 'node:crypto';
import { recoverFiles, writeFilesAtomic } from '../util/atomic.ts';
import type { EvalResult } from '../eval/evaluator.ts';
import { formatCI, type MeanCI } from '../eval/stats.ts';
import { UserError } from '../util/errors.ts';
import { portableValue } from '../util/portable-path.ts';

/**
 * A result directory: `result.json` (everything needed to trace the number: command, seed, backend,
 * data and episode-file fingerprints, wall times, config, versions) and `per-episode.csv` (accuracy of
 * every episode per inference mode, so CIs and paired tests can be recomputed).
 */
export interface ResultRecord {
  format: 'fewshot-result/1';
  method: string;
  createdAt: string;
  /** The command line that produced it, when the caller gave one (the CLI does). */
  command?: string;
  /** Hash of the evaluated config with the test split's fingerprint (lets a re-run keep an identical result). */
  configHash?: string;
  seed: number;
  /** `accelerator`: the native accelerator under the wasm backend when one ran (docs/native.md). */
  backend: { choice: string; detail: string; accelerator?: { name: string; version: string; isa: string; runtime: string; threads: number } };
  data: {
    dataset: string;
    /** The dataset provider and its resolved options (absent in results written before providers). */
    provider?: { id: string; options: Record<string, unknown> };
    /** Per-channel mean/std in [0, 1] units the images were normalised with. */
    normalization?: { mean: readonly number[]; std: readonly number[] };
    imageSize: number;
    splitFingerprint: string;
    cacheFingerprint: string;
  };
  episodes: { file: string; sha256: string; split: string; way: number; shot: number; query: number; evaluated: number };
  inferenceModes: string[];
  summary: Record<string, MeanCI & { text: string }>;
  /**
   * `train`: this sitting's training; `trainAllSittings`: every sitting of a resumed run (estimated from its train
   * log when `trainAllSittingsEstimated`; absent in results written before it was recorded); `total`: this process.
   */
  wallSeconds: { train?: number; trainAllSittings?: number; trainAllSittingsEstimated?: true; eval: number; total?: number };
  training?: Record<string, unknown>;
  checkpoint?: string;
  software: Record<string, string>;
  /** Plugins loaded when the result was made: module, file, package name@version and sha256 of the file. */
  plugins?: { module: string; file?: string; package?: string; sha256?: string; registered?: Record<string, string[]> }[];
  config?: Record<string, unknown>;
  /** sha256 of per-episode.csv: readers check that the two files belong together (older results lack it). */
  perEpisodeSha256?: string;
}

export async function writeResult(
  dir: string,
  record: Omit<ResultRecord, 'format' | 'summary' | 'inferenceModes'>,
  evalResult: EvalResult,
): Promise<ResultRecord> {
  const rows = Array.from({ length: evalResult.episodes }, (_, i) => [i, ...evalResult.modes.map((m) => evalResult.perEpisode[m][i])]);
  const csv = stringify(rows, { header: true, columns: ['episode', ...evalResult.modes] });
  const full: ResultRecord = {
    format: 'fewshot-result/1',
    // no absolute path of this machine in a result (they are committed and shared): see util/portable-path.ts
    ...portableValue(record),
    inferenceModes: evalResult.modes,
    summary: Object.fromEntries(evalResult.modes.map((m) => [m, { ...evalResult.summary[m], text: formatCI(evalResult.summary[m]) }])),
    perEpisodeSha256: createHash('sha256').update(csv).digest('hex'),
  };
  // Result folders are committed to git, so they must stay plain files (no versioned folders or
  // symlinks): a staged, journaled per-file replace, result.json moved in last (see writeFilesAtomic).
  await writeFilesAtomic(
    dir,
    [
      ['per-episode.csv', csv],
      ['result.json', JSON.stringify(full, null, 2) + '\n'],
    ],
    'result',
  );
  return full;
}

/** A result folder read back: its folder, `result.json` record and per-episode accuracies. */
export interface LoadedResult {
  dir: string;
  record: ResultRecord;
  perEpisode: Record<string, Float64Array>;
}

/** Reads a result folder's `result.json` and per-episode accuracies (finishing an interrupted write first). */
export async function readResult(dir: string): Promise<LoadedResult> {
  // An interrupted write leaves a journal beside the folder; finish it before reading.
  await recoverFiles(dir).catch(() => undefined);
  let record: ResultRecord;
  try {
    record = JSON.parse(await fs.readFile(path.join(dir, 'result.json'), 'utf8'));
  } catch {
    throw new UserError(`no readable result.json in ${dir}`, 'pass a directory written by `fewshot eval` or `fewshot run` (under results/)');
  }
  const csv = await fs.readFile(path.join(dir, 'per-episode.csv'), 'utf8').catch(() => {
    throw new UserError(`no per-episode.csv in ${dir}`, 'the result directory is incomplete; re-run the evaluation');
  });
  if (record.perEpisodeSha256 && createHash('sha256').update(csv).digest('hex') !== record.perEpisodeSha256) {
    throw new UserError(
      `${dir}: per-episode.csv does not belong to result.json (sha256 differs from the one recorded)`,
      're-run the evaluation that wrote this result',
    );
  }
  const lines = csv.trim().split('\n');
  const header = lines[0].split(',');
  const perEpisode: Record<string, Float64Array> = {};
  header.slice(1).forEach((mode, c) => {
    perEpisode[mode] = Float64Array.from(lines.slice(1), (l) => Number(l.split(',')[c + 1]));
  });
  return { dir, record, perEpisode };
}
