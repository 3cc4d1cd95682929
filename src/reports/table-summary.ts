import { meanCI, pairedDifference, type MeanCI } from '../eval/stats.ts';
import { publishedFor, type CellSpec, type PublishedValue, type TableSpec } from './table-spec.ts';

/**
 * Fill a table from finished runs: each cell's accuracy per seed and over seeds, each comparison's paired
 * difference per seed and pooled, and an honest verdict.
 *
 * Pooling over seeds: every seed is scored on the same test episodes, so the per-episode differences are first
 * averaged over seeds and the CI is taken over episodes (mean ± 1.96·s/√n, as everywhere in this toolkit). That
 * interval reflects episode sampling only; seed-to-seed variation is reported beside it as the standard deviation
 * of the per-seed means, so a reader sees both sources of noise.
 */
export interface SeedOutcome {
  seed: number;
  /** Result directory, relative to the project. */
  result: string;
  /** Per-episode accuracies (0..1) of the cell's inference mode. */
  perEpisode: Float64Array;
  /** sha256 of the episode file the run was scored on: a paired difference needs it equal on both sides. */
  episodesSha256: string;
  /** `train` covers every sitting of a resumed run; `trainEstimated` when part of it is the train log's estimate. */
  wallSeconds: { train?: number; trainEstimated?: boolean; eval: number };
}

export interface CellOutcome {
  cell: CellSpec;
  published?: PublishedValue;
  seeds: (SeedOutcome & { accuracy: MeanCI })[];
  /** Mean over seeds of the per-seed mean accuracy, with the seeds' standard deviation (n−1). */
  overSeeds?: { mean: number; sd: number; n: number };
  /** Pooled over seeds: per-episode accuracy averaged over seeds, CI over episodes. */
  pooled?: MeanCI;
  /** Missing runs and why (data not available, not run yet). */
  missing: string[];
  verdict: string;
}

export interface ComparisonOutcome {
  id: string;
  label: string;
  a: string;
  b: string;
  /** Published a − b in points, when both cells have a published value under this budget. */
  publishedDifference?: number;
  perSeed: { seed: number; difference: MeanCI }[];
  pooled?: MeanCI;
  seedSd?: number;
  verdict: string;
}

export interface TableOutcome {
  table: TableSpec;
  budget: string;
  cells: CellOutcome[];
  comparisons: ComparisonOutcome[];
}

function sd(values: number[]): number {
  if (values.length < 2) return 0;
  const m = values.reduce((s, v) => s + v, 0) / values.length;
  return Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (values.length - 1));
}

function averageOverSeeds(arrays: Float64Array[]): Float64Array {
  const n = arrays[0].length;
  const out = new Float64Array(n);
  for (const a of arrays) {
    if (a.length !== n) throw new Error('seeds were scored on different numbers of episodes');
    for (let i = 0; i < n; i++) out[i] += a[i] / arrays.length;
  }
  return out;
}

/** Verdict of a cell: against the published CI only when the budget is the published protocol. */
function cellVerdict(pooled: MeanCI | undefined, published: PublishedValue | undefined, protocol: 'published' | 'reduced'): string {
  if (!pooled) return 'not run';
  if (!published) return 'no published value';
  if (protocol === 'reduced') return 'reduced budget: not comparable with the published number';
  const ours = pooled.mean * 100;
  const gap = ours - published.mean;
  if (published.ci95 === undefined) return `published gives no CI; ours ${gap >= 0 ? '+' : ''}${gap.toFixed(2)} points`;
  return Math.abs(gap) <= published.ci95 ? 'within the published CI' : `outside the published CI (${gap >= 0 ? '+' : ''}${gap.toFixed(2)} points)`;
}

/** Verdict of a paired difference: its direction against the paper's, and whether the CI excludes zero. */
function comparisonVerdict(pooled: MeanCI | undefined, publishedDifference: number | undefined): string {
  if (!pooled) return 'not run';
  const lo = pooled.mean - pooled.ci95;
  const hi = pooled.mean + pooled.ci95;
  const sign = lo > 0 ? 1 : hi < 0 ? -1 : 0;
  const ours = sign > 0 ? 'A better' : sign < 0 ? 'B better' : 'no significant difference (CI covers 0)';
  if (publishedDifference === undefined) return `${ours}; no published difference`;
  if (sign === 0) return `${ours}; paper: ${publishedDifference >= 0 ? '+' : ''}${publishedDifference.toFixed(2)}`;
  const paperSign = Math.sign(publishedDifference);
  return paperSign === 0 ? `${ours}; paper: no difference` : sign === paperSign ? 'same direction as the paper' : 'opposite direction to the paper';
}

/** What a table cell's runs gave: finished seeds, and why the others are missing (`running`: how many are still training). */
export interface CellRuns {
  seeds: SeedOutcome[];
  missing: string[];
  running?: number;
}

export function summarizeTable(table: TableSpec, budget: string, outcomes: Map<string, CellRuns>): TableOutcome {
  const protocol = table.budgets[budget].protocol;
  const cells: CellOutcome[] = table.cells.map((cell) => {
    const got = outcomes.get(cell.id) ?? { seeds: [], missing: ['not run'] };
    const seeds = got.seeds.map((s) => ({ ...s, accuracy: meanCI(s.perEpisode) })).sort((x, y) => x.seed - y.seed);
    const published = publishedFor(cell, budget);
    const pooled = seeds.length ? meanCI(averageOverSeeds(seeds.map((s) => s.perEpisode))) : undefined;
    const means = seeds.map((s) => s.accuracy.mean);
    return {
      cell,
      published,
      seeds,
      overSeeds: seeds.length ? { mean: means.reduce((a, b) => a + b, 0) / means.length, sd: sd(means), n: means.length } : undefined,
      pooled,
      missing: got.missing,
      verdict: !pooled && got.running ? 'in progress' : cellVerdict(pooled, published, protocol),
    };
  });
  const byId = new Map(cells.map((c) => [c.cell.id, c]));
  const comparisons: ComparisonOutcome[] = table.comparisons.map((cmp) => {
    const a = byId.get(cmp.a)!;
    const b = byId.get(cmp.b)!;
    const common = a.seeds.filter((s) => b.seeds.some((t) => t.seed === s.seed));
    const perSeed = common.map((sa) => {
      const sb = b.seeds.find((t) => t.seed === sa.seed)!;
      if (sa.episodesSha256 !== sb.episodesSha256)
        throw new Error(`comparison ${cmp.id}: seed ${sa.seed} of ${cmp.a} and ${cmp.b} were scored on different episode files`);
      return { seed: sa.seed, difference: pairedDifference(sa.perEpisode, sb.perEpisode), a: sa.perEpisode, b: sb.perEpisode };
    });
    const pooled = perSeed.length ? pairedDifference(averageOverSeeds(perSeed.map((p) => p.a)), averageOverSeeds(perSeed.map((p) => p.b))) : undefined;
    const pa = a.published;
    const pb = b.published;
    const publishedDifference = pa && pb ? pa.mean - pb.mean : undefined;
    return {
      id: cmp.id,
      label: cmp.label ?? `${a.cell.row} − ${b.cell.row} (${a.cell.column})`,
      a: cmp.a,
      b: cmp.b,
      publishedDifference,
      perSeed: perSeed.map(({ seed, difference }) => ({ seed, difference })),
      pooled,
      seedSd: perSeed.length ? sd(perSeed.map((p) => p.difference.mean)) : undefined,
      verdict: comparisonVerdict(pooled, publishedDifference),
    };
  });
  return { table, budget, cells, comparisons };
}
