import test from 'ava';
import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import * as tar from 'tar';
import { chromium, type Browser, type Page } from 'playwright-core';
import { prepareCache } from '../src/experiment/index.ts';
import { makeEpisodes, writeEpisodeFile } from '../src/episodes/index.ts';
import { loadSplit, loadSplitFilenames } from '../src/data/index.ts';
import { buildFixture, REPO_ROOT, type Fixture } from './fixtures/mini-imagenet.ts';
import { runCli } from './fixtures/run-cli.ts';
import { trainTinyModel, writeSupportAndQuery } from './fixtures/tiny-model.ts';
// @ts-expect-error -- a plain .mjs build script without declarations
import { buildWebPage } from '../scripts/build-web.mjs';
import '../src/builtin.ts';

/**
 * The browser page in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
 * a tiny SLA checkpoint trained on real mini-ImageNet images is exported (`fewshot export`) and served
 * (`fewshot serve`); real held-out images go in through the page's own file inputs, and the page's
 * predictions equal `fewshot predict`'s (wasm in both, probabilities within 1e-4; WebGL through SwiftShader:
 * the same classes). The page's image preparation gives the cache's pixels; bad input gets a message.
 */
const CHROMIUM = process.env.FEWSHOT_CHROMIUM ?? '/usr/bin/chromium';

let fx: Fixture;
let checkpoint: string;
let exportDir: string;
let cache16: string;
let support: string;
let queryDir: string;
let server: ChildProcess;
let url: string;
let browser: Browser;
let pageBundleBytes: number;
let bundleInputs: string[];

async function startServer(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'main.ts'), 'serve', '--port', '0', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const found = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /http:\/\/\S+\//.exec(out);
      if (m) resolve(m[0]);
    });
    child.on('exit', (code) => reject(new Error(`fewshot serve exited ${code}: ${err}`)));
  });
  return { child, url: found };
}

test.before(async () => {
  fx = await buildFixture(8);
  ({ cache: cache16, checkpoint } = await trainTinyModel(fx));
  // Support: the 2 test classes × 3 images; query: 4 more of each.
  support = path.join(fx.root, 'support');
  queryDir = path.join(fx.root, 'query');
  await writeSupportAndQuery(fx, support, queryDir, 3, 4);
  exportDir = path.join(fx.root, 'export');
  const exported = await runCli(['export', checkpoint, '--out', exportDir]);
  if (exported.code !== 0) throw new Error(`fewshot export failed: ${exported.stderr}`);
  const built = await buildWebPage();
  pageBundleBytes = built.sizes['app.js'];
  bundleInputs = Object.keys(built.metafile.inputs);
  ({ child: server, url } = await startServer(['--model', exportDir]));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--enable-unsafe-swiftshader', '--use-angle=swiftshader'] });
});

test.after.always(async () => {
  await browser?.close();
  server?.kill('SIGINT');
  await fx?.cleanup();
});

interface PagePrediction {
  file: string;
  predicted: string;
  probabilities: number[];
}

async function openPage(query: string): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${url}?${query}`);
  await page.waitForSelector('body[data-state=ready]', { timeout: 120_000 });
  return page;
}

/** Name the page's columns as the support folders and add their images, then the query, through the page's inputs. */
async function fillPage(page: Page, classes: string[]): Promise<void> {
  while ((await page.$$('.class')).length < classes.length) await page.click('#add-class');
  for (let k = 0; k < classes.length; k++) {
    const column = page.locator('.class').nth(k);
    await column.locator('input.name').fill(classes[k]);
    await column.locator('input.name').dispatchEvent('change');
    const files = (await fs.readdir(path.join(support, classes[k]))).sort().map((f) => path.join(support, classes[k], f));
    await column.locator('input.class-files').setInputFiles(files);
  }
  await page.setInputFiles(
    '#query-files',
    (await fs.readdir(queryDir)).sort().map((f) => path.join(queryDir, f)),
  );
}

async function classify(page: Page): Promise<PagePrediction[]> {
  const before = await page.getAttribute('#results', 'data-run');
  await page.click('#classify');
  await page.waitForFunction(
    (prev) => document.body.dataset.state === 'error' || (document.body.dataset.state === 'done' && document.getElementById('results')!.dataset.run !== prev),
    before,
    { timeout: 120_000 },
  );
  const errors = await page.$$eval('#messages li.error', (els) => els.map((e) => e.textContent));
  if (errors.length) throw new Error(`the page said: ${errors.join(' | ')}`);
  return page.$$eval('.result', (els) =>
    els.map((e) => ({
      file: (e as HTMLElement).dataset.file!,
      predicted: (e as HTMLElement).dataset.predicted!,
      probabilities: JSON.parse((e as HTMLElement).dataset.probabilities!) as number[],
    })),
  );
}

test.serial('the page (wasm) predicts what `fewshot predict --backend wasm` does, in every mode; WebGL gives the same classes', async (t) => {
  const page = await openPage('backend=wasm');
  t.is(await page.getAttribute('#backend-info', 'data-backend'), 'wasm');
  t.true(await page.evaluate(() => crossOriginIsolated), 'served with COOP/COEP');
  t.is(await page.getAttribute('#model-info', 'data-loaded'), 'protonet-sla');
  const classes = (await fs.readdir(support)).sort();
  await fillPage(page, classes);
  for (const mode of ['ag', 'si']) {
    const cli = await runCli(['predict', checkpoint, '--support', support, '--query', queryDir, '--json', '--backend', 'wasm', '--mode', mode]);
    t.is(cli.code, 0, cli.stderr);
    const node = JSON.parse(cli.stdout) as { classes: string[]; predictions: { file: string; predicted: string; probabilities: Record<string, number> }[] };
    t.deepEqual(node.classes, classes);
    await page.selectOption('#mode-select', mode);
    const got = await classify(page);
    t.is(await page.getAttribute('#results', 'data-mode'), mode);
    t.is(got.length, node.predictions.length);
    let worst = 0;
    node.predictions.forEach((p, q) => {
      t.is(got[q].file, path.basename(p.file));
      t.is(got[q].predicted, p.predicted, `${mode}: ${got[q].file}`);
      classes.forEach((c, k) => (worst = Math.max(worst, Math.abs(got[q].probabilities[k] - p.probabilities[c]))));
    });
    t.log(`${mode}: ${got.length} queries, largest |page − predict| probability difference ${worst.toExponential(2)}`);
    t.true(worst <= 1e-4, `probabilities differ by ${worst}`);
    // The predictions are not all one class (the check above would then be weak).
    if (mode === 'ag') t.true(new Set(got.map((g) => g.predicted)).size > 1 || got.some((g) => Math.max(...g.probabilities) < 0.99));
  }
  const wasmAg = await (async () => {
    await page.selectOption('#mode-select', 'ag');
    return classify(page);
  })();
  await page.close();

  const gl = await openPage('backend=webgl');
  t.is(await gl.getAttribute('#backend-info', 'data-backend'), 'webgl', (await gl.textContent('#messages')) ?? '');
  t.log(`WebGL: ${await gl.textContent('#backend-info')}`);
  await fillPage(gl, classes);
  const viaGl = await classify(gl);
  t.deepEqual(
    viaGl.map((p) => p.predicted),
    wasmAg.map((p) => p.predicted),
  );
  const glWorst = Math.max(...viaGl.flatMap((p, q) => p.probabilities.map((v, k) => Math.abs(v - wasmAg[q].probabilities[k]))));
  t.log(`WebGL vs wasm: largest probability difference ${glWorst.toExponential(2)}`);
  await gl.close();
  t.log(`bundle app.js: ${(pageBundleBytes / 1024).toFixed(0)} KiB`);
  // The bundle holds the library core the page needs and nothing of the Node-only data path.
  t.true(
    bundleInputs.some((f) => f.endsWith('src/eval/classify.ts')) &&
      bundleInputs.some((f) => f.endsWith('src/methods/build.ts')) &&
      bundleInputs.some((f) => f.endsWith('src/data/pixels.ts')),
  );
  t.deepEqual(
    bundleInputs.filter((f) => /(^|\/)(sharp|node:)|src\/data\/(decode|prepare|cache)\.ts$|src\/experiment\//.test(f)),
    [],
  );
});

test.serial("the page's image preparation gives the cache's pixels (84 px: as decoded; 16 px: area-shrunk)", async (t) => {
  // The page's own module (src/browser/image.ts), bundled alone and run in the served page.
  const bundle = await esbuild.build({
    entryPoints: [path.join(REPO_ROOT, 'src', 'browser', 'image.ts')],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: 'pageImage',
    platform: 'browser',
  });
  const page = await openPage('backend=wasm');
  await page.addScriptTag({ content: bundle.outputFiles[0].text });
  const cache84 = path.join(fx.root, 'cache84');
  await prepareCache({ dataset: 'mini-imagenet', data: fx.folderDir, cache: cache84 }, 84);
  let worst = 0;
  let compared = 0;
  for (const [cacheDir, size] of [
    [cache84, 84],
    [cache16, 16],
  ] as const) {
    const split = await loadSplit(cacheDir, 'test');
    const names = await loadSplitFilenames(cacheDir, 'test');
    const per = size * size * 3;
    for (let i = 0; i < names.length; i++) {
      const bytes = fx.images.get(names[i])!;
      const pagePixels = await page.evaluate(
        async ({ b64, name, size }) => {
          const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const prepared = await (window as unknown as { pageImage: typeof import('../src/browser/image.ts') }).pageImage.prepareImage(
            new Blob([bin], { type: 'image/jpeg' }),
            name,
            size,
            false,
          );
          return Array.from(prepared.pixels);
        },
        { b64: bytes.toString('base64'), name: names[i], size },
      );
      const cached = split.pixels.subarray(i * per, (i + 1) * per);
      t.is(pagePixels.length, per);
      for (let p = 0; p < per; p++) worst = Math.max(worst, Math.abs(pagePixels[p] - cached[p]));
      compared++;
    }
  }
  t.log(`${compared} test images at 84 and 16 px: largest |page − cache| = ${worst} grey level(s)`);
  t.true(worst <= 1, `page pixels differ from the cache's by ${worst} grey levels`);
  await page.close();
});

test.serial("an episode evaluation in the page gives `fewshot eval`'s per-episode accuracies and mean ± CI", async (t) => {
  // Fixed episodes of the fixture's test split (2-way 1-shot, 2 queries per class: the spec the checkpoint was tested with), made as the committed ones are.
  const episodes = path.join(fx.root, 'page-episodes.json');
  await writeEpisodeFile(episodes, makeEpisodes({ split: await loadSplit(cache16, 'test'), spec: { way: 2, shot: 1, query: 2 }, seed: 1, count: 20 }));
  const results = path.join(fx.root, 'eval-results');
  const cli = await runCli([
    'eval',
    checkpoint,
    '--test-file',
    episodes,
    '--test-episodes',
    '15',
    '--data',
    fx.folderDir,
    '--cache',
    cache16,
    '--backend',
    'wasm',
    '--results',
    results,
    '--name',
    'page-eval',
  ]);
  t.is(cli.code, 0, cli.stderr);
  const resultDir = path.join(results, 'mini-imagenet', 'page-eval');
  const record = JSON.parse(await fs.readFile(path.join(resultDir, 'result.json'), 'utf8')) as {
    summary: Record<string, { mean: number; ci95: number; text: string }>;
    inferenceModes: string[];
  };
  const csvRows = (await fs.readFile(path.join(resultDir, 'per-episode.csv'), 'utf8')).trim().split('\n');
  const header = csvRows[0].split(',');
  const node = Object.fromEntries(record.inferenceModes.map((m) => [m, csvRows.slice(1).map((r) => Number(r.split(',')[header.indexOf(m)]))]));

  const page = await openPage('backend=wasm');
  await page.evaluate(() => ((document.getElementById('evaluation') as HTMLDetailsElement).open = true));
  await page.setInputFiles('#eval-episodes', episodes);
  await page.setInputFiles('#eval-csv', path.join(fx.folderDir, 'test.csv'));
  const testImages = fx.rows.test.map((r) => path.join(fx.folderDir, 'images', r.filename));
  await page.setInputFiles('#eval-images', testImages);
  await page.fill('#eval-count', '15');
  await page.click('#evaluate');
  await page.waitForFunction(() => document.body.dataset.state === 'done' || document.body.dataset.state === 'error', undefined, { timeout: 300_000 });
  const errors = await page.$$eval('#messages li.error', (els) => els.map((e) => e.textContent));
  t.deepEqual(errors, []);
  const rows = await page.$$eval('.eval-mode', (els) =>
    els.map((e) => ({
      mode: (e as HTMLElement).dataset.mode!,
      per: JSON.parse((e as HTMLElement).dataset.perEpisode!) as number[],
      mean: Number((e as HTMLElement).dataset.mean),
      ci95: Number((e as HTMLElement).dataset.ci95),
      text: e.textContent ?? '',
    })),
  );
  t.deepEqual(
    rows.map((r) => r.mode),
    record.inferenceModes,
  );
  for (const r of rows) {
    t.is(r.per.length, 15);
    t.deepEqual(r.per, node[r.mode], `${r.mode}: per-episode accuracies`);
    t.true(Math.abs(r.mean - record.summary[r.mode].mean) < 1e-12 && Math.abs(r.ci95 - record.summary[r.mode].ci95) < 1e-12, `${r.mode}: mean ± CI`);
    t.true(r.text.includes(record.summary[r.mode].text), `${r.text} shows ${record.summary[r.mode].text}`);
  }
  t.log(rows.map((r) => r.text).join(' | '), '|', await page.textContent('#eval-progress'));
  // Not every episode is perfect or all wrong (the comparison would then be weak).
  t.true(new Set(rows.flatMap((r) => r.per)).size > 1);
  await page.close();
});

test.serial('the page works offline once loaded (its service worker keeps the page, the wasm binaries and the model)', async (t) => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${url}?backend=wasm`);
    await page.waitForSelector('body[data-state=ready]', { timeout: 120_000 });
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    // Once more online, now through the service worker, so every file the page fetches is kept.
    await page.reload();
    await page.waitForSelector('body[data-state=ready]', { timeout: 120_000 });
    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector('body[data-state=ready]', { timeout: 120_000 });
    t.is(await page.getAttribute('#model-info', 'data-loaded'), 'protonet-sla');
    t.is(await page.getAttribute('#backend-info', 'data-backend'), 'wasm');
    await fillPage(page, (await fs.readdir(support)).sort());
    t.is((await classify(page)).length, (await fs.readdir(queryDir)).length);
  } finally {
    await context.close();
  }
});

test.serial('bad input gets a message in the page, and the page keeps working', async (t) => {
  const page = await openPage('backend=wasm');
  const classes = (await fs.readdir(support)).sort();
  const lastError = async () => (await page.$$eval('#messages li.error', (els) => els.map((e) => e.textContent ?? ''))).at(-1) ?? '';
  const classifyFails = async () => {
    await page.click('#classify');
    await page.waitForSelector('body[data-state=error]');
    return lastError();
  };
  // A non-image file is refused when added.
  const notes = path.join(fx.root, 'notes.txt');
  await fs.writeFile(notes, 'hello');
  await page.locator('.class').nth(0).locator('input.class-files').setInputFiles(notes);
  t.regex(await lastError(), /notes\.txt is not an image/);
  t.is(await page.locator('.class').nth(0).locator('figure').count(), 0);
  // A class with no photos, then one class only.
  await page.setInputFiles('#query-files', path.join(queryDir, (await fs.readdir(queryDir))[0]));
  await page
    .locator('.class')
    .nth(0)
    .locator('input.class-files')
    .setInputFiles(path.join(support, classes[0], (await fs.readdir(path.join(support, classes[0])))[0]));
  t.regex(await classifyFails(), /class "class 2" has no photos.*remove the class/);
  await page.locator('.class').nth(1).locator('.remove-class').click();
  t.regex(await classifyFails(), /only one class.*at least 2/);
  // A damaged image (a JPEG cut short) is named.
  const broken = path.join(fx.root, 'broken.jpg');
  await fs.writeFile(broken, (await fs.readFile(path.join(queryDir, (await fs.readdir(queryDir))[0]))).subarray(0, 300));
  await page.click('#add-class');
  await page.locator('.class').nth(1).locator('input.class-files').setInputFiles(broken);
  t.regex(await classifyFails(), /broken\.jpg is not an image the browser can decode/);
  // Removing it, the page classifies again (nothing stuck).
  await page.locator('.class').nth(1).locator('figure button').click();
  await page
    .locator('.class')
    .nth(1)
    .locator('input.class-files')
    .setInputFiles(path.join(support, classes[1], (await fs.readdir(path.join(support, classes[1])))[0]));
  t.is((await classify(page)).length, 1);

  // A corrupt export: a truncated weight shard; an export from another fewshot version.
  const shard = (await fs.readdir(exportDir)).find((f) => f.endsWith('.bin'))!;
  const truncated = path.join(fx.root, 'truncated');
  await fs.mkdir(truncated);
  await fs.copyFile(path.join(exportDir, 'model.json'), path.join(truncated, 'model.json'));
  await fs.writeFile(path.join(truncated, shard), (await fs.readFile(path.join(exportDir, shard))).subarray(0, 1000));
  await page.setInputFiles('#model-files', [path.join(truncated, 'model.json'), path.join(truncated, shard)]);
  await page.waitForFunction(() =>
    [...document.querySelectorAll('#messages li.error')].some((e) => /bytes but model\.json describes/.test(e.textContent ?? '')),
  );
  const other = path.join(fx.root, 'other-version');
  await fs.mkdir(other);
  const json = JSON.parse(await fs.readFile(path.join(exportDir, 'model.json'), 'utf8'));
  json.modelTopology.fewshotVersion = '0.0.1';
  await fs.writeFile(path.join(other, 'model.json'), JSON.stringify(json));
  await fs.copyFile(path.join(exportDir, shard), path.join(other, shard));
  await page.setInputFiles('#model-files', [path.join(other, 'model.json'), path.join(other, shard)]);
  await page.waitForFunction(() =>
    [...document.querySelectorAll('#messages li.error')].some((e) => /exported by fewshot 0\.0\.1.*this is fewshot/.test(e.textContent ?? '')),
  );
  // The served model is still the one in use.
  t.is(await page.getAttribute('#model-info', 'data-loaded'), 'protonet-sla');
  // An archive of the export folder (.tar.gz) loads.
  const archive = path.join(fx.root, 'model.tgz');
  // The export folder is a link to its current version (written atomically): archive what it points to.
  await tar.c({ gzip: true, follow: true, file: archive, cwd: path.dirname(exportDir) }, [path.basename(exportDir)]);
  await page.setInputFiles('#model-files', archive);
  await page.waitForFunction(() =>
    [...document.querySelectorAll('#messages li.info')].some((e) => /model loaded from model\.json \(\+ 1 file\)/.test(e.textContent ?? '')),
  );
  t.is(await page.getAttribute('#model-info', 'data-loaded'), 'protonet-sla');
  t.is((await classify(page)).length, 1);
  await page.close();

  // A backend that cannot start falls back and says so: WebGPU in a headless Chromium without a GPU (it has
  // navigator.gpu but no adapter).
  const noGpu = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const p = await noGpu.newPage();
    await p.goto(`${url}?backend=webgpu`);
    await p.waitForSelector('body[data-state=ready]', { timeout: 120_000 });
    const warning = await p.$$eval('#messages li.warning', (els) => els.map((e) => e.textContent ?? '').join(' | '));
    t.regex(warning, /WebGPU could not start: .+ — using (WebGL|wasm) instead/);
    t.regex((await p.getAttribute('#backend-info', 'data-backend')) ?? '', /^(webgl|wasm)$/);
    t.log(`without a GPU: ${warning.replace(/×$/, '')}`);
  } finally {
    await noGpu.close();
  }
});

test.serial("fewshot export refuses a plugin learner's checkpoint, naming it; fewshot serve refuses a damaged export", async (t) => {
  // A checkpoint whose recorded method is a plugin's (relationnet, plugins/relationnet).
  const pluginCkpt = path.join(fx.root, 'plugin-ckpt');
  await fs.cp(checkpoint, pluginCkpt, { recursive: true, dereference: true });
  const file = path.join(pluginCkpt, 'checkpoint.json');
  const ck = JSON.parse(await fs.readFile(file, 'utf8'));
  ck.meta.config.method = 'relationnet';
  ck.meta.plugins = [{ module: './plugins/relationnet/index.ts' }];
  // As that plugin's training would have written it: with checkpoint.json's own checksum over the edited content.
  const { checkpointSha256: _edited, ...content } = ck;
  ck.checkpointSha256 = createHash('sha256').update(JSON.stringify(content)).digest('hex');
  await fs.writeFile(file, JSON.stringify(ck));
  const refused = await runCli(['export', pluginCkpt, '--out', path.join(fx.root, 'plugin-export')]);
  t.is(refused.code, 2, refused.stderr);
  t.regex(refused.stderr, /method "relationnet", made with plugin \.\/plugins\/relationnet\/index\.ts; the browser page has only fewshot's built-in/);
  const loaded = await runCli(['export', pluginCkpt, '--out', path.join(fx.root, 'plugin-export'), '--plugin', './plugins/relationnet/index.ts'], {
    NODE_OPTIONS: '--conditions=fewshot-source',
  });
  t.is(loaded.code, 2, loaded.stderr);
  t.regex(loaded.stderr, /uses learner "relationnet" from plugin/);
  t.false(existsSync(path.join(fx.root, 'plugin-export')), 'nothing written');
  // --out onto a folder that is not an export is refused (it would be replaced).
  const foreign = await runCli(['export', checkpoint, '--out', support]);
  t.is(foreign.code, 2);
  t.regex(foreign.stderr, /already exists and is not a fewshot export/);
  // serve: a damaged export is named before anything is served.
  const broken = path.join(fx.root, 'broken-export');
  await fs.mkdir(broken);
  await fs.writeFile(path.join(broken, 'model.json'), '{"format": "fewshot-method", "modelTopology": {"format": "fewshot-export/1"');
  const served = await runCli(['serve', '--model', broken, '--port', '0']);
  t.is(served.code, 2);
  t.regex(served.stderr, /model\.json is not valid JSON/);
});
