/**
 * The SLA transformed-copies kernel (src/backend/wasm/image_copies.ts) against the stock-op composition on the
 * cpu backend. Every copy is a permutation of the input, so values must be bit-identical (inputs are distinct
 * random floats, so any misplaced element shows). The gradient (sum over copies of each inverse permutation)
 * adds the same M float32 terms per element as the composed ops' gradient; it is compared to 1 ulp-level
 * (relative 1e-6) and is checked exactly against a float64 reference summed from the cpu composition's parts.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '../src/tf-gradients.ts';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../src/backend/select.ts';
import { TRANSFORM_COPIES, TRANSFORM_COPIES_GRAD, transformCopies } from '../src/backend/wasm/image_copies.ts';
import { setNativeKernelsEnabled } from '../src/backend/wasm/native.ts';
import { BUILTIN_TRANSFORM_SETS } from '../src/transforms/builtin.ts';
import type { TransformSet } from '../src/transforms/contract.ts';
import { expandImages } from '../src/transforms/expand.ts';
import { UserError } from '../src/util/errors.ts';

test.before(async () => {
  await selectBackend('wasm');
});

/** Seeded uniform values (distinct with overwhelming probability), generated on cpu. */
async function randu(shape: number[], seed: number): Promise<Float32Array> {
  await tf.setBackend('cpu');
  return tf.tidy(() => tf.randomUniform(shape, -1, 1, 'float32', seed).dataSync() as Float32Array).slice();
}

/** The same set with its pixel permutations hidden, so expandImages composes each transform's own ops. */
function composedOnly(set: TransformSet): TransformSet {
  return { ...set, transforms: set.transforms.map((t) => ({ name: t.name, isIdentity: t.isIdentity, needsSquare: t.needsSquare, apply: t.apply })) };
}

interface Run {
  y: Float32Array;
  dx: Float32Array;
  kernels: string[];
}

/** expandImages and the gradient of sum(expand(x) * w) on a backend; which kernels ran; no tensor leaked. */
async function expandOn(backend: string, set: TransformSet, x: Float32Array, shape: number[], w: Float32Array): Promise<Run> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  let y: Float32Array = new Float32Array();
  let dx: Float32Array = new Float32Array();
  const profile = await tf.profile(() => {
    tf.tidy(() => {
      const xt = tf.tensor4d(x, shape as [number, number, number, number]);
      const wt = tf.tensor(w, [shape[0] * set.transforms.length, ...shape.slice(1)]);
      y = expandImages(set, xt).dataSync() as Float32Array;
      dx = tf
        .grad((v: tf.Tensor) => tf.sum(tf.mul(expandImages(set, v as tf.Tensor4D), wt)))(xt)
        .dataSync() as Float32Array;
    });
  });
  if (tf.memory().numTensors !== before) throw new Error(`${backend}: ${tf.memory().numTensors - before} tensors leaked`);
  return { y: y.slice(), dx: dx.slice(), kernels: profile.kernelNames };
}

/** dx[b] = sum_j copy_j^{-1}(w[b·M + j]) in float64, each copy's index map taken from the composed ops on cpu. */
async function referenceGrad(set: TransformSet, shape: number[], w: Float32Array): Promise<Float64Array> {
  // The gradient of a permutation is its inverse: scatter w's block j back through copy j's index map, found by
  // applying the composed transform to the element indices themselves.
  await tf.setBackend('cpu');
  const [B, H, W, C] = shape;
  const M = set.transforms.length;
  const img = H * W * C;
  const index = tf.tidy(() => tf.reshape(tf.range(0, img, 1, 'float32'), [1, H, W, C]) as tf.Tensor4D);
  const maps = set.transforms.map((t) => tf.tidy(() => t.apply(index).dataSync() as Float32Array).slice());
  index.dispose();
  const dx = new Float64Array(B * img);
  for (let b = 0; b < B; b++) for (let j = 0; j < M; j++) for (let i = 0; i < img; i++) dx[b * img + maps[j][i]] += w[(b * M + j) * img + i];
  return dx;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1e-12;
  let d = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    d = Math.max(d, Math.abs(a[i] - b[i]));
  }
  return d / scale;
}

const CASES: Array<{ set: string; shape: number[] }> = [
  { set: 'rotation', shape: [5, 7, 7, 3] },
  { set: 'rotation', shape: [2, 84, 84, 3] },
  { set: 'rotation2', shape: [3, 5, 8, 3] },
  { set: 'color_perm', shape: [3, 6, 4, 3] },
  { set: 'color_perm3', shape: [4, 5, 5, 3] },
  { set: 'rot_color_perm6', shape: [3, 4, 9, 3] },
  { set: 'rot_color_perm12', shape: [2, 6, 6, 3] },
  { set: 'rot_color_perm24', shape: [3, 5, 5, 3] },
];

for (const [mode, native] of [
  ['SIMD', true],
  ['JS fallback', false],
] as const) {
  test.serial(`${mode}: every built-in set's copies equal the composed ops on cpu bit for bit, and so does the gradient to 1e-6`, async (t) => {
    setNativeKernelsEnabled(native);
    try {
      for (const [n, { set: name, shape }] of CASES.entries()) {
        const set = BUILTIN_TRANSFORM_SETS.find((s) => s.name === name)!;
        const x = await randu(shape, 10 + n);
        const w = await randu([shape[0] * set.transforms.length, ...shape.slice(1)], 100 + n);
        const wasm = await expandOn('wasm', set, x, shape, w);
        const cpu = await expandOn('cpu', set, x, shape, w);
        const label = `${name} [${shape}]`;
        t.true(wasm.kernels.includes(TRANSFORM_COPIES) && wasm.kernels.includes(TRANSFORM_COPIES_GRAD), `${label}: the kernel ran on wasm`);
        t.false(cpu.kernels.includes(TRANSFORM_COPIES), `${label}: cpu composed the stock ops`);
        t.deepEqual(wasm.y, cpu.y, `${label}: copies differ`);
        t.true(maxRelDiff(wasm.dx, cpu.dx) <= 1e-6, `${label}: gradient differs from cpu's by ${maxRelDiff(wasm.dx, cpu.dx)}`);
        const ref = await referenceGrad(set, shape, w);
        // M float32 additions of terms of size <= 1 against the float64 sum: well within 1e-6 relative.
        t.true(maxRelDiff(wasm.dx, ref) <= 1e-6, `${label}: gradient off the float64 reference by ${maxRelDiff(wasm.dx, ref)}`);
      }
    } finally {
      setNativeKernelsEnabled(true);
    }
  });
}

test.serial('the kernel is taken on wasm only for float32 pixel permutations; other backends get null', async (t) => {
  await tf.setBackend('cpu');
  t.is(transformCopies(tf.zeros([1, 2, 2, 3]) as tf.Tensor4D, [{ quarterTurns: 1, channels: [0, 1, 2] }]), null);
  await tf.setBackend('wasm');
  t.is(transformCopies(tf.zeros([1, 2, 2, 3], 'int32') as tf.Tensor4D, [{ quarterTurns: 1, channels: [0, 1, 2] }]), null);
  const y = transformCopies(tf.zeros([2, 2, 2, 3]) as tf.Tensor4D, [
    { quarterTurns: 0, channels: [0, 1, 2] },
    { quarterTurns: 3, channels: [2, 1, 0] },
  ]);
  t.deepEqual(y?.shape, [4, 2, 2, 3]);
  tf.disposeVariables();
});

test.serial('a quarter turn of non-square images and a bad channel order are UserErrors naming the fix', async (t) => {
  await tf.setBackend('wasm');
  const x = tf.zeros([1, 4, 6, 3]) as tf.Tensor4D;
  const e1 = t.throws(() => transformCopies(x, [{ quarterTurns: 1, channels: [0, 1, 2] }]), { instanceOf: UserError });
  t.regex(e1!.message, /needs square images, got 4×6[\s\S]*fix: resize or crop/);
  const e2 = t.throws(() => transformCopies(x, [{ quarterTurns: 2, channels: [0, 0, 2] }]), { instanceOf: UserError });
  t.regex(e2!.message, /not a permutation[\s\S]*fix: give each of 0\.\.2 exactly once/);
  x.dispose();
});

test.serial('a set with a transform of its own (no pixel permutation) still expands through its ops on wasm', async (t) => {
  const rotation = BUILTIN_TRANSFORM_SETS.find((s) => s.name === 'rotation')!;
  const mixed: TransformSet = { ...rotation, transforms: [...rotation.transforms.slice(0, 3), composedOnly(rotation).transforms[3]] };
  const shape = [2, 5, 5, 3];
  const x = await randu(shape, 7);
  const w = await randu([8, 5, 5, 3], 8);
  const wasm = await expandOn('wasm', mixed, x, shape, w);
  const cpu = await expandOn('cpu', rotation, x, shape, w);
  t.false(wasm.kernels.includes(TRANSFORM_COPIES));
  t.deepEqual(wasm.y, cpu.y);
});
