import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildFixture, type Fixture } from './fixtures/mini-imagenet.ts';
import { prepareCliFixture, runLauncher, tinyTrainingArgs } from './fixtures/run-cli.ts';

/**
 * End-to-end through the real CLI on real mini-ImageNet images (a 7-class fixture cut from the shared
 * val archive): prepare → episodes make → run protonet-sla → compare, and plugins loaded by the CLI. The
 * bad-input matrix (exit 2, problem and fix, no files left behind) runs in-process: test/cli-bad-input.test.ts.
 */
const cli = (args: string[]) => runLauncher(args);

let fx: Fixture;
let tmp: string;
let cache: string;

test.before(async () => {
  fx = await buildFixture(12);
  tmp = fx.root;
  cache = await prepareCliFixture(fx, '16', cli, { cacheName: 'cache16' });
});

test.after.always(async () => {
  await fx?.cleanup();
});

test.serial('run protonet-sla trains, evaluates and records a traceable result; compare pairs it', async (t) => {
  const args = (name: string, method: string) =>
    tinyTrainingArgs({
      command: 'run',
      method,
      size: '16',
      cache,
      root: tmp,
      runs: path.join(tmp, 'runs'),
      results: path.join(tmp, 'results'),
      episodes: 3,
      name,
    });
  const sla = await cli(args('sla', 'protonet-sla'));
  t.is(sla.code, 0, sla.stderr);
  t.regex(sla.stdout, /protonet-sla \[ag\] 2-way 1-shot: \d+\.\d\d ± \d+\.\d\d %/);
  t.regex(sla.stderr, /backend: wasm/);
  const dir = path.join(tmp, 'results', 'mini-imagenet', 'sla');
  const record = JSON.parse(await fs.readFile(path.join(dir, 'result.json'), 'utf8'));
  t.deepEqual(record.inferenceModes, ['ag', 'si']);
  t.is(record.episodes.evaluated, 4);
  t.is(record.backend.choice, 'wasm');
  t.regex(record.data.splitFingerprint, /^[0-9a-f]{64}$/);
  t.regex(record.episodes.sha256, /^[0-9a-f]{64}$/);
  t.is(record.seed, 0);
  t.true(record.wallSeconds.eval > 0);
  t.regex(record.command, /^fewshot run protonet-sla/);
  const csv = (await fs.readFile(path.join(dir, 'per-episode.csv'), 'utf8')).trim().split('\n');
  t.is(csv[0], 'episode,ag,si');
  t.is(csv.length, 5);
  // Resume: the same command again finds `last/` complete and does not retrain.
  const again = await cli(args('sla', 'protonet-sla'));
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, /resumed from episode 3/);
  // The same run name with another configuration must not overwrite those checkpoints.
  const clash = await cli([...args('sla', 'protonet-sla'), '--lr', '0.01']);
  t.is(clash.code, 2);
  t.regex(clash.stderr, /already holds a run with a different configuration[\s\S]*fix: give this run another --name/);

  // Checkpoints are backend-independent: the wasm-trained model evaluates on the pure-JS cpu backend
  // to the same accuracies.
  const onCpu = await cli([
    'eval',
    path.join(tmp, 'runs', 'sla', 'best'),
    '--backend',
    'cpu',
    '--test-file',
    path.join(tmp, 'test.json'),
    '--results',
    path.join(tmp, 'results-cpu'),
    '--cache',
    cache,
  ]);
  t.is(onCpu.code, 0, onCpu.stderr);
  const cpuCsv = (await fs.readFile(path.join(tmp, 'results-cpu', 'mini-imagenet', 'sla_eval_test', 'per-episode.csv'), 'utf8')).trim().split('\n');
  t.deepEqual(cpuCsv, csv);

  const plain = await cli(args('plain', 'protonet'));
  t.is(plain.code, 0, plain.stderr);
  const cmp = await cli(['compare', dir, path.join(tmp, 'results', 'mini-imagenet', 'plain')]);
  t.is(cmp.code, 0, cmp.stderr);
  t.regex(cmp.stdout, /A − B \(paired over 4 episodes\): -?\d+\.\d\d ± \d+\.\d\d points/);
});

test('a plugin head registers without editing the library and combines with every wrapper', async (t) => {
  const out = await cli(['list', '--plugin', './examples/cosine-head.ts']);
  t.is(out.code, 0, out.stderr);
  for (const name of ['cosine', 'cosine-sla', 'cosine-sla-sd', 'cosine-da', 'cosine-mt']) t.regex(out.stdout, new RegExp(`^  ${name}  —`, 'm'));
  // --plugin takes one module per flag and is repeated for more: the method after it is not taken as a module
  const before = await cli(['run', '--plugin', './examples/cosine-head.ts', 'cosinee', '--backend', 'cpu']);
  t.is(before.code, 2, before.stderr);
  t.regex(before.stderr, /unknown method "cosinee" \(did you mean "cosine"\?\)/);
  const twice = await cli(['list', '--plugin', './examples/cosine-head.ts', '--plugin', './examples/nope.ts']);
  t.regex(twice.stderr, /cannot load plugin.*nope\.ts/);
  const missing = await cli(['list', '--plugin', './examples/nope.ts']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /cannot load plugin/);
});
