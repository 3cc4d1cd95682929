import type { SelectedBackend } from '../backend/select.ts';
import type { EvalResult } from '../eval/evaluator.ts';
import { formatCI } from '../eval/stats.ts';
import type { EpisodicMethod } from '../methods/contract.ts';
import { writeResult, type ResultRecord } from '../reports/results.ts';
import type { LoadedCheckpoint } from '../train/checkpoint.ts';
import type { TrainConfig } from '../train/config.ts';
import type { TrainSummary } from '../train/trainer.ts';
import { UserError } from '../util/errors.ts';
import { diskErrorOf } from '../util/fs-errors.ts';
import type { OpenedDataset, OpenedSplit } from './workspace.ts';
import { pluginRecords, softwareVersions } from './software.ts';

/** Everything a result records besides the scores: what was evaluated, on what, by which software. */
export interface EvaluationFacts {
  config: TrainConfig;
  configHash: string;
  method: EpisodicMethod;
  backend: SelectedBackend;
  dataset: OpenedDataset;
  testSplit: OpenedSplit;
  test: { file: string; sha256: string; evaluated: number };
  checkpointDir: string;
  checkpoint: LoadedCheckpoint;
  /** The training that made the checkpoint, when it ran in this call. */
  summary?: TrainSummary;
  /** Recorded as `command` when given. */
  command?: string;
  /** performance.now() when the call started (the record's total wall time). */
  startedAt: number;
}

/** The backend as every result records it: the choice, its detail, and the native accelerator when one ran. */
export function backendRecord(b: SelectedBackend): ResultRecord['backend'] {
  return { choice: b.choice, detail: b.detail, ...(b.accelerator ? { accelerator: b.accelerator } : {}) };
}

/** The data an episodic result was scored on: the dataset, its provider and normalisation, and the test split's fingerprints. */
export function testDataRecord(dataset: OpenedDataset, imageSize: number, testSplit: OpenedSplit): ResultRecord['data'] {
  return {
    dataset: dataset.dataset.name,
    provider: { id: dataset.dataset.provider.id, options: dataset.dataset.options },
    normalization: dataset.normalization,
    imageSize,
    splitFingerprint: testSplit.splitFingerprint,
    cacheFingerprint: testSplit.cacheFingerprint,
  };
}

/** The result record of an evaluation (result.json without the summary and modes writeResult adds). */
function recordOf(f: EvaluationFacts, result: EvalResult): Omit<ResultRecord, 'format' | 'summary' | 'inferenceModes'> {
  const { config, dataset, testSplit, summary } = f;
  const meta = f.checkpoint.file.meta;
  const weightsSha256 = f.checkpoint.file.weightsSha256;
  return {
    method: config.method,
    createdAt: new Date().toISOString(),
    ...(f.command !== undefined ? { command: f.command } : {}),
    configHash: f.configHash,
    seed: config.seed,
    backend: backendRecord(f.backend),
    data: testDataRecord(dataset, config.imageSize, testSplit),
    episodes: { file: f.test.file, sha256: f.test.sha256, split: 'test', ...config.test, evaluated: f.test.evaluated },
    wallSeconds: {
      train: summary?.wallSeconds,
      eval: result.wallSeconds,
      total: (performance.now() - f.startedAt) / 1000,
      ...(summary
        ? { trainAllSittings: summary.allSittings.wallSeconds, ...(summary.allSittings.estimated ? { trainAllSittingsEstimated: true as const } : {}) }
        : {}),
    },
    training: {
      ...(summary ? { episodesTrained: summary.episodesTrained, resumedFrom: summary.resumedFrom, best: summary.best, wallSeconds: summary.wallSeconds } : {}),
      run: meta.name,
      trainedAtEpisode: meta.episode,
      trainData: meta.data,
      valEpisodes: meta.valEpisodes,
      ...(weightsSha256 ? { weightsSha256 } : {}),
    },
    checkpoint: f.checkpointDir,
    software: softwareVersions(),
    plugins: pluginRecords(),
    config: { ...config, describe: f.method.describe() },
  };
}

/**
 * Write an evaluation's result atomically. On a full or read-only disk the evaluation itself is done: the error
 * says its accuracy even though the result could not be recorded.
 */
export async function recordEvaluation(resultDir: string, facts: EvaluationFacts, result: EvalResult): Promise<ResultRecord> {
  return writeResult(resultDir, recordOf(facts, result), result).catch((err: unknown) => {
    const disk = diskErrorOf(err);
    if (!disk) throw err;
    const headline = result.modes[0];
    throw new UserError(
      `the evaluation finished (${headline} ${formatCI(result.summary[headline])} % over ${result.episodes} test episodes) but its result could not be written: ${disk.problem}`,
      disk.fix.replace(/, then run the same command again.*/, ', then run the same command again to record it'),
    );
  });
}
