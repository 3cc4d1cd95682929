import * as tf from '@tensorflow/tfjs-core';
import type { EpisodicMethod } from '../methods/contract.ts';
import { disposeEpisode, toEpisodeImages, type EpisodeIndices, type ImageSource } from '../episodes/images.ts';
import type { EpisodeSpec } from '../episodes/spec.ts';
import { meanCI, type MeanCI } from './stats.ts';
import { withEpisodeIndex } from '../util/errors.ts';

/** A fixed, indexable list of episodes (an episode file, or the first n of one). */
export interface EpisodeList {
  readonly count: number;
  readonly shape: EpisodeSpec;
  get(index: number): EpisodeIndices;
}

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
  method: EpisodicMethod,
  source: ImageSource,
  list: EpisodeList,
  opts: { limit?: number; onProgress?: (done: number, total: number) => void } = {},
): EvalResult {
  const t0 = performance.now();
  const total = Math.min(opts.limit ?? list.count, list.count);
  const modes = [...method.inferenceModes];
  const perEpisode: Record<string, Float64Array> = Object.fromEntries(modes.map((m) => [m, new Float64Array(total)]));
  for (let i = 0; i < total; i++) {
    const ep = toEpisodeImages(source, list.get(i), list.shape);
    try {
      const scores = withEpisodeIndex(i, 'evaluation episode', () => tf.tidy(() => method.predict(ep)));
      for (const m of modes) {
        const s = scores[m];
        perEpisode[m][i] = accuracyOf(s.dataSync() as Float32Array, s.shape[1], ep.queryLabels);
      }
      tf.dispose(Object.values(scores));
    } finally {
      disposeEpisode(ep);
    }
    opts.onProgress?.(i + 1, total);
  }
  const summary = Object.fromEntries(modes.map((m) => [m, meanCI(perEpisode[m])]));
  return { modes, perEpisode, summary, episodes: total, wallSeconds: (performance.now() - t0) / 1000 };
}
