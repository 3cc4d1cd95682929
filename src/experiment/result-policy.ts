import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ResultRecord } from '../reports/results.ts';
import type { TrainConfig } from '../train/config.ts';
import { recoverFiles } from '../util/atomic.ts';
import { UserError } from '../util/errors.ts';
import { trackedByGit } from '../util/git-tracked.ts';
import { DEFAULT_RESULTS } from '../util/result-folders.ts';
import { configDifferences, describeDifferences } from './config-diff.ts';
import type { ExperimentOptions } from './options.ts';

/*
 * Which existing result a run or an evaluation may keep, replace or must leave alone: a committed reference result
 * is never replaced by accident, a run replaces only its own result, an evaluation never replaces a different one,
 * and an identical result (same config, checkpoint and episodes) is kept instead of being computed again.
 */

/**
 * A result folder whose result.json git tracks is a committed reference result: a run or evaluation refuses to
 * replace it (before any training) unless `replaceCommitted` says it is meant.
 */
export function refuseCommittedResult(resultDir: string, options: Pick<ExperimentOptions, 'replaceCommitted'>): void {
  if (options.replaceCommitted || !trackedByGit(path.join(resultDir, 'result.json'))) return;
  throw new UserError(
    `${resultDir} is a committed reference result (its result.json is tracked by git); this would replace it`,
    `write your result elsewhere (--results <dir>; the default is ${DEFAULT_RESULTS}/), or pass --replace-committed to replace the reference on purpose`,
  );
}

/** The result in a folder, if any (a write killed after its commit point is finished first). */
export async function existingResult(dir: string): Promise<ResultRecord | undefined> {
  // A result write killed after its commit point leaves a `.ready` journal: finish it first, so the result
  // compared (and kept) is the one last written, not the one the journal was replacing.
  await recoverFiles(dir);
  try {
    return JSON.parse(await fs.readFile(path.join(dir, 'result.json'), 'utf8')) as ResultRecord;
  } catch {
    return undefined;
  }
}

/**
 * A run's result folder is named from part of its config (`runName` leaves out lr, query, schedule, ...), so two
 * different runs can share it; a run replaces only its own result (the same config), never another's. Checked
 * before training (no hours lost) and again before writing (another process may have written one meanwhile).
 */
export async function refuseOtherRunsResult(resultDir: string, config: TrainConfig): Promise<void> {
  const prev = await existingResult(resultDir);
  if (!prev) return;
  const differences = configDifferences(prev.config, config as unknown as Record<string, unknown>, config.dataset);
  if (differences.length === 0) return;
  throw new UserError(
    `${resultDir} already holds a run with a different configuration (its result: ${describeDifferences(differences)}; recorded → this run); it is not replaced`,
    `give this run another --name, or another --results folder, or delete ${resultDir} if you no longer need that result`,
  );
}

/** What an evaluation would write, to compare with the result already in its folder. */
export interface ResultIdentity {
  configHash: string;
  episodesSha256: string;
  evaluated: number;
  trainedAtEpisode: unknown;
  weightsSha256?: string;
}

/**
 * The existing result to keep instead of evaluating again (`reuse`: same config, episodes, count and checkpoint), or
 * undefined. With `keepOthers` (an evaluation), a different result in the folder is refused, never replaced.
 */
export async function keptResult(resultDir: string, want: ResultIdentity, policy: { reuse: boolean; keepOthers: boolean }): Promise<ResultRecord | undefined> {
  if (!policy.reuse && !policy.keepOthers) return undefined;
  const prev = await existingResult(resultDir);
  if (!prev) return undefined;
  const t = prev.training as { trainedAtEpisode?: unknown; weightsSha256?: unknown } | undefined;
  const same =
    prev.configHash === want.configHash &&
    prev.episodes.sha256 === want.episodesSha256 &&
    prev.episodes.evaluated === want.evaluated &&
    t?.trainedAtEpisode === want.trainedAtEpisode &&
    (t?.weightsSha256 === undefined || t.weightsSha256 === want.weightsSha256);
  if (same) return prev;
  if (policy.keepOthers) {
    const what =
      prev.episodes.evaluated !== want.evaluated
        ? `${prev.episodes.evaluated} episodes, this evaluation ${want.evaluated}`
        : prev.episodes.sha256 !== want.episodesSha256
          ? 'another episode file'
          : 'another checkpoint or config';
    throw new UserError(
      `${resultDir} already holds a different result (${prev.method}, ${what}); it is not replaced`,
      `give this evaluation another --name, or delete ${resultDir} if you no longer need it`,
    );
  }
  return undefined;
}
