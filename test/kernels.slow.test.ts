/**
 * The wasm training kernels (src/backend/wasm) against the cpu backend: forward values and gradients of the
 * ops a Conv-4 / ResNet-12 training step uses, on the same random inputs, moved between backends as JS arrays.
 *
 * Tolerance: for every output tensor, max|wasm - cpu| / max(|cpu|, 1e-6) < 1e-4 (float32 XNNPACK GEMMs sum in
 * a different order than the cpu backend's float64 loops). Max-pool gradients and tiles must match exactly.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node build has no gradient definitions; the project registers them here.
import '../src/tf-gradients.ts';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../src/backend/select.ts';
import { batchNormTraining } from '../src/backend/wasm/batch_norm.ts';
import { batchNormActPool, batchNormActPoolInference } from '../src/backend/wasm/batch_norm_pool.ts';
import { convChunking } from '../src/backend/wasm/conv_geometry.ts';
import { setNativeKernelsEnabled } from '../src/backend/wasm/native.ts';
import { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from '../src/backend/wasm/register.ts';
import { winogradConfig } from '../src/backend/wasm/winograd.ts';
import { UserError } from '../src/util/errors.ts';
import { WasmHeapExhaustedError } from '../src/backend/wasm/heap.ts';
import { explicitPad, relativeError, runOn } from './fixtures/backend-outputs.ts';

const TOL = 1e-4;

// Every test switches the global backend, so they run serially (ava would otherwise interleave them at awaits).

test.before(async () => {
  await selectBackend('wasm');
});

interface Data {
  values: number[];
  shape: number[];
}

/** Seeded normal data, generated on cpu so both backends see identical inputs. */
async function randn(shape: number[], seed: number, transform?: (t: tf.Tensor) => tf.Tensor): Promise<Data> {
  await tf.setBackend('cpu');
  const values = tf.tidy(() => {
    const t = tf.randomNormal(shape, 0, 1, 'float32', seed);
    return Array.from((transform ? transform(t) : t).dataSync());
  });
  return { values, shape };
}

const toTensor = (d: Data): tf.Tensor => tf.tensor(d.values, d.shape);

/** Asserts every output of `f` agrees between wasm and cpu; returns the worst relative error. */
async function agree(t: { true: (c: boolean, m?: string) => void }, label: string, f: () => tf.Tensor[], tol = TOL): Promise<number> {
  const wasm = await runOn('wasm', f);
  const cpu = await runOn('cpu', f);
  let worst = 0;
  wasm.forEach((w, i) => {
    const err = relativeError(w, cpu[i]);
    worst = Math.max(worst, err);
    t.true(err <= tol, `${label}: output ${i} relative error ${err} > ${tol}`);
  });
  return worst;
}

const CONV_CASES: Array<{ x: number[]; f: number[]; stride: number | [number, number]; pad: 'same' | 'valid' | tf.backend_util.ExplicitPadding }> = [
  { x: [2, 9, 9, 3], f: [3, 3, 3, 8], stride: 1, pad: 'same' },
  { x: [3, 8, 8, 5], f: [3, 3, 5, 4], stride: 1, pad: 'valid' },
  { x: [2, 8, 8, 4], f: [3, 3, 4, 6], stride: 2, pad: 'same' },
  { x: [2, 9, 7, 3], f: [3, 3, 3, 5], stride: 2, pad: 'same' },
  { x: [2, 9, 7, 3], f: [3, 2, 3, 4], stride: 2, pad: 'valid' },
  { x: [2, 10, 10, 3], f: [2, 2, 3, 4], stride: [2, 1], pad: 'valid' },
  { x: [2, 6, 6, 8], f: [1, 1, 8, 16], stride: 1, pad: 'valid' },
  { x: [1, 6, 5, 2], f: [3, 3, 2, 3], stride: 1, pad: explicitPad(2, 1, 0, 2) },
  { x: [1, 7, 7, 2], f: [5, 5, 2, 3], stride: 1, pad: 'same' },
  // Fewer filter taps than output channels (K = 18 < 24): the transposed-product path of the filter gradient.
  { x: [3, 9, 9, 2], f: [3, 3, 2, 24], stride: 2, pad: 'same' },
  { x: [2, 8, 8, 3], f: [3, 3, 3, 32], stride: 1, pad: 'valid' },
  // Three input channels, stride 1, 16k output channels: the direct RGB filter-gradient kernel (padded copy).
  { x: [3, 11, 9, 3], f: [3, 3, 3, 16], stride: 1, pad: 'same' },
  { x: [2, 7, 8, 3], f: [3, 3, 3, 32], stride: 1, pad: explicitPad(2, 0, 1, 1) },
];

for (const [i, c] of CONV_CASES.entries()) {
  test.serial(`conv2d value and gradients match cpu: x ${c.x} filter ${c.f} stride ${c.stride} pad ${JSON.stringify(c.pad)}`, async (t) => {
    const x = await randn(c.x, 10 + i);
    const f = await randn(c.f, 20 + i);
    // A non-uniform upstream gradient, so every output position's dy differs.
    await agree(t, 'conv2d', () => {
      const xs = toTensor(x) as tf.Tensor4D;
      const fs = toTensor(f) as tf.Tensor4D;
      const loss = (a: tf.Tensor, b: tf.Tensor) => {
        const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad);
        return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
      };
      const [dx, df] = tf.grads(loss)([xs, fs]);
      return [tf.conv2d(xs, fs, c.stride, c.pad), dx, df];
    });
  });
}

test.serial('conv2d gradients accumulate correctly over several batch chunks (both filter-gradient paths, strided input gradient)', async (t) => {
  const saved = { ...convChunking };
  Object.assign(convChunking, { filterGradColumns: 100, filterGradMaxFloats: 5000, inputGradMaxFloats: 3000 });
  try {
    for (const [i, c] of [
      { x: [5, 9, 9, 4], f: [3, 3, 4, 3], stride: 1 },
      { x: [5, 9, 9, 1], f: [3, 3, 1, 16], stride: 1 },
      { x: [5, 10, 10, 4], f: [3, 3, 4, 6], stride: 2 },
    ].entries()) {
      const x = await randn(c.x, 120 + i);
      const f = await randn(c.f, 130 + i);
      await agree(t, `chunked ${c.x}`, () =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) => {
          const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, 'same');
          return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
        })([toTensor(x), toTensor(f)]),
      );
    }
  } finally {
    Object.assign(convChunking, saved);
  }
});

// Winograd F(4x4, 3x3) (stride-1 3x3, channels % 4 == 0 and >= winogradConfig.minChannels): spatial sizes that
// are and are not multiples of the 4x4 tile, one-pixel images, every padding, several image chunks.
const WINOGRAD_CASES: Array<{ x: number[]; f: number[]; pad: 'same' | 'valid' | tf.backend_util.ExplicitPadding; chunkFloats?: number }> = [
  { x: [2, 8, 8, 16], f: [3, 3, 16, 16], pad: 'same' },
  { x: [3, 5, 7, 16], f: [3, 3, 16, 20], pad: 'same' },
  { x: [2, 11, 10, 20], f: [3, 3, 20, 16], pad: 'valid' },
  { x: [2, 1, 1, 16], f: [3, 3, 16, 16], pad: 'same' },
  { x: [1, 6, 9, 16], f: [3, 3, 16, 16], pad: explicitPad(2, 0, 0, 2) },
  { x: [5, 9, 6, 16], f: [3, 3, 16, 24], pad: 'same', chunkFloats: 36 * 9 * 24 * 2 },
  { x: [4, 21, 21, 16], f: [3, 3, 16, 16], pad: 'same', chunkFloats: 36 * 36 * 16 },
];

for (const [i, c] of WINOGRAD_CASES.entries()) {
  test.serial(
    `winograd conv2d value and gradients match cpu: x ${c.x} filter ${c.f} pad ${JSON.stringify(c.pad)}${c.chunkFloats ? ' in chunks' : ''}`,
    async (t) => {
      const x = await randn(c.x, 300 + i);
      const f = await randn(c.f, 320 + i);
      const saved = { ...winogradConfig };
      Object.assign(winogradConfig, { enabled: true, chunkFloats: c.chunkFloats ?? saved.chunkFloats });
      try {
        await agree(t, 'winograd conv2d', () => {
          const xs = toTensor(x) as tf.Tensor4D;
          const fs = toTensor(f) as tf.Tensor4D;
          const loss = (a: tf.Tensor, b: tf.Tensor) => {
            const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, c.pad);
            return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
          };
          const [dx, df] = tf.grads(loss)([xs, fs]);
          return [tf.conv2d(xs, fs, 1, c.pad), dx, df];
        });
      } finally {
        Object.assign(winogradConfig, saved);
      }
    },
  );
}

const MATMUL_CASES: Array<{ a: number[]; b: number[]; ta: boolean; tb: boolean }> = [
  { a: [7, 5], b: [7, 9], ta: true, tb: false },
  { a: [6, 11], b: [4, 11], ta: false, tb: true },
  { a: [8, 3], b: [5, 8], ta: true, tb: true },
  { a: [6, 4], b: [4, 5], ta: false, tb: false },
  // Batched (tfjs' matMul gradient does not reduce broadcast batch dimensions, so equal ones).
  { a: [3, 5, 4], b: [3, 5, 6], ta: true, tb: false },
  { a: [2, 4, 7], b: [2, 3, 7], ta: false, tb: true },
  // A MetaOptNet head's shapes at SLA size (scaled down in width): support Gram and query-support scores.
  { a: [100, 96], b: [100, 96], ta: false, tb: true },
  { a: [120, 100], b: [120, 96], ta: true, tb: false },
];

for (const [i, c] of MATMUL_CASES.entries()) {
  test.serial(`matMul value and gradients match cpu: a ${c.a}${c.ta ? 'ᵀ' : ''} b ${c.b}${c.tb ? 'ᵀ' : ''}`, async (t) => {
    const a = await randn(c.a, 300 + i);
    const b = await randn(c.b, 320 + i);
    const product = (x: tf.Tensor, y: tf.Tensor) => (x.rank === 2 ? tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D, c.ta, c.tb) : tf.matMul(x, y, c.ta, c.tb));
    await agree(t, 'matMul', () => {
      const [xa, xb] = [toTensor(a), toTensor(b)];
      const loss = (x: tf.Tensor, y: tf.Tensor) => {
        const p = product(x, y);
        return tf.sum(tf.mul(p, tf.sin(tf.reshape(tf.range(0, p.size), p.shape))));
      };
      return [product(xa, xb), ...tf.grads(loss)([xa, xb])];
    });
  });
}

test.serial('transposed matMul takes the transpose-first path and equals the stock kernel on wasm', async (t) => {
  const { batchMatMulConfig } = await import('../src/backend/wasm/batch_mat_mul.ts');
  const a = await randn([40, 33], 340);
  const b = await randn([50, 33], 341);
  const run = async (transposeFirst: boolean) => {
    batchMatMulConfig.transposeFirst = transposeFirst;
    return runOn('wasm', () => [tf.matMul(toTensor(a) as tf.Tensor2D, toTensor(b) as tf.Tensor2D, false, true)]);
  };
  try {
    const [ours] = await run(true);
    const [stock] = await run(false);
    t.true(relativeError(ours, stock) < 1e-5);
  } finally {
    batchMatMulConfig.transposeFirst = true;
  }
});

test.serial('inference batch norm (tf.batchNorm) matches cpu: per-channel and scalar parameters, with and without offset/scale', async (t) => {
  const x4 = await randn([3, 5, 4, 8], 360);
  const x2 = await randn([7, 6], 361);
  const stats = await randn([8], 362);
  const positive = await randn([8], 363, (v) => tf.add(tf.abs(v), 0.1));
  await agree(t, 'batchNorm', () => {
    const x = toTensor(x4);
    const m = toTensor(stats);
    const v = toTensor(positive);
    return [
      tf.batchNorm(x, m, v, tf.neg(m), v, 1e-3),
      tf.batchNorm(x, m, v, undefined, undefined, 1e-3),
      tf.batchNorm(x, tf.scalar(0.5), tf.scalar(2), tf.scalar(-1), tf.scalar(3), 1e-5),
      tf.batchNorm(toTensor(x2), tf.slice(m, 0, 6), tf.slice(v, 0, 6), undefined, tf.slice(v, 2, 6), 1e-3),
    ];
  });
});

test.serial('winograd is really taken for those shapes and not for the RGB layer (the direct path gives different rounding)', async (t) => {
  const x = await randn([2, 8, 8, 16], 340);
  const f = await randn([3, 3, 16, 16], 341);
  const run = async (enabled: boolean) => {
    const saved = winogradConfig.enabled;
    winogradConfig.enabled = enabled;
    try {
      return (await runOn('wasm', () => [tf.conv2d(toTensor(x) as tf.Tensor4D, toTensor(f) as tf.Tensor4D, 1, 'same')]))[0];
    } finally {
      winogradConfig.enabled = saved;
    }
  };
  const viaWinograd = await run(true);
  const direct = await run(false);
  t.notDeepEqual(viaWinograd, direct);
  t.true(relativeError(viaWinograd, direct) < 1e-4);
});

test.serial('winograd plane padding (odd tile rows per plane) changes no bit of the conv, its input or its filter gradient', async (t) => {
  // 2 images of 16x16 = 32 tiles per plane (even): padded to 33 rows with oddPlanes, 32 without.
  const x = await randn([2, 16, 16, 16], 360);
  const f = await randn([3, 3, 16, 16], 361);
  const run = async (oddPlanes: boolean) => {
    winogradConfig.oddPlanes = oddPlanes;
    return runOn('wasm', () => {
      const [xs, fs] = [toTensor(x) as tf.Tensor4D, toTensor(f) as tf.Tensor4D];
      const loss = (a: tf.Tensor, b: tf.Tensor) => {
        const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same');
        return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
      };
      return [tf.conv2d(xs, fs, 1, 'same'), ...tf.grads(loss)([xs, fs])];
    });
  };
  try {
    const padded = await run(true);
    const plain = await run(false);
    padded.forEach((p, i) => t.deepEqual(p, plain[i], `output ${i}`));
  } finally {
    winogradConfig.oddPlanes = true;
  }
});

test.serial('conv2d input gradient alone (conv2dTranspose) matches cpu for stride 1 and 2', async (t) => {
  const dy = await randn([2, 4, 4, 6], 31);
  const f = await randn([3, 3, 5, 6], 32);
  await agree(t, 'conv2dTranspose', () => [
    tf.conv2dTranspose(toTensor(dy) as tf.Tensor4D, toTensor(f) as tf.Tensor4D, [2, 8, 8, 5], 2, 'same'),
    tf.conv2dTranspose(toTensor(dy) as tf.Tensor4D, toTensor(f) as tf.Tensor4D, [2, 4, 4, 5], 1, 'same'),
    tf.conv2dTranspose(toTensor(dy) as tf.Tensor4D, toTensor(f) as tf.Tensor4D, [2, 6, 6, 5], 1, 'valid'),
  ]);
});

const POOL_CASES: Array<{ x: number[]; size: number; stride: number; pad: 'same' | 'valid' }> = [
  { x: [2, 8, 8, 5], size: 2, stride: 2, pad: 'valid' },
  { x: [2, 7, 9, 3], size: 2, stride: 2, pad: 'same' },
  { x: [2, 7, 9, 3], size: 2, stride: 2, pad: 'valid' },
  { x: [2, 9, 9, 4], size: 3, stride: 2, pad: 'same' },
  { x: [1, 6, 6, 2], size: 3, stride: 1, pad: 'valid' },
];

for (const [i, c] of POOL_CASES.entries()) {
  for (const relu of [false, true]) {
    test.serial(`maxPool gradient matches cpu exactly: x ${c.x} size ${c.size} stride ${c.stride} ${c.pad}${relu ? ' after relu (ties)' : ''}`, async (t) => {
      const x = await randn(c.x, 40 + i, relu ? (v) => tf.relu(v) : undefined);
      await agree(
        t,
        'maxPool',
        () => {
          const xs = toTensor(x) as tf.Tensor4D;
          const loss = (a: tf.Tensor) => {
            const y = tf.maxPool(a as tf.Tensor4D, c.size, c.stride, c.pad);
            return tf.sum(tf.mul(y, tf.add(tf.reshape(tf.range(0, y.size), y.shape), 1)));
          };
          return [tf.maxPool(xs, c.size, c.stride, c.pad), tf.grad(loss)(xs)];
        },
        0,
      );
    });
  }
}

test.serial('maxPool gradient after relu really has tied windows (the tie-break is exercised)', async (t) => {
  const [N, H, W, C] = [2, 8, 8, 5];
  const x = await randn([N, H, W, C], 40, (v) => tf.relu(v));
  const at = (n: number, h: number, w: number, c: number) => x.values[((n * H + h) * W + w) * C + c];
  let tiedWindows = 0;
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < H; h += 2) {
      for (let w = 0; w < W; w += 2) {
        for (let c = 0; c < C; c++) {
          const vals = [at(n, h, w, c), at(n, h, w + 1, c), at(n, h + 1, w, c), at(n, h + 1, w + 1, c)];
          if (vals.filter((v) => v === Math.max(...vals)).length > 1) tiedWindows++;
        }
      }
    }
  }
  t.true(tiedWindows > 5, `only ${tiedWindows} tied windows`);
});

test.serial('batch norm in training mode (moments + batchNorm4d): value and gradients match cpu', async (t) => {
  const x = await randn([4, 6, 6, 8], 50);
  const gamma = await randn([8], 51);
  const beta = await randn([8], 52);
  await agree(t, 'batchNorm', () => {
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, [0, 1, 2]);
      const y = tf.batchNorm4d(a as tf.Tensor4D, mean as tf.Tensor1D, variance as tf.Tensor1D, b as tf.Tensor1D, g as tf.Tensor1D, 1e-5);
      return tf.sum(tf.mul(y, tf.cos(tf.reshape(tf.range(0, y.size), y.shape))));
    };
    const [xs, gs, bs] = [toTensor(x), toTensor(gamma), toTensor(beta)];
    const { value, grads } = tf.valueAndGrads(f)([xs, gs, bs]);
    return [value, ...grads];
  });
});

test.serial('relu, leakyRelu, avgPool: values and gradients match cpu', async (t) => {
  const x = await randn([2, 8, 8, 4], 60);
  await agree(t, 'activations', () => {
    const xs = toTensor(x) as tf.Tensor4D;
    const weight = tf.sin(tf.reshape(tf.range(0, xs.size), xs.shape));
    const g = (fn: (a: tf.Tensor) => tf.Tensor) => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(fn(a), weight)))(xs);
    const pooledWeight = tf.sin(tf.reshape(tf.range(0, 2 * 4 * 4 * 4), [2, 4, 4, 4]));
    return [
      tf.relu(xs),
      g(tf.relu),
      tf.leakyRelu(xs, 0.1),
      g((a) => tf.leakyRelu(a, 0.1)),
      tf.avgPool(xs, 2, 2, 'valid'),
      tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(a as tf.Tensor4D, 2, 2, 'valid'), pooledWeight)))(xs),
    ];
  });
});

test.serial('sum and mean over leading, middle, trailing, all and non-contiguous axes match cpu', async (t) => {
  const x = await randn([3, 4, 5, 6], 70);
  await agree(t, 'reduce', () => {
    const xs = toTensor(x);
    return [
      tf.sum(xs, [0, 1, 2]),
      tf.mean(xs, [0, 1, 2], true),
      tf.sum(xs, [1, 2]),
      tf.mean(xs, 3),
      tf.sum(xs),
      tf.mean(xs),
      tf.sum(xs, [0, 2]),
      tf.mean(xs, [-1, 1], true),
    ];
  });
  // Shapes, including keepDims.
  await tf.setBackend('wasm');
  tf.tidy(() => {
    const xs = toTensor(x);
    t.deepEqual(tf.mean(xs, [0, 1, 2], true).shape, [1, 1, 1, 6]);
    t.deepEqual(tf.sum(xs, [1, 2]).shape, [3, 6]);
    t.deepEqual(tf.sum(tf.cast(xs, 'int32'), [0, 1, 2]).dtype, 'int32');
  });
});

test.serial('tile matches cpu exactly for float32 and int32', async (t) => {
  const x = await randn([2, 1, 3], 80);
  await agree(
    t,
    'tile',
    () => {
      const xs = toTensor(x);
      return [
        tf.tile(xs, [1, 4, 2]),
        tf.tile(xs, [3, 2, 1]),
        tf.cast(tf.tile(tf.cast(tf.mul(xs, 10), 'int32'), [2, 2, 2]), 'float32'),
        tf.tile(tf.reshape(xs, [1, 1, 1, 6]), [2, 3, 4, 1]),
      ];
    },
    0,
  );
});

test.serial('a small Conv-4 style stack: loss and every variable gradient match cpu', async (t) => {
  const x = await randn([6, 16, 16, 3], 90);
  const filters = await Promise.all([3, 8, 8].map((cin, i) => randn([3, 3, cin, 8], 91 + i)));
  await agree(t, 'conv4', () => {
    const xs = toTensor(x) as tf.Tensor4D;
    const fs = filters.map(toTensor);
    const gammas = fs.map(() => tf.ones([8]));
    const betas = fs.map(() => tf.zeros([8]));
    const loss = (...params: tf.Tensor[]) => {
      let h: tf.Tensor4D = xs;
      for (let l = 0; l < fs.length; l++) {
        const c = tf.conv2d(h, params[l] as tf.Tensor4D, 1, 'same');
        const { mean, variance } = tf.moments(c, [0, 1, 2]);
        const bn = tf.batchNorm4d(c, mean as tf.Tensor1D, variance as tf.Tensor1D, params[6 + l] as tf.Tensor1D, params[3 + l] as tf.Tensor1D, 1e-5);
        const act = l === fs.length - 1 ? tf.leakyRelu(bn, 0.1) : tf.relu(bn);
        h = tf.maxPool(act, 2, 2, 'valid');
      }
      const emb = tf.reshape(h, [h.shape[0], -1]);
      return tf.mean(tf.square(tf.sub(emb, tf.mean(emb, 0))));
    };
    const { value, grads } = tf.valueAndGrads(loss)([...fs, ...gammas, ...betas]);
    return [value, ...grads];
  });
});

test.serial('registration is idempotent and installs every listed kernel on wasm', (t) => {
  registerWasmTrainingKernels();
  registerWasmTrainingKernels();
  for (const { kernelName, kernelFunc } of WASM_TRAINING_KERNELS) {
    t.is(tf.getKernel(kernelName, 'wasm')?.kernelFunc, kernelFunc, kernelName);
  }
  t.true(WASM_TRAINING_KERNELS.some((k) => k.kernelName === 'Conv2DBackpropFilter'));
});

test.serial('a Conv-4 training step on wasm leaks no tensors and no backend buffers', async (t) => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const filter = tf.variable(tf.randomNormal([3, 3, 3, 8], 0, 0.1, 'float32', 1));
  const gamma = tf.variable(tf.ones([8]));
  const beta = tf.variable(tf.zeros([8]));
  const x = tf.randomNormal([4, 8, 8, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
  const step = () => {
    const { value, grads } = tf.variableGrads(() => {
      const c = tf.conv2d(x, filter as tf.Tensor4D, 1, 'same');
      const { mean, variance } = tf.moments(c, [0, 1, 2]);
      const y = tf.maxPool(tf.relu(tf.batchNorm4d(c, mean as tf.Tensor1D, variance as tf.Tensor1D, beta as tf.Tensor1D, gamma as tf.Tensor1D)), 2, 2, 'valid');
      return tf.mean(y) as tf.Scalar;
    }, [filter, gamma, beta]);
    value.dispose();
    tf.dispose(Object.values(grads));
  };
  step();
  const tensors = tf.memory().numTensors;
  const buffers = backend.numDataIds();
  step();
  step();
  t.is(tf.memory().numTensors, tensors);
  t.is(backend.numDataIds(), buffers);
  tf.dispose([filter, gamma, beta, x]);
});

test.serial('unsupported layouts are a UserError naming the fix', async (t) => {
  await tf.setBackend('wasm');
  const err = t.throws(
    () =>
      tf.tidy(() =>
        tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.zeros([1, 3, 4, 4]), dy: tf.zeros([1, 2, 4, 4]) }, {
          strides: 1,
          pad: 'same',
          dataFormat: 'NCHW',
          filterShape: [3, 3, 3, 2],
        } as unknown as tf.NamedAttrMap),
      ),
    { instanceOf: UserError },
  );
  t.regex(err?.message ?? '', /NHWC/);
});

for (const activation of ['linear', 'relu', 'leakyRelu'] as const) {
  test.serial(`fused batchNormTraining (${activation}) on wasm and cpu equals tf.moments + tf.batchNorm on cpu, with gradients`, async (t) => {
    const x = await randn([4, 5, 5, 6], 100, (v) => tf.add(tf.mul(v, 2), 0.5));
    const gamma = await randn([6], 101);
    const beta = await randn([6], 102);
    // The loss also uses mean and variance, so their upstream gradients are non-zero.
    const lossOf = (y: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor) =>
      tf.add(tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape)))), tf.sum(tf.mul(mean, variance)));
    const fused = () => {
      const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const r = batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, { varianceEpsilon: 1e-5, activation, alpha: 0.1 });
        return lossOf(r.y, r.mean, r.variance);
      };
      const r = batchNormTraining(toTensor(x), toTensor(gamma) as tf.Tensor1D, toTensor(beta) as tf.Tensor1D, {
        varianceEpsilon: 1e-5,
        activation,
        alpha: 0.1,
      });
      const { value, grads } = tf.valueAndGrads(f)([toTensor(x), toTensor(gamma), toTensor(beta)]);
      return [r.y, r.mean, r.variance, value, ...grads];
    };
    const composed = () => {
      const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { mean, variance } = tf.moments(a, [0, 1, 2]);
        const pre = tf.batchNorm(a, mean, variance, b as tf.Tensor1D, g as tf.Tensor1D, 1e-5);
        const y = activation === 'relu' ? tf.relu(pre) : activation === 'leakyRelu' ? tf.leakyRelu(pre, 0.1) : pre;
        return { y, mean, variance };
      };
      const r = f(toTensor(x), toTensor(gamma), toTensor(beta));
      const { value, grads } = tf.valueAndGrads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const o = f(a, g, b);
        return lossOf(o.y, o.mean, o.variance);
      })([toTensor(x), toTensor(gamma), toTensor(beta)]);
      return [r.y, r.mean, r.variance, value, ...grads];
    };
    const reference = await runOn('cpu', composed);
    for (const backend of ['wasm', 'cpu']) {
      const got = await runOn(backend, fused);
      got.forEach((g, i) => {
        const err = relativeError(g, reference[i]);
        t.true(err <= TOL, `${backend} output ${i}: relative error ${err}`);
      });
    }
  });
}

// Fused batch norm + activation + 2x2 max pool against the unfused composition on cpu: odd sizes (a dropped last
// row/column), every activation, channels that are (SIMD) and are not (JS loops) a multiple of 4.
for (const [i, c] of (
  [
    { x: [3, 6, 8, 8], activation: 'relu' },
    { x: [2, 7, 5, 12], activation: 'leakyRelu' },
    { x: [2, 5, 6, 6], activation: 'linear' },
    { x: [4, 10, 10, 64], activation: 'relu' },
  ] as const
).entries()) {
  test.serial(`fused batch norm + ${c.activation} + max pool equals batchNormTraining + tf.maxPool on cpu, with gradients: x ${c.x}`, async (t) => {
    const x = await randn([...c.x], 400 + i);
    const gamma = await randn([c.x[3]], 410 + i, (v) => tf.add(tf.mul(v, 0.3), 1));
    const beta = await randn([c.x[3]], 420 + i, (v) => tf.mul(v, 0.3));
    const w = await randn([c.x[0], Math.floor(c.x[1] / 2), Math.floor(c.x[2] / 2), c.x[3]], 430 + i);
    const run = (fused: boolean) => () => {
      const opts = { varianceEpsilon: 1e-3, activation: c.activation, alpha: 0.1 };
      const loss = (xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const y = fused
          ? batchNormActPool(xs as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, opts).y
          : tf.maxPool(batchNormTraining(xs as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, opts).y, 2, 2, 'valid');
        return tf.sum(tf.mul(y, toTensor(w)));
      };
      const { value, grads } = tf.valueAndGrads(loss)([toTensor(x), toTensor(gamma), toTensor(beta)]);
      return [value, ...grads];
    };
    const cpu = await runOn('cpu', run(false));
    for (const backend of ['wasm', 'cpu']) {
      const fused = await runOn(backend, run(true));
      fused.forEach((f, k) => t.true(relativeError(f, cpu[k]) <= TOL, `${backend} output ${k}: ${relativeError(f, cpu[k])}`));
    }
  });
}

test.serial('fused inference batch norm + activation + max pool equals tf.batchNorm + activation + tf.maxPool on cpu', async (t) => {
  for (const [i, c] of (
    [
      { x: [3, 9, 8, 16], activation: 'relu' },
      { x: [2, 6, 7, 8], activation: 'leakyRelu' },
      { x: [2, 4, 4, 6], activation: 'linear' },
    ] as const
  ).entries()) {
    const x = await randn([...c.x], 440 + i);
    const stats = await Promise.all([0, 1, 2, 3].map((k) => randn([c.x[3]], 450 + 4 * i + k, (v) => (k === 1 ? tf.add(tf.abs(v), 0.2) : v))));
    await agree(t, `inference ${c.activation} ${c.x}`, () => {
      const [mean, variance, gamma, beta] = stats.map((d) => toTensor(d) as tf.Tensor1D);
      return [
        batchNormActPoolInference(toTensor(x) as tf.Tensor4D, { mean, variance, gamma, beta }, { varianceEpsilon: 1e-3, activation: c.activation, alpha: 0.1 }),
      ];
    });
  }
});

test.serial('batchNormTraining rejects a scale of the wrong length', async (t) => {
  await tf.setBackend('wasm');
  t.throws(() => tf.tidy(() => batchNormTraining(tf.zeros([2, 3, 3, 4]), tf.ones([3]), tf.zeros([3])).y), { instanceOf: UserError });
});

test.serial('the JS fallbacks (SIMD helper module off) agree with cpu too: conv/max-pool grads, reductions, fused batch norm', async (t) => {
  setNativeKernelsEnabled(false);
  try {
    const x = await randn([3, 7, 8, 6], 110, (v) => tf.relu(v));
    const gamma = await randn([6], 111);
    const beta = await randn([6], 112);
    const filter = await randn([3, 3, 6, 5], 113);
    const convGrads = () =>
      [1, 2].flatMap((stride) =>
        tf.grads((a: tf.Tensor, f: tf.Tensor) => {
          const y = tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, stride, 'same');
          return tf.sum(tf.mul(y, tf.cos(tf.reshape(tf.range(0, y.size), y.shape))));
        })([toTensor(x), toTensor(filter)]),
      );
    const wasm = await runOn('wasm', () => {
      const xs = toTensor(x) as tf.Tensor4D;
      const pool = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, 2, 2, 'same'), 3)))(xs);
      const bn = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, { activation: 'relu' }).y, tf.sin(tf.reshape(tf.range(0, a.size), a.shape)))),
      )([xs, toTensor(gamma), toTensor(beta)]);
      return [pool, tf.sum(xs, [0, 1, 2]), tf.mean(xs, [1, 2]), ...bn, ...convGrads()];
    });
    setNativeKernelsEnabled(true);
    const cpu = await runOn('cpu', () => {
      const xs = toTensor(x) as tf.Tensor4D;
      const pool = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, 2, 2, 'same'), 3)))(xs);
      const bn = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { mean, variance } = tf.moments(a, [0, 1, 2]);
        const y = tf.relu(tf.batchNorm(a, mean, variance, b as tf.Tensor1D, g as tf.Tensor1D, 1e-3));
        return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, a.size), a.shape))));
      })([xs, toTensor(gamma), toTensor(beta)]);
      return [pool, tf.sum(xs, [0, 1, 2]), tf.mean(xs, [1, 2]), ...bn, ...convGrads()];
    });
    t.is(wasm.length, 10);
    wasm.forEach((w, i) => t.true(relativeError(w, cpu[i]) <= TOL, `output ${i}: ${relativeError(w, cpu[i])}`));
  } finally {
    setNativeKernelsEnabled(true);
  }
});

test.serial('a batch too big for the 4 GiB wasm heap is a UserError naming the fix, and the backend keeps working', async (t) => {
  await tf.setBackend('wasm');
  const held: tf.Tensor[] = [];
  let error: unknown = null;
  try {
    // 256 MiB each: the guard must refuse one before the heap's last 512 MiB (tfjs would otherwise write through
    // a null pointer and corrupt the module).
    for (let i = 0; i < 20 && error == null; i++) {
      try {
        held.push(tf.zeros([64 * 2 ** 20]));
      } catch (e) {
        error = e;
      }
    }
  } finally {
    tf.dispose(held);
  }
  t.true(error instanceof WasmHeapExhaustedError, String(error));
  t.true(error instanceof UserError);
  t.regex((error as Error).message, /heap is full/);
  t.regex((error as UserError).fix, /fewer images per episode/);
  t.deepEqual(Array.from(tf.tidy(() => tf.add(tf.ones([3]), 1)).dataSync()), [2, 2, 2]);
});
