import test from 'ava';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { listTables, parseTableSpec, readTableSpec, type TableSpec } from '../src/reports/table-spec.ts';
import { planTable, canonicalJson, deepMerge } from '../src/experiment/reproduce/plan.ts';
import { summarizeTable, type SeedOutcome } from '../src/reports/table-summary.ts';
import { cellsCsv, comparisonsCsv, tableMarkdown } from '../src/reports/table-render.ts';
import { forestPlotSpec, accuracyByShotSpec, renderSvg, curvePointsFromLog, trainingCurvesSpec } from '../src/reports/figures.ts';
import { validateConfig } from '../src/experiment/index.ts';
import { mulberry32 } from '../src/util/prng.ts';
import { UserError } from '../src/util/errors.ts';
import { REPO_ROOT } from './fixtures/mini-imagenet.ts';
import { wallFromTrainLog } from '../src/train/train-log.ts';
import sharp from 'sharp';

const TABLES = path.join(REPO_ROOT, 'experiments', 'tables');

test('every committed table validates, and every cell config of every budget is a valid experiment config', async (t) => {
  const names = await listTables(TABLES);
  t.true(names.includes('sla-fewshot') && names.includes('metaoptnet-table3') && names.includes('sla-ablation') && names.includes('protonet-paper'));
  for (const name of names) {
    const { table } = await readTableSpec(name, TABLES);
    for (const budget of Object.keys(table.budgets)) {
      const plan = planTable(table, budget);
      t.true(plan.runs.length > 0, `${name}/${budget} plans runs`);
      for (const run of plan.runs) t.notThrows(() => validateConfig(run.config), `${name}/${budget}/${run.key}`);
    }
  }
});

test('the published numbers in the tables are the ones of the papers (spot checks)', async (t) => {
  const { table: t3 } = await readTableSpec('metaoptnet-table3', TABLES);
  const pub = (tab: TableSpec, id: string) => tab.cells.find((c) => c.id === id)!.published[0];
  t.deepEqual([pub(t3, 'mini-1s-protonet').mean, pub(t3, 'mini-1s-protonet').ci95], [53.47, 0.63]);
  t.deepEqual([pub(t3, 'mini-5s-svm').mean, pub(t3, 'mini-5s-svm').ci95], [68.76, 0.48]);
  const { table: pn } = await readTableSpec('protonet-paper', TABLES);
  t.deepEqual(
    pn.cells.map((c) => c.published.map((p) => p.mean)),
    [
      [49.42, 44.42],
      [68.2, 64.24],
    ],
  );
});

test("experiments/protonet-chen-84px-5w1s.json is the protonet-paper table's cpu-84px 1-shot run", async (t) => {
  const { table } = await readTableSpec('protonet-paper', TABLES);
  const [run] = planTable(table, 'cpu-84px', { only: ['mini-1s-protonet'] }).runs;
  const file = JSON.parse(await fs.readFile(path.join(REPO_ROOT, 'experiments', 'protonet-chen-84px-5w1s.json'), 'utf8')) as Record<string, unknown>;
  delete file['//']; // the comment key, which the CLI's config reader drops
  t.deepEqual(validateConfig(file), validateConfig(run.config));
});

test('SLA+AG and SLA+SI cells share one run per seed; the plan has seeds × distinct configs runs', async (t) => {
  const { table } = await readTableSpec('sla-fewshot', TABLES);
  const plan = planTable(table, 'cpu', { only: ['mini-1s-protonet', 'mini-1s-protonet-sla-ag', 'mini-1s-protonet-sla-si'] });
  t.is(plan.runs.length, 2 * 3);
  const ag = plan.cellRuns.get('mini-1s-protonet-sla-ag')!;
  const si = plan.cellRuns.get('mini-1s-protonet-sla-si')!;
  t.deepEqual(
    ag.map((r) => r.key),
    si.map((r) => r.key),
  );
  t.deepEqual(
    ag.map((r) => r.seed),
    [0, 1, 2],
  );
  t.deepEqual(ag[0].cells, ['mini-1s-protonet-sla-ag', 'mini-1s-protonet-sla-si']);
  // the CPU budget's base plus the cell: 32 px Conv-4, train spec defaulting to the test spec with 6 queries
  const c = validateConfig(ag[1].config);
  t.like(c, {
    method: 'protonet-sla',
    backbone: 'conv4',
    imageSize: 32,
    episodes: 2000,
    seed: 1,
    train: { way: 5, shot: 1, query: 6 },
    test: { way: 5, shot: 1, query: 15 },
  });
  // the key is the same whatever order the fields are listed in
  t.is(canonicalJson({ b: 1, a: { d: 2, c: 3 } }), canonicalJson({ a: { c: 3, d: 2 }, b: 1 }));
  t.deepEqual(deepMerge({ a: { x: 1, y: 2 }, l: [1] }, { a: { y: 3 }, l: [2] }), { a: { x: 1, y: 3 }, l: [2] });
});

test('bad tables and requests are UserErrors naming the problem', async (t) => {
  const { table } = await readTableSpec('sla-fewshot', TABLES);
  t.throws(() => planTable(table, 'gpu'), { instanceOf: UserError, message: /no budget "gpu"/ });
  t.throws(() => planTable(table, 'cpu', { only: ['nope'] }), { instanceOf: UserError, message: /no cell "nope"/ });
  await t.throwsAsync(readTableSpec('no-such-table', TABLES), { instanceOf: UserError, message: /unknown table/ });
  const bad = structuredClone(table) as TableSpec;
  bad.comparisons.push({ id: 'x', a: 'mini-1s-protonet', b: 'mini-5s-protonet' });
  t.throws(() => parseTableSpec(bad, 'bad.json'), { instanceOf: UserError, message: /different datasets or test episodes/ });
  const dup = structuredClone(table) as TableSpec;
  dup.cells.push(dup.cells[0]);
  t.throws(() => parseTableSpec(dup, 'dup.json'), { instanceOf: UserError, message: /appears twice/ });
});

/** Per-episode accuracies of a fake run: values in {0, 1/15, ..., 1}, as a 5-way 15-query episode gives. */
function fakeEpisodes(seed: number, n: number, p: number): Float64Array {
  const r = mulberry32(seed);
  return Float64Array.from({ length: n }, () => {
    let k = 0;
    for (let q = 0; q < 15; q++) if (r() < p) k++;
    return k / 15;
  });
}

/** A toy table `toy` over dataset `d` with `budgets`, `cells` and `comparisons` (none unless given), parsed. */
function toyTable(budgets: Record<string, unknown>, cells: Record<string, unknown>[], comparisons: Record<string, unknown>[] = []): TableSpec {
  return parseTableSpec({ format: 'fewshot-table/1', id: 'toy', title: 'toy', source: 'test', budgets, cells, comparisons }, 'toy');
}

/** A toy cell: 5-way `shot`-shot 15-query on dataset d, ProtoNet (plain) unless `fields` say otherwise. */
const toyCell = (id: string, row: string, shot: number, fields: Record<string, unknown> = {}) => ({
  id,
  row,
  column: `${shot}-shot`,
  dataset: 'd',
  method: 'protonet',
  mode: 'plain',
  test: { way: 5, shot, query: 15 },
  published: [],
  ...fields,
});

test('summary: per-seed and pooled paired differences equal a hand computation; verdicts honest about the budget', (t) => {
  const table = toyTable(
    {
      cpu: { label: 'reduced', protocol: 'reduced', seeds: 2, base: {} },
      paper: { label: 'published', protocol: 'published', seeds: 2, base: {} },
    },
    [
      toyCell('base', 'B', 1, { published: [{ mean: 50, ci95: 1, source: 'x' }] }),
      toyCell('sla', 'A', 1, { method: 'protonet-sla', mode: 'ag', published: [{ mean: 53, source: 'y' }] }),
    ],
    [{ id: 'a-b', a: 'sla', b: 'base' }],
  );
  const n = 400;
  const runs = (p: number, off: number): SeedOutcome[] =>
    [0, 1].map((s) => ({ seed: s, result: `r${off}${s}`, perEpisode: fakeEpisodes(off + s, n, p), episodesSha256: 'e', wallSeconds: { train: 10, eval: 2 } }));
  const outcomes = new Map<string, { seeds: SeedOutcome[]; missing: string[] }>([
    ['base', { seeds: runs(0.5, 10), missing: [] }],
    ['sla', { seeds: runs(0.56, 20), missing: [] }],
  ]);
  for (const budget of ['cpu', 'paper']) {
    const o = summarizeTable(table, budget, outcomes);
    const a = outcomes.get('sla')!.seeds;
    const b = outcomes.get('base')!.seeds;
    // hand computation: pooled = mean over episodes of the seed-averaged differences, CI 1.96·s/√n with n−1
    const d = Array.from({ length: n }, (_, i) => (a[0].perEpisode[i] + a[1].perEpisode[i]) / 2 - (b[0].perEpisode[i] + b[1].perEpisode[i]) / 2);
    const mean = d.reduce((x, y) => x + y, 0) / n;
    const s = Math.sqrt(d.reduce((x, y) => x + (y - mean) ** 2, 0) / (n - 1));
    const cmp = o.comparisons[0];
    t.true(Math.abs(cmp.pooled!.mean - mean) < 1e-12);
    t.true(Math.abs(cmp.pooled!.ci95 - (1.96 * s) / Math.sqrt(n)) < 1e-12);
    const d0 = Array.from({ length: n }, (_, i) => a[0].perEpisode[i] - b[0].perEpisode[i]);
    t.true(Math.abs(cmp.perSeed[0].difference.mean - d0.reduce((x, y) => x + y, 0) / n) < 1e-12);
    t.is(cmp.publishedDifference, 3);
    t.is(cmp.verdict, 'same direction as the paper');
    const base = o.cells.find((c) => c.cell.id === 'base')!;
    t.is(base.overSeeds!.n, 2);
    if (budget === 'cpu') t.regex(base.verdict, /not comparable/);
    else t.regex(base.verdict, /published CI/);
    const md = tableMarkdown(o);
    t.regex(md, /\| comparison \| published A − B/);
    t.regex(md, new RegExp(`budget \`${budget}\``, 'i'));
    const rows = parse(cellsCsv(o), { columns: true }) as Record<string, string>[];
    t.is(rows.length, 4); // 2 cells × 2 seeds
    t.deepEqual([...new Set(rows.map((r) => r.cell))], ['base', 'sla']);
    const cmpRows = parse(comparisonsCsv(o), { columns: true }) as Record<string, string>[];
    t.is(cmpRows.length, 2);
    t.is(Number(cmpRows[0].pooled_mean), Number((mean * 100).toFixed(4)));
  }
  // opposite direction is said so
  const flipped = new Map([
    ['base', outcomes.get('sla')!],
    ['sla', outcomes.get('base')!],
  ]);
  t.is(summarizeTable(table, 'cpu', flipped).comparisons[0].verdict, 'opposite direction to the paper');
  // a cell without runs says "not run" and the table still renders
  const partial = summarizeTable(
    table,
    'cpu',
    new Map<string, { seeds: SeedOutcome[]; missing: string[] }>([
      ['base', outcomes.get('base')!],
      ['sla', { seeds: [], missing: ['seed 0: data for dataset d is missing'] }],
    ]),
  );
  t.is(partial.comparisons[0].verdict, 'not run');
  t.regex(tableMarkdown(partial), /data for dataset d is missing/);
});

test('figures render to SVG through Vega-Lite (forest plot, accuracy by shot, training curves)', async (t) => {
  const table = toyTable(
    { cpu: { label: 'r', protocol: 'reduced', seeds: 1, base: {} } },
    [1, 5].flatMap((shot) => [toyCell(`b${shot}`, 'B', shot), toyCell(`a${shot}`, 'A', shot, { method: 'protonet-sla', mode: 'ag' })]),
    [1, 5].map((shot) => ({ id: `c${shot}`, a: `a${shot}`, b: `b${shot}` })),
  );
  const one = (seed: number, p: number): { seeds: SeedOutcome[]; missing: string[] } => ({
    seeds: [{ seed: 0, result: 'r', perEpisode: fakeEpisodes(seed, 100, p), episodesSha256: 'e', wallSeconds: { eval: 1 } }],
    missing: [],
  });
  const o = summarizeTable(
    table,
    'cpu',
    new Map([
      ['b1', one(1, 0.4)],
      ['a1', one(2, 0.45)],
      ['b5', one(3, 0.6)],
      ['a5', one(4, 0.62)],
    ]),
  );
  for (const spec of [forestPlotSpec(o), accuracyByShotSpec(o)]) {
    const svg = await renderSvg(spec!);
    t.true(svg.startsWith('<svg'));
    t.regex(svg, /A − B|accuracy/);
  }
  const log = [
    JSON.stringify({ event: 'train', episode: 100, loss: 1.5 }),
    JSON.stringify({ event: 'validation', episode: 100, accuracy: { mean: 0.31 } }),
    '{"event":"train","episode":200,"loss":1.4}',
    '{"torn',
  ].join('\n');
  const points = curvePointsFromLog('protonet 5w1s', 0, log);
  t.deepEqual(
    points.map((p) => [p.episode, p.kind, p.value]),
    [
      [100, 'training loss', 1.5],
      [100, 'validation accuracy (%)', 31],
      [200, 'training loss', 1.4],
    ],
  );
  t.true((await renderSvg(trainingCurvesSpec('curves', points)!)).includes('training episode'));
  // A published target drawn across the validation panel (budgets that run the published protocol).
  t.regex(
    await renderSvg(trainingCurvesSpec('curves', points, [{ cell: 'protonet 5w1s', value: 44.42, label: 'published 44.42 (test)' }])!),
    /published 44\.42 \(test\)/,
  );
  t.is(forestPlotSpec(summarizeTable(table, 'cpu', new Map())), undefined);
});

/** The text of every <text> element of an SVG (entities decoded). */
const svgTexts = (svg: string) =>
  [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) =>
    m[1]
      .replace(/&amp;/g, '&')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"'),
  );

test('figures are readable: no label is cut short, every row and comparison is named whole, the seed legend shows three dash patterns, type is 12 px or more, and each renders to PNG', async (t) => {
  // The committed SLA table (its real, long row and comparison labels), its mini-ImageNet cells filled with 3 seeds.
  const { table } = await readTableSpec('sla-fewshot', TABLES);
  const mini = table.cells.filter((c) => c.dataset === 'mini-imagenet');
  const outcomes = new Map(
    mini.map((c, i) => [
      c.id,
      {
        seeds: [0, 1, 2].map(
          (seed): SeedOutcome => ({
            seed,
            result: `r${i}${seed}`,
            perEpisode: fakeEpisodes(100 * i + seed, 200, 0.3 + 0.02 * i),
            episodesSha256: 'e',
            wallSeconds: { eval: 1 },
          }),
        ),
        missing: [],
      },
    ]),
  );
  const o = summarizeTable(table, 'cpu', outcomes);
  const curves = mini.slice(0, 4).flatMap((c, i) =>
    [0, 1, 2].flatMap((seed) => [
      { cell: `${c.method} ${c.test.way}w${c.test.shot}s`, seed, episode: 500, kind: 'training loss' as const, value: 2 - 0.1 * i },
      { cell: `${c.method} ${c.test.way}w${c.test.shot}s`, seed, episode: 1000, kind: 'training loss' as const, value: 1.5 - 0.1 * i },
      { cell: `${c.method} ${c.test.way}w${c.test.shot}s`, seed, episode: 1000, kind: 'validation accuracy (%)' as const, value: 30 + i + seed },
    ]),
  );
  const figures = {
    forest: await renderSvg(forestPlotSpec(o)!),
    accuracy: await renderSvg(accuracyByShotSpec(o)!),
    curves: await renderSvg(trainingCurvesSpec('curves', curves, [{ cell: curves[0].cell, value: 44.42, label: 'published 44.42 (test)' }])!),
  };
  for (const [name, svg] of Object.entries(figures)) {
    t.false(
      svg.includes('…'),
      `${name}: a label was truncated: ${svgTexts(svg)
        .filter((x) => x.includes('…'))
        .join(' | ')}`,
    );
    const sizes = [...svg.matchAll(/font-size="(\d+(?:\.\d+)?)px"/g)].map((m) => Number(m[1]));
    t.true(sizes.length > 0 && Math.min(...sizes) >= 12, `${name}: font sizes ${[...new Set(sizes)].join(', ')}`);
    // librsvg (through sharp) draws it: a valid SVG, rasterised at its own size.
    const width = Number(/<svg[^>]* width="(\d+(?:\.\d+)?)"/.exec(svg)![1]);
    t.is((await sharp(Buffer.from(svg)).png().metadata()).width, Math.ceil(width), name);
  }
  // The labels that tell the rows apart are there in full: 1-shot vs 5-shot comparisons, SLA+AG vs SLA+SI rows.
  const forestTexts = svgTexts(figures.forest);
  const compared = o.comparisons.filter((c) => c.pooled); // the mini-ImageNet ones (CIFAR-FS / FC100 cells are empty)
  t.is(compared.length, 8);
  for (const c of compared) t.true(forestTexts.includes(c.label), `forest plot lacks "${c.label}"`);
  t.true(compared.some((c) => c.label.includes('1-shot')) && compared.some((c) => c.label.includes('5-shot')));
  const accuracyTexts = svgTexts(figures.accuracy);
  for (const row of new Set(mini.map((c) => c.row))) t.true(accuracyTexts.includes(row), `accuracy figure lacks "${row}"`);
  t.true(accuracyTexts.includes('MetaOptNet-SVM + SLA+AG') && accuracyTexts.includes('MetaOptNet-SVM + SLA+SI'));
  // The seed legend: one symbol per seed, each a stroke with its own dash pattern (not three identical dots).
  const legend = /<g class="mark-group role-legend"[^>]*aria-label="[^"]*[Ss]eed[\s\S]*?<\/g><\/g><\/g>/.exec(figures.curves)?.[0] ?? '';
  const symbols = [...legend.matchAll(/role-legend-symbol[^>]*>(<path [^>]*\/>)/g)].map((m) => m[1]);
  t.true(
    symbols.every((p) => p.includes('stroke="#444"')),
    'each seed symbol is drawn as a visible stroke',
  );
  const dashes = symbols.map((p) => /stroke-dasharray="([^"]*)"/.exec(p)?.[1] ?? 'solid');
  t.is(dashes.length, 3, legend.slice(0, 400));
  t.is(new Set(dashes).size, 3, `seed legend dash patterns: ${dashes.join(' | ')}`);
});

test('one seed has no spread, and an estimated training wall time is marked ≈ with its explanation', (t) => {
  const table = toyTable({ cpu: { label: 'r', protocol: 'reduced', seeds: 1, base: {} } }, [toyCell('b', 'B', 1)]);
  const seed = (wallSeconds: SeedOutcome['wallSeconds']) =>
    new Map([['b', { seeds: [{ seed: 0, result: 'r', perEpisode: fakeEpisodes(1, 100, 0.5), episodesSha256: 'e', wallSeconds }], missing: [] }]]);
  const exact = summarizeTable(table, 'cpu', seed({ train: 7200.4, eval: 30 }));
  const md = tableMarkdown(exact);
  t.regex(md, /\(1 seed, no spread\)/);
  t.notRegex(md, /± 0\.00 \(1 seeds\)/);
  t.regex(md, /\| 7,200 s \(2\.0 h\) \/ 30 s \|/);
  t.notRegex(md, /≈/);
  const row = (parse(cellsCsv(exact), { columns: true }) as Record<string, string>[])[0];
  t.is(row.seeds_sd, '');
  t.is(row.train_s_estimated, '');
  const estimated = summarizeTable(table, 'cpu', seed({ train: 90, trainEstimated: true, eval: 3 }));
  t.regex(tableMarkdown(estimated), /\| ≈90 s \/ 3 s \|/);
  t.regex(tableMarkdown(estimated), /≈: the run was stopped and resumed/);
  t.is((parse(cellsCsv(estimated), { columns: true }) as Record<string, string>[])[0].train_s_estimated, 'true');
});

test('training wall time from a train log: stops are replaced by the median pace, validations and torn lines kept right', (t) => {
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();
  const lines = [
    { time: at(10), event: 'train', episode: 100 },
    { time: at(20), event: 'train', episode: 200 },
    { time: at(25), event: 'validation', episode: 200 },
    { time: at(35), event: 'train', episode: 300 },
    { time: at(35 + 36000), event: 'train', episode: 400 }, // stopped for ten hours, then resumed
    { time: at(36045), event: 'train', episode: 500 },
    { time: at(36055), event: 'train', episode: 600 },
  ].map((e) => JSON.stringify(e));
  // 0.1 s per episode: 10 s before the first entry, 10 + 5 + 10 logged, the stop counted as its 100 episodes' 10 s, 10 + 10.
  t.deepEqual(wallFromTrainLog([...lines, '{"time":"2026-01-01T11:00:00.000Z","ev'].join('\n')), { seconds: 65, stops: 1 });
  t.is(wallFromTrainLog(lines.slice(0, 2).join('\n')), undefined);
});

test('tables folder lists only json files', async (t) => {
  const dir = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'fewshot-tables-'));
  await fs.writeFile(path.join(dir, 'a.json'), '{}');
  await fs.writeFile(path.join(dir, 'README.md'), '');
  t.deepEqual(await listTables(dir), ['a']);
  await t.throwsAsync(readTableSpec('a', dir), { instanceOf: UserError, message: /invalid/ });
  await fs.rm(dir, { recursive: true });
});
