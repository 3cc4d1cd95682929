import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Adam, Sgd } from '../src/train/optimizer.ts';
import { learningRateAt } from '../src/train/schedule.ts';
import { saveCheckpoint, readCheckpoint, restoreVariables } from '../src/train/checkpoint.ts';
import { Conv4 } from '../src/backbones/conv4.ts';
import { UserError } from '../src/util/errors.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

// Training steps on a real Conv-4 (no leaks, determinism): train-core.slow.test.ts.

test('Adam matches the textbook update (bias-corrected, eps outside the sqrt)', (t) => {
  const p = tf.variable(tf.tensor1d([1.0, -2.0]));
  const opt = new Adam();
  const grads = [
    [0.5, -1.0],
    [0.1, 0.3],
  ];
  const m = [0, 0];
  const v = [0, 0];
  const ref = [1.0, -2.0];
  grads.forEach((g, step) => {
    opt.step([p], [tf.tensor1d(g)], 0.01);
    const tt = step + 1;
    for (let i = 0; i < 2; i++) {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] ** 2;
      ref[i] -= (0.01 * (m[i] / (1 - 0.9 ** tt))) / (Math.sqrt(v[i] / (1 - 0.999 ** tt)) + 1e-8);
    }
  });
  const got = p.arraySync() as number[];
  got.forEach((x, i) => t.true(Math.abs(x - ref[i]) < 1e-6, `${x} vs ${ref[i]}`));
});

test('SGD with Nesterov momentum and weight decay matches torch.optim.SGD', (t) => {
  const p = tf.variable(tf.tensor1d([1.0]));
  const opt = new Sgd(0.9, true, 0.1);
  let x = 1.0,
    buf = 0;
  [0.5, -0.25, 0.75].forEach((g, step) => {
    opt.step([p], [tf.tensor1d([g])], 0.1);
    const d = g + 0.1 * x;
    buf = step === 0 ? d : 0.9 * buf + d;
    x -= 0.1 * (d + 0.9 * buf);
  });
  t.true(Math.abs((p.arraySync() as number[])[0] - x) < 1e-6);
});

test('LR schedules: ProtoNet halving every 2,000 episodes and MetaOptNet piecewise', (t) => {
  const proto = { optimizer: { type: 'adam' as const, lr: 1e-3, weightDecay: 0 }, lrSchedule: { type: 'step' as const, everyEpisodes: 2000, factor: 0.5 } };
  t.is(learningRateAt(proto, 0), 1e-3);
  t.is(learningRateAt(proto, 1999), 1e-3);
  t.is(learningRateAt(proto, 2000), 5e-4);
  t.is(learningRateAt(proto, 4500), 2.5e-4);
  const mon = {
    optimizer: { type: 'sgd' as const, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    lrSchedule: { type: 'piecewise' as const, boundaries: [152000, 312000, 392000], factors: [1, 0.06, 0.012, 0.0024] },
  };
  t.is(learningRateAt(mon, 151999), 0.1);
  t.true(Math.abs(learningRateAt(mon, 152000) - 0.006) < 1e-12);
  t.true(Math.abs(learningRateAt(mon, 400000) - 0.00024) < 1e-12);
});

// Scratch folders of the checkpoint tests, removed when the file's tests end (passed or failed). A checkpoint is
// saved inside one (never as the folder itself): its atomic replacement puts a sibling beside the target.
const scratch: string[] = [];
const scratchDir = async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fewshot-ckpt-'));
  scratch.push(dir);
  return dir;
};
test.after.always(async () => {
  await Promise.all(scratch.map((dir) => fs.rm(dir, { recursive: true, force: true })));
});

test('checkpoint round trip restores every variable, BN running stats included', async (t) => {
  const dir = await scratchDir();
  const a = new Conv4(1);
  // Move running stats away from their init so the test can see them restored.
  tf.tidy(() => a.apply(tf.randomNormal([4, 16, 16, 3], 0, 1, 'float32', 3) as tf.Tensor4D, true));
  const varsA = [...a.trainableVariables(), ...a.stateVariables()];
  await saveCheckpoint(path.join(dir, 'best'), { variables: varsA, meta: { hello: 1 } });
  const b = new Conv4(2);
  const varsB = [...b.trainableVariables(), ...b.stateVariables()];
  const ckpt = await readCheckpoint(path.join(dir, 'best'));
  t.is(ckpt.file.meta.hello, 1);
  restoreVariables(ckpt, varsB);
  varsA.forEach((v, i) => t.deepEqual(Array.from(v.dataSync()), Array.from(varsB[i].dataSync())));
  const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
  t.deepEqual(Array.from(a.apply(x, false).dataSync()), Array.from(b.apply(x, false).dataSync()));
});

test('a truncated or missing checkpoint is a clear user error', async (t) => {
  const dir = path.join(await scratchDir(), 'last');
  const net = new Conv4(1);
  await saveCheckpoint(dir, { variables: net.trainableVariables(), meta: {} });
  const bin = path.join(dir, 'weights.bin');
  const full = await fs.readFile(bin);
  await fs.writeFile(bin, full.subarray(0, full.length - 8));
  const err = await t.throwsAsync(readCheckpoint(dir));
  t.true(err instanceof UserError && /truncated/.test(err.message));
  await t.throwsAsync(readCheckpoint(path.join(dir, 'nope')), { instanceOf: UserError });
});

test('a numerical failure inside a head is reported with the episode index', async (t) => {
  const { evaluate } = await import('../src/eval/evaluator.ts');
  const { NumericalError } = await import('../src/util/errors.ts');
  let calls = 0;
  const method = {
    inferenceModes: ['plain'],
    predict: () => {
      if (calls++ === 1) throw new NumericalError('solver did not converge');
      return {
        plain: tf.tensor2d([
          [1, 0],
          [0, 1],
        ]),
      };
    },
  } as unknown as Parameters<typeof evaluate>[0];
  const source = { imageSize: 2, gather: (items: ArrayLike<number>) => new Float32Array(items.length * 12) };
  const spec = { way: 2, shot: 1, query: 1 };
  const list = { count: 3, spec, get: () => ({ spec, support: new Int32Array([0, 1]), query: new Int32Array([0, 1]) }) };
  const err = t.throws(() => evaluate(method, source, list));
  t.true(err instanceof NumericalError);
  t.regex(err!.message, /solver did not converge \(evaluation episode 1\)/);
});
