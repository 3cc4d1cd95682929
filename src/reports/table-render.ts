import { stringify } from 'csv-stringify/sync';
import type { MeanCI } from '../eval/stats.ts';
import type { CellOutcome, ComparisonOutcome, TableOutcome } from './table-summary.ts';

/** Markdown and CSV views of a filled table. Accuracies are printed in percent, differences in points. */
const pct = (x: number, d = 2) => (x * 100).toFixed(d);
const ci = (m: MeanCI | undefined) => (m ? `${pct(m.mean)} ± ${pct(m.ci95)}` : '—');
const signed = (m: MeanCI | undefined) => (m ? `${m.mean >= 0 ? '+' : ''}${pct(m.mean)} ± ${pct(m.ci95)}` : '—');
const published = (c: CellOutcome) =>
  c.published ? `${c.published.mean.toFixed(2)}${c.published.ci95 !== undefined ? ` ± ${c.published.ci95.toFixed(2)}` : ''}` : '—';
const seconds = (s: number) => `${Math.round(s).toLocaleString('en-US')} s${s >= 3600 ? ` (${(s / 3600).toFixed(1)} h)` : ''}`;
const estimated = (c: CellOutcome) => c.seeds.some((x) => x.wallSeconds.trainEstimated);
const wall = (c: CellOutcome) => {
  if (!c.seeds.length) return '—';
  const train = c.seeds.reduce((s, x) => s + (x.wallSeconds.train ?? 0), 0) / c.seeds.length;
  const ev = c.seeds.reduce((s, x) => s + x.wallSeconds.eval, 0) / c.seeds.length;
  return `${estimated(c) ? '≈' : ''}${seconds(train)} / ${seconds(ev)}`;
};
const overSeeds = (c: CellOutcome) => {
  if (!c.overSeeds) return '—';
  return c.overSeeds.n === 1 ? `${pct(c.overSeeds.mean)} (1 seed, no spread)` : `${pct(c.overSeeds.mean)} ± ${pct(c.overSeeds.sd)} (${c.overSeeds.n} seeds)`;
};
const episodes = (c: CellOutcome) => (c.seeds.length ? String(c.seeds[0].perEpisode.length) : '—');

function escape(s: string): string {
  return s.replace(/\|/g, '\\|');
}

export function tableMarkdown(o: TableOutcome): string {
  const budget = o.table.budgets[o.budget];
  const lines: string[] = [];
  lines.push(`# ${o.table.title}`, '');
  lines.push(`Source: ${o.table.source}.`, '');
  if (o.table.about) lines.push(o.table.about, '');
  lines.push(
    `**Budget \`${o.budget}\`** (${budget.protocol === 'published' ? 'the published protocol' : 'a reduced budget, not the published protocol'}): ${budget.label}`,
    '',
  );
  lines.push('Accuracy in %, mean ± 95% CI over the test episodes (1.96·s/√n). "Over seeds": mean of the per-seed means ± their standard deviation.', '');
  lines.push('| cell | dataset | published | ours, per seed | ours, over seeds | pooled | episodes | train / eval wall (per seed) | verdict |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const c of o.cells) {
    const perSeed = c.seeds.length ? c.seeds.map((s) => `s${s.seed}: ${ci(s.accuracy)}`).join('<br>') : c.missing.map(escape).join('<br>') || '—';
    const over = overSeeds(c);
    lines.push(
      `| ${escape(c.cell.row)} [${c.cell.mode}] — ${escape(c.cell.column)} | ${c.cell.dataset} | ${published(c)} | ${perSeed} | ${over} | ${ci(c.pooled)} | ${episodes(c)} | ${wall(c)} | ${escape(c.verdict)} |`,
    );
  }
  lines.push('');
  if (o.cells.some(estimated)) {
    lines.push(
      "≈: the run was stopped and resumed before its checkpoints recorded their running wall time, so its training time is estimated from the train log (stops replaced by the run's median pace; each sitting's start-up is left out).",
      '',
    );
  }
  if (o.comparisons.length) {
    lines.push(
      'Paired differences A − B in points over the identical test episodes; "pooled" averages the per-episode differences over seeds (CI over episodes), "seed sd" is the spread of the per-seed differences.',
      '',
    );
    lines.push('| comparison | published A − B | per seed | pooled | seed sd | verdict |');
    lines.push('|---|---|---|---|---|---|');
    for (const c of o.comparisons) {
      const per = c.perSeed.length ? c.perSeed.map((p) => `s${p.seed}: ${signed(p.difference)}`).join('<br>') : '—';
      const pub = c.publishedDifference !== undefined ? `${c.publishedDifference >= 0 ? '+' : ''}${c.publishedDifference.toFixed(2)}` : '—';
      lines.push(`| ${escape(c.label)} | ${pub} | ${per} | ${signed(c.pooled)} | ${c.seedSd !== undefined ? pct(c.seedSd) : '—'} | ${escape(c.verdict)} |`);
    }
    lines.push('');
  }
  const sources = o.cells.filter((c) => c.published).map((c) => `- ${c.cell.id}: ${c.published!.source}`);
  if (sources.length) lines.push('Published values:', '', ...sources, '');
  return lines.join('\n');
}

type CsvRow = Record<string, string | number>;

export function cellsCsv(o: TableOutcome): string {
  const rows = o.cells.flatMap((c): CsvRow[] => {
    const base = {
      table: o.table.id,
      budget: o.budget,
      protocol: o.table.budgets[o.budget].protocol,
      cell: c.cell.id,
      row: c.cell.row,
      column: c.cell.column,
      dataset: c.cell.dataset,
      method: c.cell.method,
      mode: c.cell.mode,
      published_mean: c.published?.mean ?? '',
      published_ci95: c.published?.ci95 ?? '',
      published_source: c.published?.source ?? '',
    };
    const pooled = {
      pooled_mean: c.pooled ? pct(c.pooled.mean, 4) : '',
      pooled_ci95: c.pooled ? pct(c.pooled.ci95, 4) : '',
      seeds_mean: c.overSeeds ? pct(c.overSeeds.mean, 4) : '',
      seeds_sd: c.overSeeds && c.overSeeds.n > 1 ? pct(c.overSeeds.sd, 4) : '',
      verdict: c.verdict,
    };
    if (!c.seeds.length)
      return [{ ...base, seed: '', mean: '', ci95: '', episodes: '', train_s: '', train_s_estimated: '', eval_s: '', result: '', ...pooled }];
    return c.seeds.map((s) => ({
      ...base,
      seed: s.seed,
      mean: pct(s.accuracy.mean, 4),
      ci95: pct(s.accuracy.ci95, 4),
      episodes: s.accuracy.n,
      train_s: s.wallSeconds.train?.toFixed(1) ?? '',
      train_s_estimated: s.wallSeconds.trainEstimated ? 'true' : '',
      eval_s: s.wallSeconds.eval.toFixed(1),
      result: s.result,
      ...pooled,
    }));
  });
  return stringify(rows, { header: true });
}

export function comparisonsCsv(o: TableOutcome): string {
  const rows = o.comparisons.flatMap((c: ComparisonOutcome): CsvRow[] => {
    const base = { table: o.table.id, budget: o.budget, comparison: c.id, a: c.a, b: c.b, published_difference: c.publishedDifference ?? '' };
    const pooled = {
      pooled_mean: c.pooled ? pct(c.pooled.mean, 4) : '',
      pooled_ci95: c.pooled ? pct(c.pooled.ci95, 4) : '',
      seed_sd: c.seedSd !== undefined ? pct(c.seedSd, 4) : '',
      verdict: c.verdict,
    };
    if (!c.perSeed.length) return [{ ...base, seed: '', difference: '', ci95: '', episodes: '', ...pooled }];
    return c.perSeed.map((p) => ({
      ...base,
      seed: p.seed,
      difference: pct(p.difference.mean, 4),
      ci95: pct(p.difference.ci95, 4),
      episodes: p.difference.n,
      ...pooled,
    }));
  });
  return stringify(rows, { header: true });
}
