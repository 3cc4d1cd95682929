import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { predictImages } from '../src/experiment/index.ts';
import { UserError } from '../src/util/errors.ts';
import { buildFixture, type Fixture } from './fixtures/mini-imagenet.ts';
import { runCli } from './fixtures/run-cli.ts';
import { trainTinyModel, writeSupportAndQuery } from './fixtures/tiny-model.ts';
import '../src/builtin.ts';

/**
 * `fewshot predict` with a tiny SLA checkpoint trained on real mini-ImageNet images (the fixture), on real
 * images of two held-out classes: one prediction per query, probabilities summing to 1, the headline mode
 * (ag) by default; the CLI's --json output; bad support/query input as UserErrors (exit 2).
 */
let fx: Fixture;
let checkpoint: string;
let support: string;
let query: string;
test.before(async () => {
  fx = await buildFixture(6);
  ({ checkpoint } = await trainTinyModel(fx));
  // Support: 2 test classes × 2 images; query: 2 more images of each, as a folder.
  support = path.join(fx.root, 'support');
  query = path.join(fx.root, 'query');
  await writeSupportAndQuery(fx, support, query, 2, 2);
});
test.after.always(async () => fx?.cleanup());

test.serial('predictImages: one prediction per query image, probabilities sum to 1, ag by default for SLA', async (t) => {
  const r = await predictImages({ checkpoint, support, query: [query], backend: 'cpu' });
  t.is(r.method, 'protonet-sla');
  t.is(r.mode, 'ag');
  t.deepEqual(r.modes, ['ag', 'si']);
  t.is(r.classes.length, 2);
  t.deepEqual(r.shots, [2, 2]);
  t.is(r.predictions.length, 4);
  for (const p of r.predictions) {
    const probs = Object.values(p.probabilities);
    t.is(probs.length, 2);
    t.true(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    t.is(p.predicted, r.classes[probs.indexOf(Math.max(...probs))]);
  }
  // The recorded normalisation (mini-ImageNet constants) is the one used.
  t.is(Math.round(r.normalization.mean[0] * 255 * 1e6) / 1e6, 120.395864);
  // --mode si gives another (valid) distribution; a query image alone gives the same scores as in the batch.
  const si = await predictImages({ checkpoint, support, query: [query], mode: 'si', backend: 'cpu' });
  t.is(si.mode, 'si');
  const one = await predictImages({ checkpoint, support, query: [r.predictions[1].file], backend: 'cpu' });
  for (const c of r.classes) t.true(Math.abs(one.predictions[0].probabilities[c] - r.predictions[1].probabilities[c]) < 1e-5);
  await t.throwsAsync(predictImages({ checkpoint, support, query: [query], mode: 'sd', backend: 'cpu' }), {
    instanceOf: UserError,
    message: /no inference mode "sd"/,
  });
});

test.serial('fewshot predict --json on real images; bad input exits 2 naming the file', async (t) => {
  const files = (await fs.readdir(query)).sort();
  const ok = await runCli([
    'predict',
    checkpoint,
    '--support',
    support,
    '--query',
    path.join(query, files[0]),
    path.join(query, files[1]),
    '--json',
    '--backend',
    'cpu',
  ]);
  t.is(ok.code, 0, ok.stderr);
  const out = JSON.parse(ok.stdout) as { format: string; predictions: { file: string; probabilities: Record<string, number> }[]; classes: string[] };
  t.is(out.format, 'fewshot-predictions/1');
  t.deepEqual(
    out.predictions.map((p) => path.basename(p.file)),
    files.slice(0, 2),
  );
  for (const p of out.predictions) t.true(Math.abs(Object.values(p.probabilities).reduce((a, b) => a + b, 0) - 1) < 1e-5);
  const text = await runCli(['predict', checkpoint, '--support', support, '--query', query, '--backend', 'cpu']);
  t.is(text.code, 0, text.stderr);
  t.is(text.stdout.trim().split('\n').length, 1 + files.length);

  // Bad inputs.
  const oneClass = path.join(fx.root, 'one-class');
  await fs.cp(path.join(support, out.classes[0]), path.join(oneClass, out.classes[0]), { recursive: true });
  const broken = path.join(fx.root, 'broken.jpg');
  await fs.writeFile(broken, (await fs.readFile(path.join(query, files[0]))).subarray(0, 200));
  const notImage = path.join(fx.root, 'notes.txt');
  await fs.writeFile(notImage, 'hello');
  const empty = path.join(fx.root, 'empty');
  await fs.mkdir(empty);
  const cases: [string[], RegExp][] = [
    [['--support', oneClass, '--query', query], /has 1 class folder; few-shot classification needs at least 2 classes/],
    [['--support', support, '--query', broken], /broken\.jpg/],
    [['--support', support, '--query', notImage], /notes\.txt is not an image file/],
    [['--support', support, '--query', empty], /holds no images/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(['predict', checkpoint, ...args, '--backend', 'cpu']);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, re);
    t.regex(r.stderr, /fix: /);
  }
});
