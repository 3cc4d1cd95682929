/** Robust summary of timing samples: median and interquartile range (quantiles by linear interpolation, as numpy). */
export interface TimingSummary {
  n: number;
  median: number;
  q1: number;
  q3: number;
  iqr: number;
  min: number;
  max: number;
}

/** The q-quantile (0..1) of already sorted values, interpolating linearly between order statistics. */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new Error('quantile of no samples');
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(samples: readonly number[]): TimingSummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const q1 = quantileSorted(sorted, 0.25);
  const q3 = quantileSorted(sorted, 0.75);
  return { n: sorted.length, median: quantileSorted(sorted, 0.5), q1, q3, iqr: q3 - q1, min: sorted[0], max: sorted[sorted.length - 1] };
}

/** Rounded copy for the JSON report (timings in ms to 0.01). */
export function roundSummary(s: TimingSummary, digits = 2): TimingSummary {
  const r = (x: number) => Math.round(x * 10 ** digits) / 10 ** digits;
  return { n: s.n, median: r(s.median), q1: r(s.q1), q3: r(s.q3), iqr: r(s.iqr), min: r(s.min), max: r(s.max) };
}
