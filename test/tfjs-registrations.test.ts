// fewshot runs on @tensorflow/tfjs-core + backends, without the @tensorflow/tfjs umbrella (issue 32 #10):
// gradients and chained tensor methods come from src/vendor/tfjs-core-registrations.cjs, which must match the
// installed tfjs-core, reach the one engine the backends use, and load none of layers/converter/webgl.
import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../src/backend/select.ts';
import { tf } from 'fewshot';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test.before(async () => {
  await selectBackend('cpu');
});

test('the committed registrations bundle matches the installed tfjs-core (rerun scripts/bundle-tfjs-registrations.mjs after an upgrade)', async (t) => {
  const { stderr } = await run(process.execPath, [path.join(root, 'scripts', 'bundle-tfjs-registrations.mjs'), '--check'], { cwd: root });
  t.is(stderr, '');
});

test('gradients are registered on the engine the backend uses: d/dx sum(relu(conv2d(x, ones))) and d/dv of an SGD step', (t) => {
  // x: 1×3×3×1 with values 1..9 (all positive, so relu passes everything); filter: 2×2 ones, 'valid'.
  // Each input pixel's gradient is the number of 2×2 windows that cover it: corners 1, edges 2, centre 4.
  const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
  const g = tf.grad((v) => tf.sum(tf.relu(tf.conv2d(v as tf.Tensor4D, tf.ones([2, 2, 1, 1]) as tf.Tensor4D, 1, 'valid'))))(x);
  t.deepEqual(Array.from(g.dataSync()), [1, 2, 1, 2, 4, 2, 1, 2, 1]);
  const v = tf.variable(tf.scalar(3));
  tf.train.sgd(0.25).minimize(() => tf.square(v) as tf.Scalar);
  t.is(v.dataSync()[0], 3 - 0.25 * 6); // d(v²)/dv = 2v = 6
});

test('chained tensor methods work at run time and type-check through the re-exported tf (x.toFloat(), x.mul(y).sum())', (t) => {
  const ints = tf.tensor1d([1, 2, 3], 'int32');
  const floats = ints.toFloat();
  t.is(floats.dtype, 'float32');
  t.deepEqual(Array.from(floats.mul(tf.scalar(2)).sum().dataSync()), [12]);
});

test('loading fewshot loads none of the umbrella packages (tfjs, tfjs-layers, -converter, -data, -backend-webgl)', async (t) => {
  const probe = [
    "import('fewshot').then(async ({ tf }) => {",
    "  await import('@tensorflow/tfjs-backend-cpu'); await tf.setBackend('cpu');",
    '  tf.grad((x) => tf.sum(tf.square(x)))(tf.ones([2]));',
    "  const { createRequire } = await import('node:module');",
    '  const loaded = Object.keys(createRequire(import.meta.url).cache);',
    '  console.log(JSON.stringify(loaded.filter((f) => /@tensorflow[\\\\/]tfjs[^\\\\/]*[\\\\/]/.test(f)).map((f) => f.match(/@tensorflow[\\\\/](tfjs[^\\\\/]*)/)[1])));',
    '});',
  ].join('\n');
  const { stdout } = await run(process.execPath, ['--import=tsx', '--conditions=fewshot-source', '--input-type=module', '-e', probe], { cwd: root });
  const packages = [...new Set(JSON.parse(stdout) as string[])].sort();
  t.deepEqual(packages, ['tfjs-backend-cpu', 'tfjs-core']);
});
