import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/backend/select.ts';
import '../src/builtin.ts';
import { ResNet12 } from '../src/backbones/resnet12.ts';
import { dropBlock, dropBlockGamma, dropBlockKeepRate, dropBlockMask } from '../src/backbones/dropblock.ts';
import { getBackbone } from '../src/backbones/registry.ts';
import { checkpointKey } from '../src/backbones/layers.ts';

test.before(async () => {
  await selectBackend('wasm'); // XNNPACK convolutions: the 84 px full-width forward takes ~2 s instead of ~20 s
});

test('ResNet-12 embeddings are 16,000-d at 84 px and 2,560-d at 32 px (narrow: 8,000 / 1,280)', (t) => {
  for (const [size, variant, dim] of [
    [84, 'standard', 16000],
    [32, 'standard', 2560],
    [84, 'narrow', 8000],
    [32, 'narrow', 1280],
  ] as const) {
    const net = new ResNet12({ seed: 0, imageSize: size, variant });
    t.is(net.embeddingDim(size), dim);
    const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const e = net.apply(x, false);
    t.deepEqual(e.shape, [2, dim]);
    t.true(Number.isFinite(tf.sum(e).dataSync()[0]));
    tf.dispose([x, e, ...net.trainableVariables(), ...net.stateVariables()]);
  }
  const full = getBackbone('resnet12').create({ imageSize: 84, seed: 0 });
  // MetaOptNet's ResNet-12 has 12.4M parameters: 3×3 convs + 1×1 shortcuts + BN affine.
  t.is(
    full.trainableVariables().reduce((s, v) => s + v.size, 0),
    12424320,
  );
  t.is(getBackbone('resnet12-narrow').create({ imageSize: 32, seed: 0 }).id, 'resnet12-narrow');
  t.true(full.trainableVariables().every((v) => checkpointKey(v).startsWith('resnet12/block')));
});

test('ResNet-12 is seeded, trains through dropout/DropBlock, and is the identity of its regularisers at eval', (t) => {
  const make = (dropRate: number) => new ResNet12({ seed: 7, imageSize: 32, variant: 'narrow', dropRate, keepRateRampCalls: 2 });
  const a = make(0.1);
  const b = make(0.1);
  const plain = make(0);
  const x = tf.randomNormal([3, 32, 32, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
  // Eval: no dropout/DropBlock, running batch-norm statistics: identical to the unregularised twin.
  t.deepEqual(Array.from(a.apply(x, false).dataSync()), Array.from(plain.apply(x, false).dataSync()));
  t.is(a.trainingCalls.dataSync()[0], 0, 'eval calls do not advance the schedule');
  // Training: the same seed and call count give the same masks; the regularisers change the output.
  const ta = a.apply(x, true).dataSync();
  const tb = b.apply(x, true).dataSync();
  const tp = plain.apply(x, true).dataSync();
  t.deepEqual(Array.from(ta), Array.from(tb));
  t.notDeepEqual(Array.from(ta), Array.from(tp));
  t.is(a.trainingCalls.dataSync()[0], 1);
  t.true(a.stateVariables().includes(a.trainingCalls), 'the call counter is checkpointed state');
  // The next call draws new masks (same weights; batch-norm running stats do not affect training mode).
  const ta2 = a.apply(x, true).dataSync();
  t.notDeepEqual(Array.from(ta2), Array.from(ta));
  // Gradients reach every trainable variable through the regularisers.
  const { grads } = tf.variableGrads(() => tf.sum(a.apply(x, true)) as tf.Scalar, a.trainableVariables());
  t.is(Object.keys(grads).length, a.trainableVariables().length);
  t.true(Object.values(grads).every((g) => Number.isFinite(tf.sum(g).dataSync()[0])));
  // After the (shortened) ramp the keep rate sits at 1 − dropRate.
  t.true(Math.abs(a.currentKeepRate() - 0.9) < 1e-12);
});

test('DropBlock keep-rate schedule and seed rate follow MetaOptNet', (t) => {
  t.is(dropBlockKeepRate(0), 1);
  t.true(Math.abs(dropBlockKeepRate(20000) - 0.95) < 1e-12);
  t.true(Math.abs(dropBlockKeepRate(40000) - 0.9) < 1e-12);
  t.is(dropBlockKeepRate(1e7), 0.9);
  // γ = (1 − keep)/bs² · W²/(W − bs + 1)²: 84 px block 3 (10×10 map, bs 5) and block 4 (5×5, bs 5).
  t.true(Math.abs(dropBlockGamma(0.9, 5, 10) - (0.1 / 25) * (100 / 36)) < 1e-15);
  t.true(Math.abs(dropBlockGamma(0.9, 5, 5) - 0.1) < 1e-15);
});

test('DropBlock masks drop exactly the bs×bs blocks anchored at the Bernoulli seeds', (t) => {
  const shape: [number, number, number, number] = [2, 9, 9, 3];
  const bs = 3;
  const gamma = 0.05;
  const seed = 'block-shape-test';
  const mask = dropBlockMask(shape, bs, gamma, seed).arraySync();
  // Recreate the same seed grid (same generator, same seed string) and paint the blocks by hand.
  const seeds = tf.randomUniform([2, 9 - bs + 1, 9 - bs + 1, 3], 0, 1, 'float32', seed).arraySync() as number[][][][];
  let nSeeds = 0;
  for (let b = 0; b < 2; b++)
    for (let c = 0; c < 3; c++) {
      for (let h = 0; h < 9; h++)
        for (let w = 0; w < 9; w++) {
          let dropped = false;
          for (let i = Math.max(0, h - bs + 1); i <= Math.min(h, 9 - bs); i++)
            for (let j = Math.max(0, w - bs + 1); j <= Math.min(w, 9 - bs); j++) if (seeds[b][i][j][c] < gamma) dropped = true;
          t.is(mask[b][h][w][c], dropped ? 0 : 1, `${b},${h},${w},${c}`);
        }
      for (let i = 0; i <= 9 - bs; i++) for (let j = 0; j <= 9 - bs; j++) if (seeds[b][i][j][c] < gamma) nSeeds++;
    }
  t.true(nSeeds >= 2, `the test needs some seeds (${nSeeds})`);
  // With γ = 1 every seed fires and every cell is covered by some block.
  const lone = dropBlockMask([1, 7, 7, 1], bs, 1, 'all-seeds').dataSync();
  t.is(
    Array.from(lone).reduce((s, v) => s + v, 0),
    0,
    'γ = 1 drops everything',
  );
});

test('DropBlock keeps about the target fraction and rescales to preserve the mean', (t) => {
  // 84 px, block 3 geometry: 10×10 maps, block size 5, keep rate 0.9.
  const [b, h, w, c] = [32, 10, 10, 64];
  const bs = 5;
  const gamma = dropBlockGamma(0.9, bs, h);
  const mask = dropBlockMask([b, h, w, c], bs, gamma, 'stats');
  const kept = tf.mean(mask).dataSync()[0];
  // Exact expectation: a cell is kept iff none of the seed positions whose block covers it fires.
  let expected = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const rows = Math.min(y, h - bs) - Math.max(0, y - bs + 1) + 1;
      const cols = Math.min(x, w - bs) - Math.max(0, x - bs + 1) + 1;
      expected += Math.pow(1 - gamma, rows * cols);
    }
  expected /= h * w;
  const sd = Math.sqrt((expected * (1 - expected)) / (b * c)) * bs; // blocks correlate cells: generous
  t.true(Math.abs(kept - expected) < 4 * sd, `kept ${kept} vs expected ${expected} (±${4 * sd})`);
  t.true(Math.abs(kept - 0.9) < 0.04, `kept fraction ${kept} near the keep rate 0.9`);
  const ones = tf.ones([b, h, w, c]) as tf.Tensor4D;
  const out = dropBlock(ones, bs, gamma, 'stats');
  t.true(Math.abs(tf.mean(out).dataSync()[0] - 1) < 1e-5, 'rescaled by #elements / #kept');
  t.is(dropBlock(ones, bs, 0, 'x'), ones, 'γ = 0 is the identity');
  tf.dispose([mask, ones, out]);
});
