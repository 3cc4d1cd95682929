import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildFixture, REPO_ROOT, type Fixture } from './fixtures/mini-imagenet.ts';
import { prepareCliFixture, runLauncher, runNode, tinyTrainingArgs } from './fixtures/run-cli.ts';
import { defaultEpisodeFile } from '../src/experiment/workspace.ts';
import { getDatasetProvider } from '../src/data/providers/registry.ts';
import { packagedEpisodesDir } from '../src/util/package-root.ts';
import { portableText } from '../src/util/portable-path.ts';
import { writeResult } from '../src/reports/results.ts';
import '../src/builtin.ts';
import { exists } from './fixtures/fs.ts';

/*
 * The CLI as a user meets it: --version/--help, --json, plugins named in listings, results
 * and errors, evaluations that never replace another result, files checked before training, and results
 * that hold no absolute path of the machine. Runs the real launcher from a temp working directory on a
 * 7-class fixture cut from real mini-ImageNet images.
 */
const cli = (args: string[], cwd: string, env: Record<string, string> = {}) => runLauncher(args, cwd, env);

const COSINE = path.join(REPO_ROOT, 'examples', 'cosine-head.ts');

let fx: Fixture;
let tmp: string;
const common = () => ['--image-size', '16', '--cache', 'cache16'];
const spec = ['--way', '2', '--shot', '1', '--query', '3'];

test.before(async () => {
  fx = await buildFixture(12);
  tmp = fx.root;
  // the plugins written below are ES modules, as a plugin package declares
  await fs.writeFile(path.join(tmp, 'package.json'), '{ "type": "module" }\n');
  await prepareCliFixture({ folderDir: fx.folderDir, root: '.' }, '16', (args) => cli(args, tmp), { cacheName: 'cache16' });
});

test.after.always(async () => {
  await fx?.cleanup();
});

// Usage errors (exit 2 with error: and fix:) are checked in-process with the other bad input: test/cli-bad-input.test.ts.

test('--version prints the package and plugin API versions; --help loads no tfjs', async (t) => {
  const pkg = JSON.parse(await fs.readFile(path.join(REPO_ROOT, 'package.json'), 'utf8'));
  const v = await cli(['--version'], tmp);
  t.is(v.code, 0, v.stderr);
  t.is(v.stdout.trim(), `fewshot ${pkg.version} (plugin API 1.0)`);
  // A resolve hook records every module URL the CLI loads while answering --help.
  const trace = path.join(tmp, 'help-trace.txt');
  const hook = path.join(tmp, 'trace-hook.mjs');
  await fs.writeFile(
    hook,
    `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(trace)}, r.url + '\\n'); return r; }\n`,
  );
  const reg = path.join(tmp, 'register-hook.mjs');
  await fs.writeFile(reg, `import { register } from 'node:module';\nregister(${JSON.stringify(new URL(`file://${hook}`).href)});\n`);
  const help = await cli(['--help'], tmp, { NODE_OPTIONS: `--import ${reg}` });
  t.is(help.code, 0, help.stderr);
  t.regex(help.stdout, /Usage: fewshot/);
  const loaded = await fs.readFile(trace, 'utf8');
  t.regex(loaded, /src\/cli\/main\.ts/); // the hook saw the CLI
  t.notRegex(loaded, /@tensorflow/);
  // Of the experiment layer only the front-end pieces and the defaults --help shows, which load no tfjs, data or table code.
  const experimentModules = [
    ...new Set(
      loaded
        .split('\n')
        .filter((u) => u.includes('src/experiment/'))
        .map((u) => u.replace(/^.*src\/experiment\//, '')),
    ),
  ].sort();
  t.deepEqual(experimentModules, ['defaults.ts', 'front-end.ts', 'reproduce/defaults.ts', 'unexpected-error.ts']);
});

test('a missing --config suggests experiment files that exist', async (t) => {
  const out = await cli(['run', 'protonet', '--config', 'nope.json'], tmp);
  t.is(out.code, 2);
  const suggested = [...out.stderr.matchAll(/(\S+\.json)/g)].map((m) => m[1]).filter((f) => f !== 'nope.json');
  t.true(suggested.length > 0, out.stderr);
  for (const f of suggested) t.true(await exists(path.isAbsolute(f) ? f : path.join(tmp, f)), `${f} does not exist`);
});

test("default episode files of mini-ImageNet come from the package, user datasets' from ./episodes", (t) => {
  const mini = defaultEpisodeFile(
    { dataset: { name: 'mini-imagenet', provider: getDatasetProvider('mini-imagenet'), options: {} }, episodesDir: undefined },
    'test',
    { way: 5, shot: 1, query: 15 },
  );
  t.is(mini.file, path.join(packagedEpisodesDir(), 'mini-imagenet', 'test_5w1s15q_seed0_2000.json'));
  const folder = defaultEpisodeFile({ dataset: { name: 'my-images', provider: getDatasetProvider('folder'), options: {} }, episodesDir: undefined }, 'test', {
    way: 5,
    shot: 1,
    query: 15,
  });
  t.false(path.isAbsolute(folder.file));
  t.true(folder.file.startsWith(`episodes${path.sep}my-images${path.sep}`));
});

test('the backend detail line and command lines lose their absolute paths', (t) => {
  const detail = `wasm; auto skipped: tensorflow (Cannot find package '@tensorflow/tfjs-node' imported from ${path.join(REPO_ROOT, 'src', 'backend', 'select.ts')})`;
  t.is(
    portableText(detail, '/somewhere/else'),
    "wasm; auto skipped: tensorflow (Cannot find package '@tensorflow/tfjs-node' imported from <fewshot>/src/backend/select.ts)",
  );
  t.is(portableText('fewshot run x --data /data/mini --cache ./c', '/data'), 'fewshot run x --data mini --cache ./c');
  t.is(portableText('mean ± 1.96·s/√n', '/x'), 'mean ± 1.96·s/√n');
});

test('compare of results with different episode counts or a missing mode is a UserError', async (t) => {
  const base = {
    method: 'm',
    createdAt: 'now',
    seed: 0,
    backend: { choice: 'cpu', detail: 'cpu' },
    data: { dataset: 'd', imageSize: 16, splitFingerprint: 'f', cacheFingerprint: 'c' },
    wallSeconds: { eval: 1 },
    software: {},
  };
  const ev = (n: number) => ({
    episodes: n,
    modes: ['plain'],
    perEpisode: { plain: Float64Array.from({ length: n }, (_, i) => (i % 2 ? 50 : 100)) },
    summary: { plain: { mean: 75, ci95: 1, std: 1, n } },
    wallSeconds: 1,
  });
  const episodes = (n: number) => ({ file: 'test.json', sha256: 'same', split: 'test', way: 2, shot: 1, query: 3, evaluated: n });
  await writeResult(path.join(tmp, 'cmp-4'), { ...base, episodes: episodes(4) }, ev(4) as never);
  await writeResult(path.join(tmp, 'cmp-2'), { ...base, episodes: episodes(2) }, ev(2) as never);
  const counts = await cli(['compare', 'cmp-4', 'cmp-2'], tmp);
  t.is(counts.code, 2, counts.stderr);
  t.regex(counts.stderr, /error: cmp-4 was scored on 4 episodes and cmp-2 on 2[\s\S]*fix: .*--test-episodes 2/);
  t.notRegex(counts.stderr, /\n\s+at /);
  const mode = await cli(['compare', 'cmp-4', 'cmp-4', '--mode-b', 'ag'], tmp);
  t.is(mode.code, 2);
  t.regex(mode.stderr, /has no inference mode "ag"[\s\S]*fix: use one of: plain/);
  const ok = await cli(['compare', 'cmp-4', 'cmp-4', '--json'], tmp);
  t.is(ok.code, 0, ok.stderr);
  t.is(JSON.parse(ok.stdout).pairedDifference.n, 4);
});

test.serial('run checks its test file before training and leaves no run folder when it fails early', async (t) => {
  const early = (method: string) => [
    ...['run', method, ...spec, '--episodes', '2', '--val-file', 'val.json', '--backend', 'cpu'],
    ...['--runs', 'runs-early', '--results', 'results-early', ...common()],
  ];
  const base = early('protonet');
  const missing = await cli([...base, '--test-file', 'no-such-test.json', '--name', 'missing'], tmp);
  t.is(missing.code, 2, missing.stderr);
  t.regex(missing.stderr, /--test-file no-such-test\.json does not exist[\s\S]*fix:/);
  t.notRegex(missing.stderr, /^training /m);
  // A test file of another spec (2 queries per class) than the run's (3): refused before the first episode.
  const made = await cli(
    ['episodes', 'make', '--split', 'test', '--way', '2', '--shot', '1', '--query', '2', '--count', '2', ...common(), '--out', 'test-q2.json'],
    tmp,
  );
  t.is(made.code, 0, made.stderr);
  const wrongSpec = await cli([...base, '--test-file', 'test-q2.json', '--name', 'wrongspec'], tmp);
  t.is(wrongSpec.code, 2, wrongSpec.stderr);
  t.regex(wrongSpec.stderr, /test-q2\.json holds 2-way 1-shot 2-query episodes/);
  t.notRegex(wrongSpec.stderr, /^training /m);
  // A plugin head with logits of the wrong shape fails on the first episode: named, exit 2, no run folder left.
  await fs.writeFile(
    path.join(tmp, 'bad-head.ts'),
    [
      `import { registerHead, squaredDistances, classMeans, z, tf } from ${JSON.stringify(path.join(REPO_ROOT, 'src', 'index.ts'))};`,
      "registerHead({ id: 'badshape', description: 'wrong logits shape', configSchema: z.object({}).strict(),",
      "  create: () => ({ id: 'badshape', variables: () => [], logits: (ep) => tf.tidy(() => tf.concat([tf.neg(squaredDistances(ep.query, classMeans(ep.support, ep.supportLabels, ep.way))), tf.zeros([ep.query.shape[0], 1])], 1)) }) });",
    ].join('\n'),
  );
  const bad = await cli([...early('badshape'), '--test-file', 'test.json', '--name', 'badshape', '--plugin', './bad-head.ts'], tmp);
  t.is(bad.code, 2, bad.stderr);
  t.regex(bad.stderr, /learner "badshape" \(plugin \.\/bad-head\.ts\)/);
  for (const name of ['missing', 'wrongspec', 'badshape']) t.false(await exists(path.join(tmp, 'runs-early', name)), `runs-early/${name} was left behind`);
  t.false(await exists(path.join(tmp, 'results-early')));
});

test.serial('a plugin that throws an ordinary Error: one line naming it, a short stack, exit 2', async (t) => {
  await fs.writeFile(
    path.join(tmp, 'throwing-head.ts'),
    [
      `import { registerHead, z } from ${JSON.stringify(path.join(REPO_ROOT, 'src', 'index.ts'))};`,
      "registerHead({ id: 'thrower', description: 'throws', configSchema: z.object({}).strict(),",
      "  create: () => ({ id: 'thrower', variables: () => [], logits: () => { throw new Error('kaboom in my head'); } }) });",
    ].join('\n'),
  );
  const thrower = { command: 'run', method: 'thrower', size: '16', cache: 'cache16', root: '.', runs: 'runs-thrower', episodes: 1, name: 'thrower' } as const;
  const out = await cli([...tinyTrainingArgs(thrower), '--plugin', './throwing-head.ts'], tmp);
  t.is(out.code, 2, out.stderr);
  t.regex(out.stderr, /error: .*thrower.*\(plugin \.\/throwing-head\.ts\).*kaboom in my head/);
  t.true(out.stderr.length < 2000, `stderr is ${out.stderr.length} characters`);
});

test.serial(
  'run/eval/list --json; an evaluation gets its own result, is kept when repeated, never replaces another; plugins recorded; no machine paths',
  async (t) => {
    const cosine = {
      command: 'run',
      method: 'cosine',
      size: '16',
      cache: 'cache16',
      root: '.',
      runs: 'runs',
      results: 'results',
      episodes: 2,
      name: 'cos',
    } as const;
    const run = await cli([...tinyTrainingArgs(cosine), '--plugin', COSINE, '--data', fx.folderDir, '--json'], tmp);
    t.is(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout);
    t.is(summary.method, 'cosine');
    t.is(summary.test.evaluated, 4);
    // Seed 0 on plain wasm, pinned: the cosine head after 2 training episodes on the 4 test episodes.
    t.is(summary.accuracy.plain.mean, 0.75); // 18 of 24 queries over the 4 episodes
    const runResultPath = path.join(tmp, 'results', 'mini-imagenet', 'cos', 'result.json');
    const runResultText = await fs.readFile(runResultPath, 'utf8');
    const record = JSON.parse(runResultText);
    // the plugin that made it: module, package version and the sha256 of its file
    t.is(record.plugins.length, 1);
    t.is(record.plugins[0].module, '<fewshot>/examples/cosine-head.ts'); // recorded without the machine's path
    t.regex(record.plugins[0].package, /^fewshot@/);
    t.regex(record.plugins[0].sha256, /^[0-9a-f]{64}$/);
    t.deepEqual(record.plugins[0].registered.learners, ['cosine']);
    // no absolute path of this machine anywhere in the result (command, checkpoint, dataset root, backend detail)
    for (const p of [tmp, REPO_ROOT, '/tmp/', '/work/'])
      t.false(
        runResultText.includes(p),
        `result.json holds ${p}: ${runResultText
          .split('\n')
          .filter((l) => l.includes(p))
          .join(' | ')}`,
      );
    t.is(record.checkpoint, path.join('runs', 'cos', 'best'));

    // eval: its own result name, not the run's; the run's 4-episode result stays as it was
    const evalArgs = [
      'eval',
      'runs/cos/best',
      '--test-file',
      'test.json',
      '--test-episodes',
      '2',
      '--backend',
      'wasm',
      '--results',
      'results',
      '--plugin',
      COSINE,
      ...common().slice(2),
      '--json',
    ];
    const ev = await cli(evalArgs, tmp);
    t.is(ev.code, 0, ev.stderr);
    const evSummary = JSON.parse(ev.stdout);
    t.is(evSummary.name, 'cos_eval_test_2ep');
    t.is(evSummary.test.evaluated, 2);
    t.is(await fs.readFile(runResultPath, 'utf8'), runResultText);
    const evResult = await fs.readFile(path.join(tmp, 'results', 'mini-imagenet', 'cos_eval_test_2ep', 'result.json'), 'utf8');
    // the same command again keeps that result
    const again = await cli(evalArgs, tmp);
    t.is(again.code, 0, again.stderr);
    t.true(JSON.parse(again.stdout).reused);
    t.is(await fs.readFile(path.join(tmp, 'results', 'mini-imagenet', 'cos_eval_test_2ep', 'result.json'), 'utf8'), evResult);
    // an evaluation named like the run (a different result) is refused, the run's result untouched
    const clash = await cli([...evalArgs, '--name', 'cos'], tmp);
    t.is(clash.code, 2, clash.stderr);
    t.regex(
      clash.stderr,
      /results\/mini-imagenet\/cos already holds a different result \(cosine, 4 episodes, this evaluation 2\)[\s\S]*fix: give this evaluation another --name/,
    );
    t.is(await fs.readFile(runResultPath, 'utf8'), runResultText);

    // evaluating the plugin's checkpoint without --plugin names the plugin that made it
    const noPlugin = await cli(['eval', 'runs/cos/best', '--test-file', 'test.json', '--backend', 'cpu', ...common().slice(2)], tmp);
    t.is(noPlugin.code, 2, noPlugin.stderr);
    t.regex(
      noPlugin.stderr,
      /was made with plugin .*cosine-head\.ts \(fewshot@[^)]+\), which registers its method "cosine"[\s\S]*fix: pass --plugin .*cosine-head\.ts/,
    );
    // …and so does predict (two classes of the fixture's real images as the support, one more as the query)
    const images = (await fs.readdir(path.join(fx.folderDir, 'images'))).sort();
    for (const [k, name] of images.slice(0, 2).entries()) {
      await fs.mkdir(path.join(tmp, 'support', `class${k}`), { recursive: true });
      await fs.copyFile(path.join(fx.folderDir, 'images', name), path.join(tmp, 'support', `class${k}`, name));
    }
    const predictArgs = ['predict', 'runs/cos/best', '--support', 'support', '--query', path.join(fx.folderDir, 'images', images[2]), '--backend', 'cpu'];
    const predictNoPlugin = await cli(predictArgs, tmp);
    t.is(predictNoPlugin.code, 2, predictNoPlugin.stderr);
    t.regex(
      predictNoPlugin.stderr,
      /was made with plugin .*cosine-head\.ts \(fewshot@[^)]+\), which registers its method "cosine"[\s\S]*fix: pass --plugin .*cosine-head\.ts/,
    );
    // --plugin takes one module per flag: the argument after it stays the command's (here the checkpoint)
    const predicted = await cli(['predict', '--plugin', COSINE, 'runs/cos/best', ...predictArgs.slice(2), '--json'], tmp);
    t.is(predicted.code, 0, predicted.stderr);
    t.is(JSON.parse(predicted.stdout).method, 'cosine');

    // list --json: built-in vs plugin, with where each came from
    const list = await cli(['list', '--plugin', COSINE, '--json'], tmp);
    t.is(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout);
    t.is(listed.learners.find((l: { id: string }) => l.id === 'cosine').origin, COSINE);
    t.is(listed.learners.find((l: { id: string }) => l.id === 'protonet').origin, 'fewshot (built in)');
    t.is(listed.plugins[0].module, COSINE);
  },
);

test('importing (or requiring, from CommonJS) src/episodes/make-standard.ts runs nothing', async (t) => {
  // CommonJS, as a plugin in a folder without "type": "module" loads fewshot's sources through tsx: a
  // top-level await there used to fail with ERR_REQUIRE_ASYNC_MODULE.
  const out = await runNode(
    [
      '--import',
      import.meta.resolve('tsx'),
      '-e',
      `require(${JSON.stringify(path.join(REPO_ROOT, 'src', 'episodes', 'make-standard.ts'))}); console.log('imported');`,
    ],
    tmp,
  );
  t.is(out.code, 0, out.stderr);
  t.is(out.stdout.trim(), 'imported');
});
