/**
 * The threaded XNNPACK build (src/backend/wasm/threads.ts) under Node: it starts with 2 threads, runs on shared
 * memory (so the SIMD helper module's shared-memory variant is the one in use), and the training kernels give
 * the cpu backend's results on it. Tolerance as in kernels.slow.test.ts: max|wasm - cpu| / max|cpu| < 1e-4,
 * max-pool gradients exact.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node build has no gradient definitions; the project registers them here.
import '../src/tf-gradients.ts';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../src/backend/select.ts';
import { batchNormTraining } from '../src/backend/wasm/batch_norm.ts';
import { batchNormActPool } from '../src/backend/wasm/batch_norm_pool.ts';
import type { BackendWasm } from '../src/backend/wasm/heap.ts';
import { helperThreadInUse, nativeKernels, runNativeSplit } from '../src/backend/wasm/native.ts';
import { useWasmThreads, wasmThreadsInUse } from '../src/backend/wasm/threads.ts';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './fixtures/mini-imagenet.ts';
import { relativeError, runOn } from './fixtures/backend-outputs.ts';

const TOL = 1e-4;

test.before(async () => {
  if (!useWasmThreads(2)) throw new Error('wasm backend was created before the test could configure threads');
  await selectBackend('wasm');
});

test.serial('the threaded build is active with 2 threads on shared memory, with the SIMD helpers loaded', async (t) => {
  await tf.setBackend('wasm');
  t.is(wasmThreadsInUse(), 2);
  const backend = tf.backend() as unknown as BackendWasm;
  t.true((backend.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32.buffer instanceof SharedArrayBuffer);
  t.not(nativeKernels(backend), null);
  t.true(helperThreadInUse(backend), 'the helper kernels should split their work with a second thread');
  t.false(useWasmThreads(4), 'reconfiguring after creation must be refused');
});

test.serial('Conv-4 style stack with fused and composed batch norm: values and gradients match cpu', async (t) => {
  await tf.setBackend('cpu');
  const data = tf.tidy(() => ({
    x: Array.from(tf.randomNormal([6, 16, 16, 3], 0, 1, 'float32', 1).dataSync()),
    f: [3, 8, 8].map((cin, i) => Array.from(tf.randomNormal([3, 3, cin, 8], 0, 0.3, 'float32', 2 + i).dataSync())),
  }));
  const run = (fused: boolean) => () => {
    const xs = tf.tensor4d(data.x, [6, 16, 16, 3]);
    const fs = data.f.map((v, i) => tf.tensor4d(v, [3, 3, i === 0 ? 3 : 8, 8]));
    const gammas = fs.map(() => tf.ones([8]));
    const betas = fs.map(() => tf.zeros([8]));
    const loss = (...p: tf.Tensor[]) => {
      let h: tf.Tensor4D = xs;
      for (let l = 0; l < 3; l++) {
        const c = tf.conv2d(h, p[l] as tf.Tensor4D, l === 1 ? 2 : 1, 'same');
        let a: tf.Tensor4D;
        if (fused) {
          a = batchNormTraining(c, p[3 + l] as tf.Tensor1D, p[6 + l] as tf.Tensor1D, { varianceEpsilon: 1e-5, activation: 'relu' }).y;
        } else {
          const { mean, variance } = tf.moments(c, [0, 1, 2]);
          a = tf.relu(tf.batchNorm4d(c, mean as tf.Tensor1D, variance as tf.Tensor1D, p[6 + l] as tf.Tensor1D, p[3 + l] as tf.Tensor1D, 1e-5));
        }
        h = l === 1 ? a : tf.maxPool(a, 2, 2, 'same');
      }
      return tf.mean(tf.square(h));
    };
    const { value, grads } = tf.valueAndGrads(loss)([...fs, ...gammas, ...betas]);
    return [value, ...grads];
  };
  const cpu = await runOn('cpu', run(false));
  for (const fused of [false, true]) {
    const wasm = await runOn('wasm', run(fused));
    wasm.forEach((w, i) => t.true(relativeError(w, cpu[i]) <= TOL, `fused=${fused} output ${i}: ${relativeError(w, cpu[i])}`));
  }
});

test.serial('Winograd convs, the RGB filter-gradient kernel and batch norm, split between two threads: values and gradients match cpu', async (t) => {
  // 6 images of 16 x 16 with 16 channels: every helper-kernel pass (transforms, products, batch-norm rows,
  // inference batch norm) is big enough to be split between the main and the helper thread.
  await tf.setBackend('cpu');
  const shapes = [
    [3, 3, 3, 16],
    [3, 3, 16, 16],
    [3, 3, 16, 24],
  ];
  const data = tf.tidy(() => ({
    x: Array.from(tf.randomNormal([6, 16, 16, 3], 0, 1, 'float32', 11).dataSync()),
    f: shapes.map((s, i) => Array.from(tf.randomNormal(s, 0, 0.3, 'float32', 12 + i).dataSync())),
  }));
  const run = () => {
    const xs = tf.tensor4d(data.x, [6, 16, 16, 3]);
    const fs = data.f.map((v, i) => tf.tensor(v, shapes[i]));
    const gammas = shapes.map((s) => tf.ones([s[3]]));
    const betas = shapes.map((s) => tf.zeros([s[3]]));
    const loss = (...p: tf.Tensor[]) => {
      let h: tf.Tensor4D = xs;
      for (let l = 0; l < 3; l++) {
        const c = tf.conv2d(h, p[l] as tf.Tensor4D, 1, 'same');
        const opts = { varianceEpsilon: 1e-5, activation: 'relu' } as const;
        // The middle layer pools (fused op; its reference on cpu is the unfused composition).
        h =
          l !== 1
            ? batchNormTraining(c, p[3 + l] as tf.Tensor1D, p[6 + l] as tf.Tensor1D, opts).y
            : tf.getBackend() === 'cpu'
              ? tf.maxPool(batchNormTraining(c, p[3 + l] as tf.Tensor1D, p[6 + l] as tf.Tensor1D, opts).y, 2, 2, 'valid')
              : batchNormActPool(c, p[3 + l] as tf.Tensor1D, p[6 + l] as tf.Tensor1D, opts).y;
      }
      return tf.mean(tf.mul(h, tf.sin(tf.reshape(tf.range(0, h.size), h.shape))));
    };
    const { value, grads } = tf.valueAndGrads(loss)([...fs, ...gammas, ...betas]);
    const inference = tf.batchNorm4d(xs, tf.tensor1d([0.1, -0.2, 0.3]), tf.tensor1d([1.5, 0.5, 2]), tf.tensor1d([0, 1, -1]), tf.tensor1d([2, 1, 0.5]), 1e-3);
    return [value, ...grads, inference];
  };
  const cpu = await runOn('cpu', run);
  const wasm = await runOn('wasm', run);
  wasm.forEach((w, i) => t.true(relativeError(w, cpu[i]) <= TOL, `output ${i}: ${relativeError(w, cpu[i])}`));
});

// Last in the file: it leaves the helper thread marked broken (later work runs on the main thread only).
test.serial('a kernel that traps on the helper thread is an error on the caller, and the kernels keep working without the helper', async (t) => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as unknown as BackendWasm;
  const nk = nativeKernels(backend);
  if (nk == null) throw new Error('helper kernels missing');
  // add_into on an address past the end of the 4 GiB address space traps inside the worker's instance.
  t.throws(() => runNativeSplit(backend, nk, [[], [['add_into', 0xfffffff0, 0xfffffff0, 64]]]), { message: /helper kernel failed/ });
  const y = tf.tidy(() =>
    tf.batchNorm4d(
      tf.ones([2, 16, 16, 8]) as tf.Tensor4D,
      tf.zeros([8]) as tf.Tensor1D,
      tf.ones([8]) as tf.Tensor1D,
      tf.zeros([8]) as tf.Tensor1D,
      tf.fill([8], 2) as tf.Tensor1D,
      0,
    ),
  );
  t.deepEqual(Array.from(new Set(y.dataSync())), [2]);
  y.dispose();
});

test.serial('the pthread worker script is never taken from the temp folder: a planted copy does not run (issue 26 #1)', async (t) => {
  // A private TMPDIR holding, under the name fewshot used to run it from, a copy of the worker script that first
  // writes a marker: another local user could plant exactly this in a shared /tmp.
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'fewshot-planted-'));
  try {
    const require = createRequire(import.meta.url);
    const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as {
      wasmWorkerContents: string;
    };
    const contents = wasmWorkerContents.replace(/\n/g, '\\n');
    const planted = path.join(tmp, `fewshot-tfjs-wasm-worker-${createHash('sha256').update(contents).digest('hex').slice(0, 16)}.cjs`);
    const marker = path.join(tmp, 'planted-script-ran');
    writeFileSync(planted, `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\n${contents}`);
    const before = readdirSync(tmp).sort();
    const out = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--conditions=fewshot-source', path.join(REPO_ROOT, 'test', 'fixtures', 'wasm-threads-probe.ts')],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, TMPDIR: tmp },
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    t.is(out.status, 0, out.stderr.slice(-1000));
    // The threaded build really ran (its pool of pthread workers started), with the right numbers ...
    t.deepEqual(JSON.parse(out.stdout.trim().split('\n').at(-1)!), { threads: 2, sum: 64 * 64 * 64 });
    // ... and no worker script was taken from (or written into) the temp folder.
    t.false(statSync(marker, { throwIfNoEntry: false }) !== undefined, 'the planted worker script ran');
    t.deepEqual(
      readdirSync(tmp)
        .filter((n) => n.startsWith('fewshot-'))
        .sort(),
      before.filter((n) => n.startsWith('fewshot-')),
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
