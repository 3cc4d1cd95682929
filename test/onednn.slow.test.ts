/**
 * The oneDNN accelerator (native/onednn, src/backend/wasm/onednn*.ts) against the cpu backend, and its fallback.
 *
 * Tolerance: for every output, max|native - cpu| / max(|cpu|, 1e-6) < 1e-4 (oneDNN's AVX-512 kernels sum in
 * another order than the cpu backend; the same bound as the wasm kernels' tests). Each case also checks that the
 * native kernel really ran (the addon is wrapped to count its calls), and a rerun at the same thread count must
 * give the same bytes.
 *
 * Where the addon is not built these kernel tests do not exist, and one test checks the fallback instead; CI sets
 * FEWSHOT_REQUIRE_ONEDNN=1 after installing libdnnl-dev, so there a missing accelerator fails. The fallback tests
 * (addon hidden, broken, or turned off) run everywhere, in subprocesses.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '../src/tf-gradients.ts';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../src/backend/select.ts';
import { batchNormActPool } from '../src/backend/wasm/batch_norm_pool.ts';
import { addActPool } from '../src/backend/wasm/add_act_pool.ts';
import { adamUpdate, type AdamUpdateAttrs } from '../src/backend/wasm/adam.ts';
import { activeOnednn, loadOnednn, setOnednnActive, type OnednnAddon } from '../src/backend/wasm/onednn.ts';
import { convAlgorithm, onednnConvConfig } from '../src/backend/wasm/onednn_kernels.ts';
import { convGeometry } from '../src/backend/wasm/conv_geometry.ts';
import { promises as fs } from 'node:fs';
import { buildFixture, REPO_ROOT } from './fixtures/mini-imagenet.ts';
import { prepareCliFixture, runCli, tinyTrainingArgs } from './fixtures/run-cli.ts';
import { parseTrainLog } from '../src/train/train-log.ts';
import { explicitPad, relativeError, runOn } from './fixtures/backend-outputs.ts';

const TOL = 1e-4;
const loaded = await loadOnednn();

interface Data {
  values: Float32Array;
  shape: number[];
}

async function randn(shape: number[], seed: number, mean = 0, std = 1): Promise<Data> {
  await tf.setBackend('cpu');
  const values = tf.tidy(() => tf.randomNormal(shape, mean, std, 'float32', seed).dataSync() as Float32Array).slice();
  return { values, shape };
}
const T = (d: Data) => tf.tensor(d.values, d.shape);

/** The addon with every native call counted by name. */
function counted(addon: OnednnAddon, calls: Map<string, number>): OnednnAddon {
  const wrap = <K extends keyof OnednnAddon>(k: K) =>
    ((...a: unknown[]) => {
      calls.set(k, (calls.get(k) ?? 0) + 1);
      // conv's geometry ends with its algorithm: 1 = Winograd
      if (k === 'conv' && (a[5] as number[])[15] === 1) calls.set('conv:winograd', (calls.get('conv:winograd') ?? 0) + 1);
      return (addon[k] as (...x: unknown[]) => unknown)(...a);
    }) as OnednnAddon[K];
  return {
    ...addon,
    winogradAvailable: addon.winogradAvailable,
    conv: wrap('conv'),
    bnPoolForward: wrap('bnPoolForward'),
    bnPoolBackward: wrap('bnPoolBackward'),
    matMul: wrap('matMul'),
    addActPoolForward: wrap('addActPoolForward'),
    addActPoolBackward: wrap('addActPoolBackward'),
    leakyRelu: wrap('leakyRelu'),
    adam: wrap('adam'),
  };
}

/**
 * Runs `f` on wasm with the accelerator (calls counted) and on cpu; every output within TOL; the native call
 * counts by name; and a second native run byte-identical to the first.
 */
async function agree(
  t: { true: (c: boolean, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void },
  label: string,
  f: () => tf.Tensor[],
): Promise<Map<string, number>> {
  const addon = activeOnednn()!;
  const calls = new Map<string, number>();
  setOnednnActive(counted(addon, calls));
  let native: Float32Array[];
  let again: Float32Array[];
  try {
    native = await runOn('wasm', f);
    again = await runOn('wasm', f);
  } finally {
    setOnednnActive(addon);
  }
  const cpu = await runOn('cpu', f);
  native.forEach((n, i) => {
    const err = relativeError(n, cpu[i]);
    t.true(err <= TOL, `${label}: output ${i} relative error ${err} > ${TOL}`);
  });
  t.deepEqual(again, native, `${label}: a rerun gave other bytes`);
  // Each run made the same calls: halve the counts to get one run's.
  return new Map([...calls].map(([k, v]) => [k, v / 2]));
}

if ('reason' in loaded) {
  test('the accelerator is not available here: auto falls back to wasm and says why', async (t) => {
    t.not(process.env.FEWSHOT_REQUIRE_ONEDNN, '1', `FEWSHOT_REQUIRE_ONEDNN=1, but the accelerator cannot load: ${loaded.reason}`);
    const sel = await selectBackend('auto');
    t.is(sel.choice, 'wasm');
    t.true(sel.detail.includes(`wasm-onednn (oneDNN accelerator unavailable: ${loaded.reason})`), sel.detail);
  });
} else {
  test.before(async () => {
    const sel = await selectBackend('wasm-onednn');
    if (sel.choice !== 'wasm-onednn' || activeOnednn() == null) throw new Error('wasm-onednn did not activate the accelerator');
  });

  test.serial('wasm-onednn reports oneDNN version, ISA and threads, and records them', async (t) => {
    const sel = await selectBackend('wasm-onednn');
    t.is(sel.tfName, 'wasm');
    t.regex(sel.accelerator!.version, /^\d+\.\d+\.\d+$/);
    t.is(sel.accelerator!.version, loaded.info.version);
    t.is(sel.accelerator!.isa, loaded.info.isa);
    t.true(sel.detail.startsWith(`wasm+onednn: oneDNN ${loaded.info.version} (${loaded.info.isa}, `), sel.detail);
    t.true(sel.accelerator!.threads >= 1);
  });

  const CONV_CASES: Array<{
    x: [number, number, number, number];
    f: [number, number, number, number];
    stride: number;
    pad: 'same' | 'valid' | tf.backend_util.ExplicitPadding;
  }> = [
    { x: [4, 16, 16, 3], f: [3, 3, 3, 64], stride: 1, pad: 'same' }, // Conv-4's RGB layer
    { x: [4, 10, 10, 64], f: [3, 3, 64, 64], stride: 1, pad: 'same' }, // Conv-4's inner layers
    { x: [3, 21, 21, 16], f: [3, 3, 16, 32], stride: 1, pad: 'same' }, // odd size (Winograd)
    { x: [2, 12, 12, 16], f: [1, 1, 16, 40], stride: 1, pad: 'valid' }, // ResNet-12's 1x1 shortcut
    { x: [2, 13, 13, 8], f: [3, 3, 8, 12], stride: 2, pad: 'same' },
    { x: [2, 11, 9, 5], f: [5, 3, 5, 7], stride: 2, pad: 'valid' },
    { x: [2, 7, 7, 4], f: [3, 3, 4, 6], stride: 1, pad: explicitPad(2, 0, 1, 2) },
    { x: [2, 16, 16, 64], f: [3, 3, 64, 64], stride: 1, pad: 'same' }, // Winograd where oneDNN has it (AVX-512)
    { x: [2, 8, 8, 32], f: [3, 3, 32, 48], stride: 1, pad: 'same' }, // Winograd
    { x: [2, 12, 12, 16], f: [3, 3, 16, 16], stride: 1, pad: 'valid' }, // Winograd, 10x10 output: direct by the table
  ];

  test.serial('conv2d and both gradients match cpu, natively (direct or Winograd per layer), rerun byte-identical', async (t) => {
    let winogradCases = 0;
    for (const [n, c] of CONV_CASES.entries()) {
      const x = await randn(c.x, 10 + n);
      const f = await randn(c.f, 20 + n, 0, 0.2);
      const yShape = tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.f) as tf.Tensor4D, c.stride, c.pad).shape);
      const w = await randn(yShape, 30 + n);
      const label = `conv x[${c.x}] f[${c.f}] s${c.stride} ${JSON.stringify(c.pad)}`;
      const calls = await agree(t, label, () => {
        const [xt, ft, wt] = [T(x), T(f), T(w)];
        const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), wt));
        const [dx, df] = tf.grads(loss)([xt, ft]);
        return [tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, c.stride, c.pad), dx, df];
      });
      // forward twice (the output, and inside tf.grads), input gradient, filter gradient
      t.is(calls.get('conv'), 4, `${label}: native conv calls`);
      const g = convGeometry('Conv2D', c.x, c.f, c.stride, c.pad, undefined, undefined);
      const winograd = convAlgorithm(activeOnednn()!, g) === 'winograd';
      t.is(calls.get('conv:winograd') ?? 0, winograd ? 4 : 0, `${label}: Winograd calls`);
      if (winograd) winogradCases++;
    }
    // oneDNN's Winograd kernels exist for AVX-512: there, the Winograd cases must really have taken it.
    if (loaded.info.isa.startsWith('avx512')) t.is(winogradCases, 3);
  });

  test.serial('with Winograd off (FEWSHOT_ONEDNN_WINOGRAD=0) every convolution is direct and still matches cpu', async (t) => {
    onednnConvConfig.winograd = false;
    try {
      const x = await randn([2, 16, 16, 64], 200);
      const f = await randn([3, 3, 64, 64], 201, 0, 0.2);
      const calls = await agree(t, 'direct 16x16x64', () => {
        const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')));
        return tf.grads(loss)([T(x), T(f)]);
      });
      t.is(calls.get('conv'), 3);
      t.is(calls.get('conv:winograd'), undefined);
    } finally {
      onednnConvConfig.winograd = true;
    }
  });

  const POOL_CASES: Array<{ x: number[]; activation: 'relu' | 'linear' }> = [
    { x: [4, 16, 16, 16], activation: 'relu' },
    { x: [3, 21, 21, 32], activation: 'relu' }, // odd: the last row and column are dropped
    { x: [2, 10, 11, 8], activation: 'linear' },
  ];

  test.serial('fused batch norm + ReLU + max pool: output, statistics and gradients (also through mean/variance) match cpu', async (t) => {
    for (const [n, c] of POOL_CASES.entries()) {
      const C = c.x[3];
      const x = await randn(c.x, 40 + n, 0.5, 2);
      const gamma = await randn([C], 50 + n, 1, 0.3);
      const beta = await randn([C], 60 + n, 0, 0.3);
      const w = await randn([c.x[0], Math.floor(c.x[1] / 2), Math.floor(c.x[2] / 2), C], 70 + n);
      const u = await randn([C], 80 + n);
      const v = await randn([C], 90 + n);
      const label = `bn+${c.activation}+pool x[${c.x}]`;
      const calls = await agree(t, label, () => {
        const [xt, gt, bt, wt, ut, vt] = [T(x), T(gamma), T(beta), T(w), T(u), T(v)];
        const run = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          batchNormActPool(a as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, { activation: c.activation });
        const loss = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const r = run(a, g, b);
          return tf.addN([tf.sum(tf.mul(r.y, wt)), tf.sum(tf.mul(r.mean, ut)), tf.sum(tf.mul(r.variance, vt))]);
        };
        const r = run(xt, gt, bt);
        return [r.y, r.mean, r.variance, ...tf.grads(loss)([xt, gt, bt])];
      });
      t.is(calls.get('bnPoolForward'), 2, `${label}: native forward calls`);
      t.is(calls.get('bnPoolBackward'), 1, `${label}: native backward calls`);
    }
  });

  test.serial('leaky ReLU after batch norm stays on the wasm kernel (oneDNN fuses only ReLU) and still matches cpu', async (t) => {
    const x = await randn([2, 8, 8, 8], 100);
    const gamma = await randn([8], 101, 1, 0.3);
    const beta = await randn([8], 102, 0, 0.3);
    const calls = await agree(t, 'bn+leaky+pool', () => {
      const loss = (a: tf.Tensor) =>
        tf.sum(tf.square(batchNormActPool(a as tf.Tensor4D, T(gamma) as tf.Tensor1D, T(beta) as tf.Tensor1D, { activation: 'leakyRelu', alpha: 0.1 }).y));
      return [tf.grad(loss)(T(x))];
    });
    t.is(calls.get('bnPoolForward'), undefined);
    t.is(calls.get('bnPoolBackward'), undefined);
  });

  // ResNet-12's block tail maxPool(act(a + b)): its own shapes at 32 px (first block, and 4x4x640), odd sizes
  // ('valid' pooling drops the last row / column), ReLU (alpha 0).
  const ADD_POOL_CASES: Array<{ x: number[]; alpha: number }> = [
    { x: [8, 32, 32, 64], alpha: 0.1 },
    { x: [4, 4, 4, 640], alpha: 0.1 },
    { x: [3, 9, 7, 20], alpha: 0.1 },
    { x: [2, 6, 6, 8], alpha: 0 },
  ];

  test.serial('fused residual add + leaky ReLU + max pool (ResNet-12): output and both gradients match cpu', async (t) => {
    for (const [n, c] of ADD_POOL_CASES.entries()) {
      const a = await randn(c.x, 200 + n, 0.2, 1);
      const b = await randn(c.x, 210 + n, -0.1, 1);
      const w = await randn([c.x[0], Math.floor(c.x[1] / 2), Math.floor(c.x[2] / 2), c.x[3]], 220 + n);
      const label = `add+act(${c.alpha})+pool x[${c.x}]`;
      const calls = await agree(t, label, () => {
        const f = (x: tf.Tensor, y: tf.Tensor) => addActPool(x as tf.Tensor4D, y as tf.Tensor4D, c.alpha);
        return [f(T(a), T(b)), ...tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(f(x, y), T(w))))([T(a), T(b)])];
      });
      t.is(calls.get('addActPoolForward'), 2, `${label}: native forward calls`);
      t.is(calls.get('addActPoolBackward'), 1, `${label}: native backward calls`);
    }
  });

  test.serial('fused residual add + leaky ReLU + max pool: the native gradient matches central finite differences', async (t) => {
    await tf.setBackend('wasm');
    const shape = [2, 5, 4, 16];
    const a = await randn(shape, 230, 0, 1);
    const b = await randn(shape, 231, 0, 1);
    const w = await randn([2, 2, 2, 16], 232);
    await tf.setBackend('wasm');
    const loss = (x: Float32Array, y: Float32Array) =>
      tf.tidy(
        () =>
          tf
            .sum(
              tf.mul(
                addActPool(tf.tensor4d(x, shape as [number, number, number, number]), tf.tensor4d(y, shape as [number, number, number, number]), 0.1),
                T(w),
              ),
            )
            .dataSync()[0],
      );
    const [ga, gb] = tf.tidy(() =>
      tf
        .grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(addActPool(x as tf.Tensor4D, y as tf.Tensor4D, 0.1), T(w))))([T(a), T(b)])
        .map((g) => (g.dataSync() as Float32Array).slice()),
    );
    const h = 1e-2;
    // z = act(a + b); element i is near a kink if |a + b| < 2h or another z of its 2x2 window is within 2h of it.
    const [H, W, C] = [shape[1], shape[2], shape[3]];
    const z = a.values.map((v, i) => (v + b.values[i] > 0 ? v + b.values[i] : 0.1 * (v + b.values[i])));
    const nearKink = (i: number) => {
      if (Math.abs(a.values[i] + b.values[i]) < 2 * h) return true;
      const [c, wIdx, hIdx, n] = [i % C, Math.floor(i / C) % W, Math.floor(i / (C * W)) % H, Math.floor(i / (C * W * H))];
      const [h0, w0] = [hIdx - (hIdx % 2), wIdx - (wIdx % 2)];
      for (let dh = 0; dh < 2; dh++) {
        for (let dw = 0; dw < 2; dw++) {
          const j = ((n * H + h0 + dh) * W + w0 + dw) * C + c;
          if (j !== i && h0 + dh < H && Math.abs(z[j] - z[i]) < 4 * h) return true;
        }
      }
      return false;
    };
    let checked = 0;
    for (let i = 0; i < a.values.length; i += 7) {
      for (const [which, g] of [
        [a, ga],
        [b, gb],
      ] as const) {
        const plus = which.values.slice();
        const minus = which.values.slice();
        plus[i] += h;
        minus[i] -= h;
        const fd = which === a ? (loss(plus, b.values) - loss(minus, b.values)) / (2 * h) : (loss(a.values, plus) - loss(a.values, minus)) / (2 * h);
        // Piecewise linear: the difference is exact up to float32 rounding of the sums (|loss| ~ 10), unless the step
        // crosses a kink (sign of a + b) or a pooling tie, which a margin of h on the sum and the window rules out.
        if (nearKink(i)) continue;
        t.true(Math.abs(fd - g[i]) < 2e-3, `element ${i}: finite difference ${fd} vs gradient ${g[i]}`);
        checked++;
      }
    }
    t.true(checked > 50, `only ${checked} elements checked`);
  });

  test.serial('leakyRelu runs natively (eltwise) and matches cpu, with its gradient', async (t) => {
    const x = await randn([4, 9, 9, 33], 240);
    const calls = await agree(t, 'leakyRelu', () => {
      const f = (v: tf.Tensor) => tf.leakyRelu(v, 0.1);
      return [f(T(x)), tf.grad((v: tf.Tensor) => tf.sum(tf.square(f(v))))(T(x))];
    });
    t.true((calls.get('leakyRelu') ?? 0) >= 2, 'native leakyRelu calls');
  });

  test.serial("Adam update runs natively and gives the cpu kernel's bytes exactly (same float32 roundings)", async (t) => {
    // One variable above the size at which the native loop splits over OpenMP threads (2^18), odd sizes.
    const shapes = [[3, 3, 64, 64], [640], [300001], [7]];
    const data = await Promise.all(shapes.flatMap((s, i) => [randn(s, 250 + i), randn(s, 260 + i), randn(s, 270 + i, 0, 0.1), randn(s, 280 + i, 1, 0.2)]));
    for (const d of data.filter((_, k) => k % 4 === 3)) d.values.forEach((v, i, arr) => (arr[i] = Math.abs(v)));
    for (const attrs of [
      { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 },
      { lr: 0.05, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 5e-4, step: 17 },
    ] satisfies AdamUpdateAttrs[]) {
      const f = () => {
        const q = (j: number) => shapes.map((_, i) => T(data[4 * i + j]));
        const r = adamUpdate(q(0), q(1), q(2), q(3), attrs)!;
        return [...r.p, ...r.m, ...r.v];
      };
      const calls = await agree(t, `adam wd ${attrs.weightDecay}`, f);
      t.is(calls.get('adam'), shapes.length);
      t.deepEqual(await runOn('wasm', f), await runOn('cpu', f), 'native Adam differs from the cpu kernel in some bit');
    }
  });

  const MATMUL_CASES: Array<{ a: number[]; b: number[]; ta: boolean; tb: boolean }> = [
    { a: [40, 96], b: [96, 5], ta: false, tb: false },
    { a: [96, 40], b: [96, 5], ta: true, tb: false },
    { a: [40, 96], b: [5, 96], ta: false, tb: true },
    { a: [3, 7, 9], b: [3, 11, 7], ta: true, tb: true },
    { a: [4, 6, 8], b: [1, 8, 5], ta: false, tb: false }, // broadcast batch
    { a: [2, 3, 6, 8], b: [8, 5], ta: false, tb: false }, // rank 4 with a rank-2 operand
    { a: [6, 8], b: [1, 5, 8], ta: false, tb: true }, // broadcast to the other side's rank
  ];

  test.serial('matMul with every transpose combination and broadcast batches matches cpu (with gradients where tfjs has them)', async (t) => {
    for (const [n, c] of MATMUL_CASES.entries()) {
      const a = await randn(c.a, 110 + n);
      const b = await randn(c.b, 120 + n);
      const label = `matMul a[${c.a}]${c.ta ? 'ᵀ' : ''} b[${c.b}]${c.tb ? 'ᵀ' : ''}`;
      const broadcast = c.a.slice(0, -2).join() !== c.b.slice(0, -2).join();
      const calls = await agree(t, label, () => {
        const f = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, c.ta, c.tb);
        const out = f(T(a), T(b));
        // tfjs' BatchMatMul gradient does not reduce over broadcast batch dimensions: forward only there.
        if (broadcast) return [out];
        const w = tf.randomNormal(out.shape, 0, 1, 'float32', 7);
        return [out, ...tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(f(x, y), w)))([T(a), T(b)])];
      });
      t.is(calls.get('matMul'), broadcast ? 1 : 4, `${label}: native matMul calls`);
    }
  });

  test.serial("a real run (protonet-sla, real mini-ImageNet images) on wasm-onednn records the accelerator, and trains to the wasm run's loss", async (t) => {
    const fx = await buildFixture(12);
    try {
      const cache = await prepareCliFixture(fx, '16', runCli, { cacheName: 'cache16' });
      const training = {
        command: 'run',
        method: 'protonet-sla',
        size: '16',
        cache,
        root: fx.root,
        runs: path.join(fx.root, 'runs'),
        results: path.join(fx.root, 'results'),
        episodes: 4,
      } as const;
      const run = (backend: string) => runCli([...tinyTrainingArgs({ ...training, backend, name: backend }), '--seed', '0']);
      const native = await run('wasm-onednn');
      t.is(native.code, 0, native.stderr);
      t.regex(native.stderr + native.stdout, /backend: wasm-onednn — wasm\+onednn: oneDNN \d+\.\d+\.\d+ \(\w+, /);
      const plain = await run('wasm');
      t.is(plain.code, 0, plain.stderr);
      const record = JSON.parse(await fs.readFile(path.join(fx.root, 'results', 'mini-imagenet', 'wasm-onednn', 'result.json'), 'utf8'));
      t.is(record.backend.choice, 'wasm-onednn');
      t.like(record.backend.accelerator, { name: 'oneDNN', version: loaded.info.version, isa: loaded.info.isa });
      const plainRecord = JSON.parse(await fs.readFile(path.join(fx.root, 'results', 'mini-imagenet', 'wasm', 'result.json'), 'utf8'));
      t.is(plainRecord.backend.accelerator, undefined);
      // Same seed, same episodes: the training losses agree to float32 summation order after 4 Adam steps.
      const losses = async (name: string) =>
        parseTrainLog(await fs.readFile(path.join(fx.root, 'runs', name, 'train-log.jsonl'), 'utf8'))
          .filter((e) => e.event === 'train')
          .map((e) => e.loss!);
      const [a, b] = [await losses('wasm-onednn'), await losses('wasm')];
      t.is(a.length, b.length);
      t.true(a.length > 0);
      a.forEach((l, i) => t.true(Math.abs(l - b[i]) <= 1e-3 * Math.abs(b[i]), `train loss ${i}: ${l} (wasm-onednn) vs ${b[i]} (wasm)`));
    } finally {
      await fx.cleanup();
    }
  });

  test.serial('--backend wasm in the same process turns the accelerator off; wasm-onednn turns it back on', async (t) => {
    await selectBackend('wasm');
    t.is(activeOnednn(), null);
    await selectBackend('wasm-onednn');
    t.not(activeOnednn(), null);
  });
}

interface Outcome {
  code: number | null;
  out: { choice?: string; detail?: string; accelerator?: unknown; error?: string };
}

/** selectBackend(choice) in a subprocess, with the addon hidden/broken by the loader hook or turned off by env. */
function selectInSubprocess(choice: string, env: Record<string, string>): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--conditions=fewshot-source',
        '--import',
        path.join(REPO_ROOT, 'test', 'fixtures', 'hide-onednn.mjs'),
        path.join(REPO_ROOT, 'test', 'fixtures', 'select-backend.ts'),
        choice,
      ],
      { cwd: REPO_ROOT, env: { ...process.env, FEWSHOT_REQUIRE_ONEDNN: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      const line = stdout
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .pop();
      if (line == null) reject(new Error(`no JSON from the subprocess (exit ${code}): ${stderr.slice(-2000)}`));
      else resolve({ code, out: JSON.parse(line) });
    });
  });
}

const FALLBACKS: Array<{ name: string; env: Record<string, string>; reason: string }> = [
  { name: 'the addon was never built', env: { FEWSHOT_TEST_ONEDNN: 'missing' }, reason: 'fewshot-onednn is not installed or was not built' },
  { name: 'libdnnl.so.2 is gone', env: { FEWSHOT_TEST_ONEDNN: 'broken' }, reason: 'libdnnl.so.2: cannot open shared object file: No such file or directory' },
  { name: 'FEWSHOT_ONEDNN=0', env: { FEWSHOT_TEST_ONEDNN: 'none', FEWSHOT_ONEDNN: '0' }, reason: 'turned off by FEWSHOT_ONEDNN=0' },
];

for (const { name, env, reason } of FALLBACKS) {
  test(`${name}: auto runs plain wasm and says why in one line; --backend wasm-onednn is a UserError naming the fix`, async (t) => {
    const auto = await selectInSubprocess('auto', env);
    t.is(auto.code, 0);
    t.is(auto.out.choice, 'wasm');
    t.is(auto.out.accelerator, undefined);
    t.true(auto.out.detail!.includes(`wasm-onednn (oneDNN accelerator unavailable: ${reason})`), auto.out.detail);
    t.false(auto.out.detail!.includes('\n'));
    const demanded = await selectInSubprocess('wasm-onednn', env);
    t.is(demanded.code, 2);
    t.regex(
      demanded.out.error!,
      /backend "wasm-onednn" cannot load: oneDNN accelerator unavailable: .*\n {2}fix: install oneDNN \(Debian\/Ubuntu: `apt-get install libdnnl-dev`\)/,
    );
  });
}
