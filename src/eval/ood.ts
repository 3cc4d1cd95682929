import { mulberry32 } from '../util/prng.ts';
import { UserError } from '../util/errors.ts';

/**
 * Out-of-distribution detection metrics (Hendrycks & Gimpel 2017's protocol, the one the SLA paper's OOD numbers
 * follow): a detector gives every image a score, higher meaning "in-distribution"; the in-distribution images are
 * the positives. Pure functions over plain arrays, so they are checked against scikit-learn's numbers
 * (test/ood-metrics.test.ts) and run unchanged in a browser.
 *
 * - AUROC: area under the ROC curve = P(score of a random in-image > score of a random out-image), ties ½
 *   (sklearn.metrics.roc_auc_score with in = 1).
 * - AUPR-In: average precision with in as positive, Σₙ (Rₙ − Rₙ₋₁)·Pₙ over the distinct thresholds
 *   (sklearn.metrics.average_precision_score: the step sum, not the trapezoid, which over-estimates).
 * - AUPR-Out: the same with out as positive and the scores negated.
 * - FPR at 95 % TPR: the smallest fraction of out-images scored at or above a threshold that keeps at least 95 %
 *   of the in-images (sklearn's roc_curve: fpr at the first point with tpr ≥ 0.95).
 *
 * All four come from one sweep over the scores sorted once; a bootstrap resample is the same sweep with each
 * image's multiplicity as its weight, so B resamples cost B linear passes, not B sorts.
 */

export interface OodMetrics {
  auroc: number;
  auprIn: number;
  auprOut: number;
  fprAt95Tpr: number;
}

export const OOD_METRICS: readonly (keyof OodMetrics)[] = ['auroc', 'auprIn', 'auprOut', 'fprAt95Tpr'];

/** The recall (TPR) at which the false-positive rate is read. */
export const TPR_LEVEL = 0.95;

/** In- and out-scores merged and sorted by score, highest first; ties stay adjacent. */
interface SortedScores {
  scores: Float64Array;
  /** 1 for an in-distribution image, 0 for an out-image, in sorted order. */
  isIn: Uint8Array;
  /** Index of each sorted entry in its own list (in-scores or out-scores), for bootstrap weights. */
  index: Int32Array;
}

function checkScores(name: string, scores: ArrayLike<number>): void {
  if (scores.length === 0) throw new RangeError(`OOD metrics need at least one ${name} score`);
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) throw new RangeError(`${name} score ${i} is ${scores[i]}: scores must be finite`);
  }
}

function sortScores(inScores: ArrayLike<number>, outScores: ArrayLike<number>): SortedScores {
  checkScores('in-distribution', inScores);
  checkScores('out-of-distribution', outScores);
  const n = inScores.length + outScores.length;
  const order = Array.from({ length: n }, (_, i) => i);
  const value = (i: number) => (i < inScores.length ? inScores[i] : outScores[i - inScores.length]);
  order.sort((a, b) => value(b) - value(a));
  const sorted: SortedScores = { scores: new Float64Array(n), isIn: new Uint8Array(n), index: new Int32Array(n) };
  order.forEach((i, r) => {
    sorted.scores[r] = value(i);
    sorted.isIn[r] = i < inScores.length ? 1 : 0;
    sorted.index[r] = i < inScores.length ? i : i - inScores.length;
  });
  return sorted;
}

/**
 * The four metrics from one pass over sorted scores, each entry weighted (1 for the plain metrics, its bootstrap
 * multiplicity for a resample). Thresholds are the distinct scores: tied entries enter the counts together.
 */
function sweep(sorted: SortedScores, inWeight: (i: number) => number, outWeight: (i: number) => number): OodMetrics {
  const n = sorted.scores.length;
  let totalIn = 0;
  let totalOut = 0;
  for (let r = 0; r < n; r++) {
    if (sorted.isIn[r]) totalIn += inWeight(sorted.index[r]);
    else totalOut += outWeight(sorted.index[r]);
  }
  let tp = 0; // in-images at or above the threshold
  let fp = 0; // out-images at or above the threshold
  let auroc = 0;
  let auprIn = 0;
  let fprAt95Tpr = Number.NaN;
  for (let r = 0; r < n; ) {
    const prevTp = tp;
    const prevFp = fp;
    const s = sorted.scores[r];
    for (; r < n && sorted.scores[r] === s; r++) {
      if (sorted.isIn[r]) tp += inWeight(sorted.index[r]);
      else fp += outWeight(sorted.index[r]);
    }
    if (tp === prevTp && fp === prevFp) continue;
    // Trapezoid between the previous ROC point and this one: a tie block counts its in/out pairs as ½.
    auroc += ((fp - prevFp) / totalOut) * ((tp + prevTp) / 2 / totalIn);
    auprIn += ((tp - prevTp) / totalIn) * (tp / (tp + fp));
    if (Number.isNaN(fprAt95Tpr) && tp / totalIn >= TPR_LEVEL) fprAt95Tpr = fp / totalOut;
  }
  // AUPR-Out: the same sweep from the lowest score up (out positive, scores negated).
  let tpOut = 0;
  let fpOut = 0;
  let auprOut = 0;
  for (let r = n - 1; r >= 0; ) {
    const prevTp = tpOut;
    const prevFp = fpOut;
    const s = sorted.scores[r];
    for (; r >= 0 && sorted.scores[r] === s; r--) {
      if (sorted.isIn[r]) fpOut += inWeight(sorted.index[r]);
      else tpOut += outWeight(sorted.index[r]);
    }
    if (tpOut === prevTp && fpOut === prevFp) continue;
    auprOut += ((tpOut - prevTp) / totalOut) * (tpOut / (tpOut + fpOut));
  }
  return { auroc, auprIn, auprOut, fprAt95Tpr };
}

/** AUROC, AUPR-In, AUPR-Out and FPR at 95 % TPR of scores where higher means in-distribution. */
export function oodMetrics(inScores: ArrayLike<number>, outScores: ArrayLike<number>): OodMetrics {
  return sweep(
    sortScores(inScores, outScores),
    () => 1,
    () => 1,
  );
}

export interface BootstrapInterval {
  /** The metric on the full score lists. */
  value: number;
  /** 2.5th and 97.5th percentiles of the metric over the resamples. */
  low: number;
  high: number;
}

export type OodMetricsWithCI = Record<keyof OodMetrics, BootstrapInterval> & { resamples: number; seed: number };

/**
 * The metrics with 95 % percentile-bootstrap intervals: each resample draws the in-images and the out-images with
 * replacement, separately (so every resample keeps both list sizes), from a mulberry32 stream seeded by `seed`:
 * the same scores and seed give the same interval on every machine.
 */
export function oodMetricsWithCI(inScores: ArrayLike<number>, outScores: ArrayLike<number>, options: { resamples?: number; seed: number }): OodMetricsWithCI {
  const resamples = options.resamples ?? 1000;
  if (!Number.isInteger(resamples) || resamples < 10) throw new RangeError(`bootstrap resamples must be a whole number ≥ 10, got ${resamples}`);
  const sorted = sortScores(inScores, outScores);
  const point = sweep(
    sorted,
    () => 1,
    () => 1,
  );
  const random = mulberry32(options.seed);
  const inCount = new Uint32Array(inScores.length);
  const outCount = new Uint32Array(outScores.length);
  const draws: Record<keyof OodMetrics, Float64Array> = {
    auroc: new Float64Array(resamples),
    auprIn: new Float64Array(resamples),
    auprOut: new Float64Array(resamples),
    fprAt95Tpr: new Float64Array(resamples),
  };
  for (let b = 0; b < resamples; b++) {
    inCount.fill(0);
    outCount.fill(0);
    for (let i = 0; i < inCount.length; i++) inCount[Math.floor(random() * inCount.length)]++;
    for (let i = 0; i < outCount.length; i++) outCount[Math.floor(random() * outCount.length)]++;
    const m = sweep(
      sorted,
      (i) => inCount[i],
      (i) => outCount[i],
    );
    for (const k of OOD_METRICS) draws[k][b] = m[k];
  }
  const interval = (k: keyof OodMetrics): BootstrapInterval => {
    const d = draws[k].slice().sort();
    return { value: point[k], low: percentile(d, 0.025), high: percentile(d, 0.975) };
  };
  return {
    auroc: interval('auroc'),
    auprIn: interval('auprIn'),
    auprOut: interval('auprOut'),
    fprAt95Tpr: interval('fprAt95Tpr'),
    resamples,
    seed: options.seed,
  };
}

/** Linear-interpolated percentile of sorted values (numpy's default "linear" method). */
export function percentile(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Maximum softmax probability of each row of logits [rows × classes] (Hendrycks & Gimpel's baseline score). Computed
 * as 1 / Σ_c exp(l_c − max l), which is exact for any logit scale (no exp overflow).
 */
export function maxSoftmax(logits: ArrayLike<number>, classes: number): Float64Array {
  if (!Number.isInteger(classes) || classes < 1 || logits.length % classes !== 0) {
    throw new RangeError(`${logits.length} logits are not rows of ${classes} classes`);
  }
  const rows = logits.length / classes;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[r * classes + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[r * classes + c] - max);
    out[r] = 1 / sum;
  }
  return out;
}

/**
 * Refuse an out-distribution that shares classes with the in-distribution, before any compute: its images of a
 * shared class would be counted as "out" although the classifier was trained on that class, and AUROC would
 * measure nothing. Classes are compared by name (mini-ImageNet's WordNet ids, a `folder` dataset's folder names),
 * so two datasets that name the same class differently are not caught: the message says which names collided.
 */
export function requireDisjointClasses(inside: { name: string; classes: readonly string[] }, outside: { name: string; classes: readonly string[] }): void {
  if (outside.classes.length === 0) {
    throw new UserError(`the out-distribution ${outside.name} has no classes`, 'give a split with images (check the dataset and --out-split)');
  }
  const inClasses = new Set(inside.classes);
  const shared = outside.classes.filter((c) => inClasses.has(c));
  if (shared.length > 0) {
    const shown = shared.slice(0, 5).join(', ') + (shared.length > 5 ? `, … (${shared.length} in all)` : '');
    throw new UserError(
      `the out-distribution ${outside.name} shares ${shared.length} of its ${outside.classes.length} classes with the in-distribution ${inside.name} (${shown}): images of a class the classifier was trained on are not out-of-distribution`,
      'give an out-distribution with none of the training classes: another split of the dataset (mini-ImageNet: --out-split test, the 20 test classes) or another dataset',
    );
  }
}
