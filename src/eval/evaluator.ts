import * as tf from '@tensorflow/tfjs-core';
import type { EpisodicMethod } from '../methods/contract.ts';
import { disposeEpisode, toEpisodeImages, type EpisodeIndices, type ImageSource } from '../episodes/images.ts';
import type { EpisodeSpec } from '../episodes/spec.ts';
import { meanCI, type MeanCI } from './stats.ts';
import { NumericalError, withEpisodeIndex } from '../util/errors.ts';

/** A fixed, indexable list of episodes (an episode file, or the first n of one). */
export interface EpisodeList {
  readonly count: number;
  /** The spec every episode of the list has. */
  readonly spec: EpisodeSpec;
  get(index: number): EpisodeIndices;
}

/** What `evaluate` returns: per-episode accuracies per inference mode and their mean ± 95% CI. */
export interface EvalResult {
  /** Inference modes in the method's order; the first is the headline one. */
  modes: string[];
  /** Per mode, accuracy of each evaluated episode (fraction correct of its queries), in episode order. */
  perEpisode: Record<string, Float64Array>;
  summary: Record<string, MeanCI>;
  episodes: number;
  wallSeconds: number;
}

/** Fraction of rows whose argmax equals the label. */
export function accuracyOf(scores: Float32Array | Int32Array | Uint8Array, numClasses: number, labels: Int32Array): number {
  let correct = 0;
  for (let r = 0; r < labels.length; r++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (scores[r * numClasses + c] > scores[r * numClasses + best]) best = c;
    if (best === labels[r]) correct++;
  }
  return correct / labels.length;
}

/** Score `method` on episodes [0, limit) of `list`. Deterministic: the backbone runs in eval mode. */
export function evaluate(
  method: Pick<EpisodicMethod, 'inferenceModes' | 'predict'>,
  source: ImageSource,
  list: EpisodeList,
  opts: { limit?: number; onProgress?: (done: number, total: number) => void } = {},
): EvalResult {
  const t0 = performance.now();
  const total = Math.min(opts.limit ?? list.count, list.count);
  const modes = [...method.inferenceModes];
  const perEpisode: Record<string, Float64Array> = Object.fromEntries(modes.map((m) => [m, new Float64Array(total)]));
  for (let i = 0; i < total; i++) {
    const ep = toEpisodeImages(source, list.get(i));
    try {
      const scores = withEpisodeIndex(i, 'evaluation episode', () => tf.tidy(() => method.predict(ep)));
      try {
        for (const m of modes) {
          const s = scores[m];
          const values = s.dataSync() as Float32Array;
          // A NaN never wins an argmax, so non-finite scores would pick class 0 for every query: exactly 1/way per
          // episode, a plausible-looking "20.00 ± 0.00 %" at 5-way. They are an error, never a result.
          const bad = values.findIndex((v) => !Number.isFinite(v));
          if (bad >= 0) {
            throw new NumericalError(
              `the scores of inference mode "${m}" are not finite (${values[bad]} for query ${Math.floor(bad / s.shape[1])}): the model's weights or a plugin's method, backbone or head produced them`,
              i,
              'evaluation episode',
            );
          }
          perEpisode[m][i] = accuracyOf(values, s.shape[1], ep.queryLabels);
        }
      } finally {
        tf.dispose(Object.values(scores));
      }
    } finally {
      disposeEpisode(ep);
    }
    opts.onProgress?.(i + 1, total);
  }
  const summary = Object.fromEntries(modes.map((m) => [m, meanCI(perEpisode[m])]));
  return { modes, perEpisode, summary, episodes: total, wallSeconds: (performance.now() - t0) / 1000 };
}
