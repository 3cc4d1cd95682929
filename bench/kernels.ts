/**
 * Conv-4 forward+backward timing on the wasm backend with the training kernels of src/backend/wasm.
 *
 *   npx tsx bench/kernels.ts [--iters N] [--only 80x32,320x32,80x84] [--bn composed,fused] [--backend wasm|cpu]
 *                            [--threads N] [--no-native] [--no-profile]
 *
 * --threads N: N XNNPACK threads (1 = the single-threaded build; default: the toolkit's, 2 on multi-core
 * machines); --no-native turns the SIMD helper module off so the JS fallback loops run (A/B of
 * src/backend/wasm/native).
 *
 * Conv-4 = 4 x [conv3x3 (64, no bias), batch-norm in training mode, ReLU, maxPool 2]. Batch norm either as
 * tfjs composes it (tf.moments + tf.batchNorm4d + tf.relu: 'composed') or as the fused batchNormTraining op
 * with ReLU ('fused'). One step = tf.variableGrads of the mean of the flattened embedding. Prints the median
 * step time per workload (wall and process CPU time: the machine is shared, CPU time is the stable number)
 * and a per-kernel breakdown of one profiled step (tf.profile with the backend's timer swapped for CPU time).
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node build has no gradient definitions; the project registers them here.
import '../src/tf-gradients.ts';
import { selectBackend } from '../src/backend/select.ts';
import { batchNormTraining } from '../src/backend/wasm/batch_norm.ts';
import { setNativeKernelsEnabled } from '../src/backend/wasm/native.ts';
import { wasmThreadsInUse } from '../src/backend/wasm/threads.ts';
import { timeKernelsByCpu } from './lib/machine.ts';

type BnMode = 'composed' | 'fused';

interface Workload {
  batch: number;
  size: number;
}

function parseArgs(argv: string[]) {
  let iters = 0;
  let only: Workload[] = [
    { batch: 80, size: 32 },
    { batch: 320, size: 32 },
    { batch: 80, size: 84 },
  ];
  let backend = 'wasm';
  let bn: BnMode[] = ['composed', 'fused'];
  let profile = true;
  let threads = 0;
  let native = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--iters') iters = Number(argv[++i]);
    else if (a === '--only') {
      only = argv[++i].split(',').map((w) => {
        const [b, s] = w.split('x').map(Number);
        return { batch: b, size: s };
      });
    } else if (a === '--backend') backend = argv[++i];
    else if (a === '--bn') bn = argv[++i].split(',') as BnMode[];
    else if (a === '--no-profile') profile = false;
    else if (a === '--threads') threads = Number(argv[++i]);
    else if (a === '--no-native') native = false;
    else throw new Error(`unknown argument ${a}`);
  }
  return { iters, only, backend, profile, bn, threads, native };
}

function conv4(seed: number, bnMode: BnMode) {
  const vars: tf.Variable[] = [];
  const layers = [3, 64, 64, 64].map((cin, i) => {
    const std = Math.sqrt(2 / (9 * 64));
    const filter = tf.variable(tf.randomNormal([3, 3, cin, 64], 0, std, 'float32', seed + i), true, `bench/conv${i}/filter#${seed}`);
    const gamma = tf.variable(tf.ones([64]), true, `bench/bn${i}/gamma#${seed}`);
    const beta = tf.variable(tf.zeros([64]), true, `bench/bn${i}/beta#${seed}`);
    vars.push(filter, gamma, beta);
    return { filter, gamma, beta };
  });
  const forward = (x: tf.Tensor4D): tf.Tensor2D => {
    let h = x;
    for (const { filter, gamma, beta } of layers) {
      const c = tf.conv2d(h, filter as tf.Tensor4D, 1, 'same');
      let act: tf.Tensor4D;
      if (bnMode === 'fused') {
        act = batchNormTraining(c, gamma as tf.Tensor1D, beta as tf.Tensor1D, { varianceEpsilon: 1e-5, activation: 'relu' }).y;
      } else {
        const { mean, variance } = tf.moments(c, [0, 1, 2]);
        act = tf.relu(tf.batchNorm4d(c, mean as tf.Tensor1D, variance as tf.Tensor1D, beta as tf.Tensor1D, gamma as tf.Tensor1D, 1e-5));
      }
      h = tf.maxPool(act, 2, 2, 'valid');
    }
    return tf.reshape(h, [h.shape[0], -1]);
  };
  return { vars, forward };
}

function step(forward: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, vars: tf.Variable[]): void {
  const { value, grads } = tf.variableGrads(() => tf.mean(forward(x)) as tf.Scalar, vars);
  // Wait for every gradient (the wasm backend is synchronous, but keep the timing honest for any backend).
  for (const g of Object.values(grads)) g.dataSync();
  value.dispose();
  tf.dispose(Object.values(grads));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  setNativeKernelsEnabled(args.native);
  // Like the toolkit: FEWSHOT_WASM_THREADS (or its default) unless --threads says otherwise.
  if (args.threads > 0) process.env.FEWSHOT_WASM_THREADS = String(args.threads);
  const sel = await selectBackend(args.backend);
  console.log(`backend: ${sel.detail}${args.backend === 'wasm' ? `, XNNPACK threads ${wasmThreadsInUse()}, SIMD helpers ${args.native ? 'on' : 'off'}` : ''}`);
  timeKernelsByCpu();
  for (const w of args.only)
    for (const bnMode of args.bn) {
      const { vars, forward } = conv4(1, bnMode);
      const x = tf.randomNormal([w.batch, w.size, w.size, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
      const iters = args.iters || Math.max(3, Math.round((6 * (80 * 32 * 32)) / (w.batch * w.size * w.size)));
      step(forward, x, vars); // warm-up: XNNPACK operator creation, heap growth, JIT
      step(forward, x, vars);
      const before = tf.memory().numTensors;
      const times: number[] = [];
      const cpuTimes: number[] = [];
      for (let i = 0; i < iters; i++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        step(forward, x, vars);
        times.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        cpuTimes.push((c.user + c.system) / 1000);
      }
      const leaked = tf.memory().numTensors - before;
      console.log(
        `\nConv-4 fwd+bwd ${w.batch} x ${w.size}px, batch norm ${bnMode}: median ${median(times).toFixed(1)} ms wall (min ${Math.min(...times).toFixed(1)}), median ${median(cpuTimes).toFixed(1)} ms CPU (all threads), ${iters} iters${leaked ? `, LEAKED ${leaked} tensors` : ''})`,
      );
      if (args.profile) {
        const info = await tf.profile(() => step(forward, x, vars));
        const byKernel = new Map<string, { ms: number; calls: number }>();
        let total = 0;
        for (const k of info.kernels) {
          const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : Number(((await k.kernelTimeMs) as unknown as number) ?? 0);
          const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
          e.ms += ms;
          e.calls++;
          byKernel.set(k.name, e);
          total += ms;
        }
        const rows = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms);
        console.log(`  per-kernel CPU time (one profiled step, sum ${total.toFixed(1)} ms):`);
        for (const [name, e] of rows.slice(0, 14))
          console.log(`    ${name.padEnd(22)} ${e.ms.toFixed(1).padStart(8)} ms  ${String(e.calls).padStart(4)} calls`);
      }
      x.dispose();
      tf.dispose(vars);
    }
}

await main();
