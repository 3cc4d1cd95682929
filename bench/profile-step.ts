/**
 * Where the milliseconds of one bench training step go (ours only, no peer):
 *
 *   npx tsx bench/profile-step.ts [--method protonet|protonet-sla] [--size 32] [--shot 1] [--backbone conv4|resnet12] [--iters 10]
 *     [--backend wasm|wasm-onednn|auto|cpu] [--eval]
 *
 * Times the bench's step (trainingStep + Adam, loss read back) as a whole, the same step with the optimizer
 * update skipped (gradients only), and prints a per-kernel CPU-time breakdown of one profiled step (tf.profile
 * with the backend's timer swapped for process CPU time, so the helper thread's work counts), with the number of
 * kernel calls: the gap between the kernel sum and the wall time is dispatch (JS) overhead. `--eval` profiles an
 * evaluation episode instead (method.predict, batch norm in inference mode, as bench/lib/ours.ts timeOursEval).
 * Step times are wall and process CPU time (all threads), medians.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/backend/select.ts';
import { wasmThreadsInUse } from '../src/backend/wasm/threads.ts';
import { trainingStep } from '../src/train/step.ts';
import type { EpisodeImages } from '../src/episodes/images.ts';
import { Adam, type Optimizer } from '../src/train/optimizer.ts';
import { makeEpisodes, episodeImages } from './lib/inputs.ts';
import { buildBenchMethod, LEARNING_RATE, type BenchMethodName, type BenchBackbone } from './lib/ours.ts';
import { timeKernelsByCpu } from './lib/machine.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

class NoUpdate implements Optimizer {
  readonly type = 'none';
  stepCount = 0;
  step(): void {
    this.stepCount++;
  }
  state() {
    return [];
  }
}

async function main(): Promise<void> {
  const method = arg('method', 'protonet') as BenchMethodName;
  const backbone = arg('backbone', 'conv4') as BenchBackbone;
  const imageSize = Number(arg('size', '32'));
  const shot = Number(arg('shot', '1'));
  const iters = Number(arg('iters', '10'));
  const sel = await selectBackend(arg('backend', 'wasm'));
  console.log(`backend ${sel.detail}, threads ${wasmThreadsInUse()}`);
  const spec = { method, backbone, imageSize, way: 5, shot, query: 15 };
  const m = buildBenchMethod(spec, 1);
  const trainable = m.trainableVariables();
  const ep = episodeImages(spec, makeEpisodes(spec, 1, 'profile')[0]);
  const adam = new Adam();
  const none = new NoUpdate();
  const evaluate = process.argv.includes('--eval');
  const train = (opt: Optimizer) => {
    const loss = trainingStep(m, trainable, opt, [ep], LEARNING_RATE);
    loss.dataSync();
    loss.dispose();
  };
  const predict = (e: EpisodeImages) => {
    const scores = tf.tidy(() => m.predict(e));
    for (const s of Object.values(scores)) s.dataSync();
    tf.dispose(Object.values(scores));
  };
  const run = evaluate ? () => predict(ep) : train;
  for (let i = 0; i < 3; i++) run(adam);
  const timed = (f: () => void) => {
    const [t0, c0] = [performance.now(), process.cpuUsage()];
    f();
    const c = process.cpuUsage(c0);
    return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
  };
  const fmt = (xs: { wall: number; cpu: number }[]) => `${median(xs.map((x) => x.wall)).toFixed(1)} / ${median(xs.map((x) => x.cpu)).toFixed(1)} ms`;
  if (evaluate) {
    const steps = Array.from({ length: iters }, () => timed(() => predict(ep)));
    console.log(`evaluation episode median wall / CPU ${fmt(steps)} (${iters})`);
  } else {
    const full: { wall: number; cpu: number }[] = [];
    const gradsOnly: { wall: number; cpu: number }[] = [];
    for (let i = 0; i < iters; i++) {
      full.push(timed(() => train(adam)));
      gradsOnly.push(timed(() => train(none)));
    }
    console.log(`step median wall / CPU ${fmt(full)}; without the optimizer update ${fmt(gradsOnly)} (interleaved, ${iters} each)`);
  }
  timeKernelsByCpu();
  const t0 = performance.now();
  const info = await tf.profile(() => run(adam));
  const wall = performance.now() - t0;
  const byKernel = new Map<string, { ms: number; calls: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = Number(await (k.kernelTimeMs as unknown as Promise<number> | number));
    const key = `${k.name} ${k.inputShapes.map((s) => `[${s?.join('x')}]`).join('')}`.slice(0, 70);
    const e = byKernel.get(key) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls++;
    byKernel.set(key, e);
    total += ms;
  }
  console.log(`profiled step: ${info.kernels.length} kernel calls, kernel CPU sum ${total.toFixed(1)} ms, profiled wall ${wall.toFixed(1)} ms`);
  for (const [name, e] of [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(arg('top', '30')))) {
    console.log(`  ${e.ms.toFixed(2).padStart(8)} ms ${String(e.calls).padStart(4)}x  ${name}`);
  }
}

await main();
