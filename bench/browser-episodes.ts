/**
 * The committed episodes in the browser page against `fewshot eval` (issue 29): exports a checkpoint, runs
 * `fewshot eval --backend wasm` on the first N episodes of an episode file, then the page's own episode
 * evaluation in headless Chromium (wasm) on the same episodes with the images given through the page's file
 * input, and compares the per-episode accuracies and the mean ± CI. Too slow for CI at 84 px (it needs the whole
 * prepared cache for `fewshot eval`); test/browser.slow.test.ts does the same comparison on a small fixture.
 *
 *   npx tsx --conditions=fewshot-source bench/browser-episodes.ts runs/cells/protonet_5w1s_cpu-84px_5710ca40/seed0/best \
 *     --data <mini-imagenet folder> --cache <its 84 px cache> [--episodes 100] [--test-file episodes/mini-imagenet/test_5w1s15q_seed0_2000.json]
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import * as tar from 'tar';
import { readSplitCsv } from '../src/data/csv.ts';
import { readEpisodeFile } from '../src/episodes/index.ts';
import { exportCheckpoint } from '../src/experiment/export.ts';
import { servePage } from '../src/experiment/serve.ts';
import '../src/builtin.ts';
// @ts-expect-error -- a plain .mjs build script without declarations
import { buildWebPage } from '../scripts/build-web.mjs';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    data: { type: 'string' },
    cache: { type: 'string' },
    episodes: { type: 'string', default: '100' },
    'test-file': { type: 'string', default: 'episodes/mini-imagenet/test_5w1s15q_seed0_2000.json' },
  },
});
const [checkpoint] = positionals;
if (!checkpoint || !values.data || !values.cache)
  throw new Error('usage: bench/browser-episodes.ts <checkpoint> --data <mini-imagenet folder> --cache <84 px cache> [--episodes N] [--test-file F]');
const n = Number(values.episodes);
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'fewshot-browser-episodes-'));
try {
  const exported = await exportCheckpoint({ checkpoint, out: path.join(tmp, 'export') });
  const results = path.join(tmp, 'results');
  let t = performance.now();
  const evalRun = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(repo, 'src', 'cli', 'main.ts'),
      'eval',
      checkpoint,
      '--test-file',
      values['test-file']!,
      '--test-episodes',
      String(n),
      '--data',
      values.data,
      '--cache',
      values.cache,
      '--backend',
      'wasm',
      '--results',
      results,
      '--name',
      'page-bench',
    ],
    { encoding: 'utf8', cwd: repo },
  );
  if (evalRun.status !== 0) throw new Error(`fewshot eval failed: ${evalRun.stderr}`);
  const nodeSeconds = (performance.now() - t) / 1000;
  const resultDir = path.join(results, 'mini-imagenet', 'page-bench');
  const record = JSON.parse(await fs.readFile(path.join(resultDir, 'result.json'), 'utf8')) as {
    summary: Record<string, { mean: number; ci95: number; text: string }>;
    inferenceModes: string[];
    backend?: unknown;
  };
  const rows = (await fs.readFile(path.join(resultDir, 'per-episode.csv'), 'utf8')).trim().split('\n');
  const header = rows[0].split(',');
  const node = Object.fromEntries(record.inferenceModes.map((m) => [m, rows.slice(1).map((r) => Number(r.split(',')[header.indexOf(m)]))]));

  // The images of the first n episodes, from the split's archive, as a user would have them.
  const set = await readEpisodeFile(values['test-file']!);
  const csv = await readSplitCsv(path.join(values.data, `${set.header.split}.csv`), set.header.split as 'test');
  const wanted = new Set(
    set.episodes
      .slice(0, n)
      .flatMap((e) => [...e.support, ...e.query])
      .map((item) => csv.filenames[item]),
  );
  const images = path.join(tmp, 'images');
  await fs.mkdir(images);
  await tar.x({ file: path.join(values.data, `images-${set.header.split}.tar.gz`), cwd: images, strip: 1, filter: (p) => wanted.has(path.posix.basename(p)) });
  const files = (await fs.readdir(images)).map((f) => path.join(images, f));
  if (files.length !== wanted.size) throw new Error(`found ${files.length} of ${wanted.size} images`);

  const page = await buildWebPage(path.join(tmp, 'web'));
  const served = await servePage({ model: exported.out, pageDir: page.outDir, port: 0 });
  const browser = await chromium.launch({ executablePath: process.env.FEWSHOT_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const tab = await browser.newPage();
    await tab.goto(`${served.url}?backend=wasm`);
    await tab.waitForSelector('body[data-state=ready]', { timeout: 120_000 });
    await tab.evaluate(() => ((document.getElementById('evaluation') as HTMLDetailsElement).open = true));
    await tab.setInputFiles('#eval-episodes', path.resolve(values['test-file']!));
    await tab.setInputFiles('#eval-csv', path.join(values.data, `${set.header.split}.csv`));
    await tab.setInputFiles('#eval-images', files);
    await tab.fill('#eval-count', String(n));
    t = performance.now();
    await tab.click('#evaluate');
    await tab.waitForFunction(() => document.body.dataset.state === 'done' || document.body.dataset.state === 'error', undefined, {
      timeout: 3_600_000,
      polling: 1000,
    });
    const pageSeconds = (performance.now() - t) / 1000;
    const errors = await tab.$$eval('#messages li.error', (els) => els.map((e) => e.textContent));
    if (errors.length) throw new Error(`the page said: ${errors.join(' | ')}`);
    const got = await tab.$$eval('.eval-mode', (els) =>
      els.map((e) => ({
        mode: (e as HTMLElement).dataset.mode!,
        per: JSON.parse((e as HTMLElement).dataset.perEpisode!) as number[],
        text: e.textContent ?? '',
      })),
    );
    console.log(`${n} episodes of ${values['test-file']}, ${files.length} images; checkpoint ${checkpoint}`);
    console.log(`fewshot eval (wasm, Node): ${nodeSeconds.toFixed(1)} s wall incl. start and cache load`);
    console.log(`page (wasm, headless Chromium): ${pageSeconds.toFixed(1)} s (${await tab.textContent('#eval-progress')})`);
    for (const g of got) {
      const same = g.per.filter((v, i) => v === node[g.mode][i]).length;
      console.log(
        `${g.mode}: page ${g.text} | fewshot eval ${record.summary[g.mode].text} % | per-episode accuracies identical in ${same} of ${g.per.length} episodes`,
      );
    }
  } finally {
    await browser.close();
    await served.close();
  }
} finally {
  await fs.rm(tmp, { recursive: true, force: true });
}
